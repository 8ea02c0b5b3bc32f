"""LLMEmb's supervised contrastive fine-tuning (SCFT): attribute-level views, loss, trainer.

Views: each item's attribute list is shuffled twice and each copy loses ``int(drop_ratio * n)``
attributes (from its shuffled end), as in the official code. The two views of an item are
positives, the other items of the batch negatives.

Loss ``soft`` (the official one, ``model.losses.soft_contrastive_loss``): with X, Y the raw
pooled views (B, d), not normalised as in the official code,

    logits  = X Y^T / tau
    targets = softmax((X X^T + Y Y^T) / 2 * tau)          (row-wise)
    loss    = ( CE(logits, targets) + CE(logits^T, targets^T) ) / 2,   CE(p, q) = -sum q log_softmax(p)

``tau`` is a trained scalar initialised at ``scft_tau`` (3.0): it divides the logits and multiplies
the target similarities, as in the official ``Contrastive_Loss``. The targets are not detached
(also as in the official code). Loss ``infonce``: symmetric cross-entropy of ``X Y^T / tau``
against the identity (tau initialised at 0.05 unless ``scft_tau`` is given).
"""
import logging
import math
import os
import random
import shutil
import time

import torch

from recbole_llmemb import distributed, settings
from recbole_llmemb.errors import UserError
from recbole_llmemb.data.item_text import render
from recbole_llmemb.generator.backbone import load_backbone, lora_target_modules, model_identity
from recbole_llmemb.generator.extract import check_pca, encode, extract, forward_pooled, pad_batch, wants_eos
from recbole_llmemb.generator.progress import EXTRACTION_FILE, StepTrainer, for_build
from recbole_llmemb.generator.registry import register_builder
from recbole_llmemb.settings import read
from recbole_llmemb import losses

LOSSES = settings.choices("scft_loss")
TAU_MIN = 1e-2


def make_view(attrs, drop_ratio, rng):
    """A random shuffle of ``attrs`` with ``int(drop_ratio * n)`` of them dropped."""
    view = list(attrs)
    rng.shuffle(view)
    drop = int(drop_ratio * len(view))
    return view[: len(view) - drop] if drop else view


def make_views(attrs, drop_ratio, rng):
    return make_view(attrs, drop_ratio, rng), make_view(attrs, drop_ratio, rng)


def soft_contrastive_loss(x, y, tau):
    """The official LLMEmb loss on the raw pooled views; ``tau`` a trained scalar tensor.

    Raw, not L2-normalised: with cosine similarities, logits lie in [-1/tau, 1/tau] = [-0.33, 0.33]
    at tau 3 and the loss cannot leave log(B) (measured: 3.46 -> 3.39 in 50 steps at B = 32).
    """
    return losses.soft_contrastive_loss(x.float(), y.float(), tau=tau.clamp(min=TAU_MIN))


def infonce_loss(x, y, tau):
    """Symmetric InfoNCE with the diagonal as positives."""
    return losses.infonce_loss(x, y, tau=tau.clamp(min=TAU_MIN))


def loss_fn(name):
    if name == "soft":
        return soft_contrastive_loss
    if name == "infonce":
        return infonce_loss
    raise UserError(f"scft_loss={name}: use one of {', '.join(LOSSES)}.")


def initial_tau(config):
    """``scft_tau`` if set, else 3.0 for the soft loss (official) and 0.05 for InfoNCE."""
    t = read(config, "scft_tau")
    if t is None:
        t = 0.05 if read(config, "scft_loss") == "infonce" else 3.0
    return float(t)


def total_steps(config, n_items):
    epochs = read(config, "scft_epochs")
    bs = int(read(config, "scft_batch_size"))
    if epochs is not None:
        return int(math.ceil(float(epochs) * math.ceil(n_items / bs)))
    return int(read(config, "scft_steps"))


class SCFTTrainer(StepTrainer):
    """Fine-tunes a (LoRA-wrapped) model with SCFT on item attribute lists."""

    def __init__(self, config, tokenizer, model, info, attributes, instruction):
        self.config = config
        self.tokenizer = tokenizer
        self.model = model
        self.info = info
        self.attributes = attributes
        self.instruction = instruction
        self.pooling = read(config, "llm_pooling")
        self.max_length = int(read(config, "llm_max_length"))
        self.batch_size = int(read(config, "scft_batch_size"))
        self.drop_ratio = float(read(config, "scft_drop_ratio"))
        self.loss_name = str(read(config, "scft_loss"))
        self.loss = loss_fn(self.loss_name)
        self.seed = int(read(config, "seed", 2020))
        self.rng = random.Random(self.seed)
        device = next(model.parameters()).device
        self.tau = torch.nn.Parameter(torch.tensor(initial_tau(config), dtype=torch.float32, device=device))
        params = [p for p in model.parameters() if p.requires_grad] + [self.tau]
        self.optimizer = torch.optim.AdamW(params, lr=float(read(config, "scft_lr")),
                                           weight_decay=float(read(config, "scft_weight_decay")))
        self.add_eos = wants_eos(info, self.pooling)
        self.order = []

    def next_batch(self):
        n = len(self.attributes)
        bs = min(self.batch_size, n)
        if len(self.order) < bs:
            perm = list(range(n))
            self.rng.shuffle(perm)
            self.order = self.order + perm
        batch, self.order = self.order[:bs], self.order[bs:]
        return batch

    def batch_loss(self, items):
        views1, views2 = [], []
        for i in items:
            a, b = make_views(self.attributes[i], self.drop_ratio, self.rng)
            views1.append(render(self.instruction, a))
            views2.append(render(self.instruction, b))
        ids = encode(self.tokenizer, views1 + views2, self.max_length, add_eos=self.add_eos)
        device = self.tau.device
        input_ids, mask = pad_batch(ids, self.tokenizer.pad_token_id, device)
        pooled = forward_pooled(self.model, input_ids, mask, self.pooling)
        x, y = pooled[: len(items)], pooled[len(items):]
        return self.loss(x, y, self.tau)

    def step(self):
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.batch_loss(self.next_batch())
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def trained_parameters(self):
        return {**{n: p for n, p in self.model.named_parameters() if p.requires_grad}, "tau": self.tau}

    def train(self, steps, progress=True, saver=None):
        torch.manual_seed(self.seed)
        losses, seconds, resumed_at = self.run_steps(steps, "SCFT", progress, saver,
                                                     postfix=lambda: {"tau": f"{float(self.tau.detach()):.3f}"})
        self.model.eval()
        tail = losses[-10:]
        return {
            "steps": steps,
            "seconds": round(seconds, 3),
            "steps_per_second": round(steps / seconds, 4) if seconds > 0 else None,
            "first_loss": losses[0] if losses else None,
            "final_loss": sum(tail) / len(tail) if tail else None,
            "tau": float(self.tau.detach()),
            "resumed_at": resumed_at,
        }

    def save_adapter(self, folder):
        """peft ``save_pretrained`` into ``folder`` (written next to it, then moved into place)."""
        tmp = folder + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self.model.save_pretrained(tmp)
        with open(os.path.join(tmp, "scft_tau.txt"), "w") as f:
            f.write(f"{float(self.tau.detach())}\n")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        return folder


# --------------------------------------------------------------------------- stage 1 of LLMEmb, registered
def settings(config, n_items, force_steps=None):
    """Everything that changes SCFT's vectors (the cache key); bad values refused before any work."""
    ident = model_identity(config)
    pooling = read(config, "llm_pooling")
    steps = total_steps(config, n_items) if force_steps is None else int(force_steps)
    s = {
        "model": {k: ident[k] for k in ("name", "model_type", "family", "hidden_size", "dtype", "fingerprint")},
        "pooling": pooling,
        "max_length": int(read(config, "llm_max_length")),
        "scft_steps": steps,
        "pca_dim": check_pca(config, ident["hidden_size"], n_items),
        "seed": int(read(config, "seed", 2020)),
    }
    if steps > 0:
        loss = read(config, "scft_loss")
        s.update(
            lora_r=int(read(config, "lora_r")),
            lora_alpha=int(read(config, "lora_alpha")),
            lora_dropout=float(read(config, "lora_dropout")),
            lora_target_modules=lora_target_modules(config, ident["model_type"]),
            scft_loss=loss,
            scft_tau=initial_tau(config),
            scft_drop_ratio=float(read(config, "scft_drop_ratio")),
            scft_batch_size=int(read(config, "scft_batch_size")),
            scft_lr=float(read(config, "scft_lr")),
            scft_weight_decay=float(read(config, "scft_weight_decay")),
        )
    return s


def build(ctx):
    """SCFT (LoRA) on the item texts, merged, then one pooled vector per item text. Several processes:
    rank 0 trains and saves the adapter, every rank loads it and extracts its share of the items."""
    config, s = ctx.config, ctx.settings
    steps = s["scft_steps"]
    torch.manual_seed(s["seed"])
    tokenizer, model, info = load_backbone(config, lora=steps > 0)
    extra = {"model": {k: v for k, v in info.items()}}
    if steps > 0:
        adapter = os.path.join(ctx.folder, "adapter")
        with distributed.main_first():
            if distributed.is_main():
                trainer = SCFTTrainer(config, tokenizer, model, info, ctx.attributes, ctx.instruction)
                saver = for_build(ctx)
                stats = trainer.train(steps, progress=ctx.progress, saver=saver)
                logging.getLogger().info(f"SCFT: {steps} steps in {stats['seconds']:.1f}s, loss {stats['first_loss']:.4f} -> "
                                         f"{stats['final_loss']:.4f}, tau {stats['tau']:.3f}")
                trainer.save_adapter(adapter)
                extra["scft"] = stats
                extra["adapter"] = "adapter"
            else:
                from peft import load_peft_weights, set_peft_model_state_dict

                set_peft_model_state_dict(model, load_peft_weights(adapter, device=str(info["device"])))
        model = model.merge_and_unload()
    t0 = time.perf_counter()
    vectors = extract(model, tokenizer, ctx.texts, info, pooling=s["pooling"], max_length=s["max_length"],
                      batch_size=int(read(config, "llm_batch_size")), progress=ctx.progress, sharded=ctx.sharded,
                      saver=for_build(ctx, EXTRACTION_FILE))
    extra["extract_seconds"] = round(time.perf_counter() - t0, 3)
    return vectors, extra


register_builder("scft", settings, build, "LLMEmb: SCFT (LoRA) then pooled extraction", shardable=True)
register_builder("plain", lambda config, n: settings(config, n, force_steps=0), build,
                 "pooled extraction from the base model (no fine-tuning)", shardable=True)
