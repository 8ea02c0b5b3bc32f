"""TSLRec's stage 1 (Liu et al., arXiv 2406.00333 v1): the language model learns, from the text of
a user's history, how that user's items spread over latent item categories; each item's text
alone through the tuned model then gives its vector.

* Latent categories: k-means (scikit-learn) over the item table of the alignment SASRec that the
  pipeline trains and caches (``tslrec_k`` categories).
* User-level SFT: one sample per training user; the input holds the instruction once, then the
  attribute text of each training item (its first ``tslrec_item_length`` tokens), oldest first, cut
  from the oldest end to ``tslrec_max_length`` tokens (the model's special tokens included); the training items come
  from RecBole's own split of the run (:func:`training_histories`), so no validation or test
  interaction enters. The target is the normalised count of the history's items per category; a
  linear head on the pooled output predicts it (softmax), MSE loss (``tslrec_loss: kl`` as an
  option); LoRA through peft; held-out users (``tslrec_valid_share``) report the fit after each
  epoch against the global-shares baseline (every held-out user predicted by the training users'
  mean spread).
* Item vectors: each item as a one-item history (the same tokens as in fine-tuning) through the
  tuned (merged) model, pooled.
"""
import logging
import os
import random
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recbole_llmemb import distributed, settings
from recbole_llmemb.data.item_text import render
from recbole_llmemb.errors import UserError
from recbole_llmemb.generator.backbone import load_backbone, lora_target_modules, model_identity
from recbole_llmemb.generator.extract import check_pca, extract, forward_pooled, pad_batch, wants_eos
from recbole_llmemb.generator.progress import EXTRACTION_FILE, for_build, python_rng
from recbole_llmemb.generator.registry import register_builder
from recbole_llmemb.settings import read

LOSSES = settings.choices("tslrec_loss")
#: between two items of a history (a visible token: WordPiece tokenisers drop a bare newline)
SEPARATOR = " | "


def latent_categories(table, k, seed=2020):
    """The category (0..k-1) of each row of ``table`` (items x d) by k-means."""
    from sklearn.cluster import KMeans

    table = np.asarray(table, dtype=np.float64)
    if not 1 < k <= len(table):
        raise UserError(f"tslrec_k={k}: needs 2 <= K <= the number of items ({len(table)}).")
    return KMeans(n_clusters=int(k), n_init=4, random_state=int(seed)).fit_predict(table)


def category_targets(histories, labels, k):
    """Per history (a list of item indices), the share of its items in each category (sums to 1)."""
    out = np.zeros((len(histories), k), dtype=np.float32)
    for row, items in enumerate(histories):
        if len(items):
            out[row] = np.bincount(labels[np.asarray(items)], minlength=k) / len(items)
    return out


def history_ids(item_ids, budget, separator_ids):
    """Token ids of a history (item token lists, oldest first), newest last, items dropped from the
    oldest end until it fits ``budget`` tokens; the newest item is cut itself if it alone is longer.
    Returns ``(ids, number of items kept)``."""
    out, kept = [], 0
    for ids in reversed(item_ids):
        piece = list(ids) + (list(separator_ids) if out else [])
        if len(out) + len(piece) > budget:
            if not out:
                out, kept = list(ids)[-budget:], 1
            break
        out = list(ids) + (list(separator_ids) + out if out else [])
        kept += 1
    return out, kept


def special_tokens(tokenizer):
    """The ids the tokenizer puts before and after a text's own ids (BERT: [CLS] / [SEP]; LLaMA: BOS)."""
    own = tokenizer("item", add_special_tokens=False)["input_ids"]
    full = tokenizer("item", add_special_tokens=True)["input_ids"]
    start = next((i for i in range(len(full) - len(own) + 1) if full[i : i + len(own)] == own), 0)
    return full[:start], full[start + len(own):]


class HistoryTokens:
    """A user's history as the model reads it, in fine-tuning and (one item alone) in extraction:
    special tokens, the instruction once, then each item's attribute text joined by
    :data:`SEPARATOR`, oldest items dropped to fit ``length`` tokens in all; decoder LMs with
    last-token pooling end on EOS (as extraction does)."""

    def __init__(self, tokenizer, instruction, bodies, length, item_length, eos=False):
        prefix, suffix = special_tokens(tokenizer)
        words = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        self.head = prefix + (words(instruction + "\n") if instruction else [])
        self.tail = suffix + ([tokenizer.eos_token_id] if eos and tokenizer.eos_token_id is not None
                              and tokenizer.eos_token_id not in suffix else [])
        self.budget = int(length) - len(self.head) - len(self.tail)
        if self.budget < 1:
            raise UserError(f"tslrec_max_length={length}: the instruction and special tokens alone take "
                            f"{len(self.head) + len(self.tail)} tokens; give more.")
        self.items = tokenizer(list(bodies), add_special_tokens=False, truncation=True, max_length=int(item_length))["input_ids"]
        self.separator = words(SEPARATOR)

    def __call__(self, history):
        """``(token ids, number of items that fit)`` of a history (item indices, oldest first)."""
        ids, kept = history_ids([self.items[i] for i in history], self.budget, self.separator)
        return self.head + ids + self.tail, kept


def training_histories(dataset, config):
    """Each user's training items (dataset item indices, 0-based into the item texts), oldest first,
    as ``{user id: [items]}``: the targets of the training part of RecBole's own split of ``dataset``
    (made as ``data_preparation`` makes it: same seed, same ``eval_args``), so no validation or test
    interaction enters under any split. A sequential dataset's first interaction of each user is no
    target: it is read from the item list of length 1."""
    from recbole.utils import init_seed

    built = dataset.copy(dataset.inter_feat)  # build() converts and augments its dataset: leave the run's alone
    for name in ("field2type", "field2source", "field2seqlen"):
        setattr(built, name, dict(getattr(dataset, name)))
    init_seed(config["seed"], config["reproducibility"])
    feat = built.build()[0].inter_feat
    users, items = feat[dataset.uid_field].numpy(), feat[dataset.iid_field].numpy()
    times = feat[dataset.time_field].numpy() if dataset.time_field in feat else np.arange(len(users), dtype=np.float64)
    list_field = getattr(built, f"{dataset.iid_field}_list_field", None)
    length_field = getattr(built, "item_list_length_field", None)
    if list_field in feat and length_field in feat:
        first = feat[length_field].numpy() == 1
        users = np.concatenate([users[first], users])
        items = np.concatenate([feat[list_field].numpy()[first, 0], items])
        times = np.concatenate([np.full(int(first.sum()), -np.inf), times])
    histories = {}
    for i in np.lexsort((times, users)):
        histories.setdefault(int(users[i]), []).append(int(items[i]) - 1)
    return histories


class TSLRecTrainer:
    """User-level SFT: pooled LM output -> linear head -> category distribution."""

    def __init__(self, tokenizer, model, info, inputs, histories, targets, s):
        self.tokenizer, self.model, self.info, self.s = tokenizer, model, info, s
        self.device = next(model.parameters()).device
        #: each training user's item indices, oldest first (what the inputs and targets come from)
        self.histories = list(histories)
        encoded = [inputs(h) for h in self.histories]
        self.inputs = [ids for ids, _ in encoded]
        self.input_stats = {"max_length": s["tslrec_max_length"],
                            "mean_tokens": round(float(np.mean([len(x) for x in self.inputs])), 2) if encoded else 0.0,
                            "mean_items_in": round(float(np.mean([k for _, k in encoded])), 2) if encoded else 0.0,
                            "mean_items": round(float(np.mean([len(h) for h in self.histories])), 2) if encoded else 0.0,
                            "whole_history_share": round(float(np.mean([k == len(h) for (_, k), h in zip(encoded, self.histories)])), 4)
                            if encoded else 0.0}
        self.targets = torch.as_tensor(targets, dtype=torch.float32)
        rng = random.Random(s["seed"])
        order = list(range(len(self.inputs)))
        rng.shuffle(order)
        n_valid = int(round(s["tslrec_valid_share"] * len(order))) if len(order) > 1 else 0
        self.valid, self.train_users = order[:n_valid], order[n_valid:]
        torch.manual_seed(s["seed"])
        self.head = nn.Linear(info["hidden_size"], s["tslrec_k"]).to(self.device)
        params = [p for p in model.parameters() if p.requires_grad] + list(self.head.parameters())
        self.optimizer = torch.optim.AdamW(params, lr=s["tslrec_lr"])
        self.rng = rng

    def pointwise_loss(self, predicted, target):
        """Per-row loss of predicted category distributions against the targets."""
        if self.s["tslrec_loss"] == "kl":
            return (target * (torch.log(target.clamp_min(1e-12)) - torch.log(predicted.clamp_min(1e-12)))).sum(-1)
        return ((predicted - target) ** 2).sum(-1)

    def losses(self, users):
        """Per-user loss of the predicted category distribution against the target."""
        seqs = [self.inputs[u] or [self.tokenizer.pad_token_id] for u in users]
        input_ids, mask = pad_batch(seqs, self.tokenizer.pad_token_id, self.device)
        pooled = forward_pooled(self.model, input_ids, mask, self.s["pooling"])
        logits = self.head(pooled.float())
        return self.pointwise_loss(F.softmax(logits, -1), self.targets[users].to(self.device))

    def step(self, users):
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.losses(users).mean()
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def valid_loss(self):
        if not self.valid:
            return None
        self.model.eval()
        bs = self.s["tslrec_batch_size"]
        total = sum(float(self.losses(self.valid[i : i + bs]).sum()) for i in range(0, len(self.valid), bs))
        return total / len(self.valid)

    def valid_baseline(self):
        """The held-out users' loss when each is predicted by the training users' mean spread."""
        if not self.valid or not self.train_users:
            return None
        mean = self.targets[self.train_users].mean(0, keepdim=True)
        return float(self.pointwise_loss(mean, self.targets[self.valid]).mean())

    def trainable_state(self):
        """What training changes: the LoRA weights, the head, the optimizer."""
        return {"lora": {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad},
                "head": self.head.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_trainable_state(self, state):
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in state["lora"].items():
                params[name].copy_(value)
        self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])

    def train(self, epochs, progress=True, saver=None):
        """``epochs`` passes over the training users; with ``saver`` (a :class:`Progress`) the state is
        saved every so often and a saved state is resumed: the same batches, the same randomness."""
        bs, log = self.s["tslrec_batch_size"], logging.getLogger()
        saved = saver.load() if saver else None
        history, epoch0, batch0, losses, before = [], 0, 0, [], 0.0
        if saved:
            self.load_trainable_state(saved)
            history, epoch0, batch0, losses = saved["history"], saved["epoch"], saved["batch"], saved["losses"]
            before = saved["seconds"]
            log.info(f"TSLRec SFT: resuming at epoch {epoch0 + 1}, step {batch0} ({saver.path}, {before:.0f}s of training so far)"
                     if epoch0 < epochs else f"TSLRec SFT: the finished fine-tuning reused ({saver.path})")
        start = time.perf_counter()
        for epoch in range(epoch0, epochs):
            if saved and epoch == epoch0:
                self.rng.setstate(python_rng(saved["epoch_rng"]))
                torch.set_rng_state(saved["torch_rng"])
            epoch_rng = self.rng.getstate()
            users = list(self.train_users)
            self.rng.shuffle(users)
            batches = [users[i : i + bs] for i in range(0, len(users), bs)]
            first = batch0 if saved and epoch == epoch0 else 0
            losses = losses if first else []
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=len(batches), initial=first, desc=f"TSLRec SFT {epoch + 1}/{epochs}", unit="step")
            for b in range(first, len(batches)):
                losses.append(self.step(batches[b]))
                if bar is not None:
                    bar.update(1)
                if saver and saver.due() and b + 1 < len(batches):
                    saver.save({**self.trainable_state(), "epoch": epoch, "batch": b + 1, "losses": losses,
                                "history": history, "epoch_rng": epoch_rng, "torch_rng": torch.get_rng_state(),
                                "seconds": before + time.perf_counter() - start})
            if bar is not None:
                bar.close()
            entry = {"epoch": epoch, "train_loss": sum(losses) / max(len(losses), 1), "valid_loss": self.valid_loss()}
            history.append(entry)
            log.info(f"TSLRec SFT epoch {epoch + 1}: train {entry['train_loss']:.5f}, held-out users {entry['valid_loss']}")
        self.model.eval()
        if saver and epoch0 < epochs:  # the finished training too: a run stopped while extracting resumes after it
            saver.save({**self.trainable_state(), "epoch": epochs, "batch": 0, "losses": losses, "history": history,
                        "epoch_rng": self.rng.getstate(), "torch_rng": torch.get_rng_state(),
                        "seconds": before + time.perf_counter() - start})
        baseline = self.valid_baseline()
        if history and history[-1]["valid_loss"] is not None:
            log.info(f"TSLRec SFT: held-out category loss {history[-1]['valid_loss']:.5f} vs global-shares baseline "
                     f"{baseline:.5f} ({len(self.valid)} held-out users)")
        return {"epochs": history, "valid_baseline": baseline, "inputs": self.input_stats, "seconds": round(before + time.perf_counter() - start, 3),
                "resumed_at": {"epoch": epoch0, "step": batch0} if saved else None,
                "train_users": len(self.train_users), "valid_users": len(self.valid)}


# --------------------------------------------------------------------------- stage 1 of TSLRec, registered
def settings(config, n_items):
    """Everything that changes TSLRec's vectors (the cache key), including the SASRec it clusters."""
    ident = model_identity(config)
    k = int(read(config, "tslrec_k"))
    if not 1 < k <= n_items:
        raise UserError(f"tslrec_k={k}: needs 2 <= K <= the number of items ({n_items}).")
    loss = str(read(config, "tslrec_loss"))
    pooling = read(config, "llm_pooling")
    share = float(read(config, "tslrec_valid_share"))
    return {
        "model": {key: ident[key] for key in ("name", "model_type", "family", "hidden_size", "dtype", "fingerprint")},
        "tslrec_k": k,
        "tslrec_loss": loss,
        "tslrec_epochs": int(read(config, "tslrec_epochs")),
        "tslrec_batch_size": int(read(config, "tslrec_batch_size")),
        "tslrec_lr": float(read(config, "tslrec_lr")),
        "tslrec_max_length": int(read(config, "tslrec_max_length")),
        "tslrec_item_length": int(read(config, "tslrec_item_length")),
        "tslrec_valid_share": share,
        "pooling": pooling,
        "inputs": "instruction once, items' attribute texts joined by ' | ', one-item history at extraction",
        "max_length": int(read(config, "llm_max_length")),
        "lora_r": int(read(config, "lora_r")), "lora_alpha": int(read(config, "lora_alpha")),
        "lora_dropout": float(read(config, "lora_dropout")),
        "lora_target_modules": lora_target_modules(config, ident["model_type"]),
        "pca_dim": check_pca(config, ident["hidden_size"], n_items),
        "seed": int(read(config, "seed", 2020)),
    }


def history_tokens(tokenizer, info, attributes, instruction, s):
    """The :class:`HistoryTokens` of this run's items and settings."""
    bodies = [render("", a) for a in attributes]
    return HistoryTokens(tokenizer, instruction, bodies, s["tslrec_max_length"], s["tslrec_item_length"],
                         eos=wants_eos(info, s["pooling"]))


def make_trainer(config, dataset, attributes, instruction, s, table):
    """Categories from ``table``, histories and targets from ``dataset``, the LoRA-wrapped LM."""
    labels = latent_categories(table, s["tslrec_k"], s["seed"])
    histories = training_histories(dataset, config)
    targets = category_targets(list(histories.values()), labels, s["tslrec_k"])
    torch.manual_seed(s["seed"])
    tokenizer, model, info = load_backbone(config, lora=True)
    inputs = history_tokens(tokenizer, info, attributes, instruction, s)
    trainer = TSLRecTrainer(tokenizer, model, info, inputs, histories.values(), targets, s)
    trainer.labels, trainer.users, trainer.history_tokens = labels, list(histories), inputs
    return trainer


def build(ctx):
    """Cluster the SASRec's items, fine-tune on users' category shares, extract each item alone.
    Several processes: rank 0 fine-tunes and saves the LoRA weights, every rank loads them and
    extracts its share of the items."""
    s = ctx.settings
    extra = {}
    with distributed.main_first():
        if distributed.is_main():
            trainer = make_trainer(ctx.config, ctx.dataset, ctx.attributes, ctx.instruction, s, ctx.collaborative()[1:])
            saver = for_build(ctx)
            sizes = np.bincount(trainer.labels, minlength=s["tslrec_k"])
            extra = {"tslrec": trainer.train(s["tslrec_epochs"], progress=ctx.progress, saver=saver),
                     "category_sizes": {"min": int(sizes.min()), "max": int(sizes.max())}}
            tokenizer, model, info, inputs = trainer.tokenizer, trainer.model, trainer.info, trainer.history_tokens
            if ctx.sharded:
                _save_lora(model, os.path.join(ctx.folder, LORA_FILE))
        else:
            torch.manual_seed(s["seed"])
            tokenizer, model, info = load_backbone(ctx.config, lora=True)
            inputs = history_tokens(tokenizer, info, ctx.attributes, ctx.instruction, s)
            _load_lora(model, os.path.join(ctx.folder, LORA_FILE))
    model = model.merge_and_unload()
    t0 = time.perf_counter()
    ids = [inputs([i])[0] for i in range(len(ctx.texts))]
    vectors = extract(model, tokenizer, ctx.texts, info, pooling=s["pooling"],
                      batch_size=int(read(ctx.config, "llm_batch_size")), progress=ctx.progress, ids=ids, sharded=ctx.sharded,
                      saver=for_build(ctx, EXTRACTION_FILE))
    return vectors, {**extra, "model": dict(info), "extract_seconds": round(time.perf_counter() - t0, 3)}


#: the tuned LoRA weights, for the other ranks of a run in several processes
LORA_FILE = "tslrec_lora.pt"


def _save_lora(model, path):
    torch.save({n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}, path + ".partial")
    os.replace(path + ".partial", path)


def _load_lora(model, path):
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in torch.load(path, map_location="cpu", weights_only=True).items():
            params[name].copy_(value)


register_builder("tslrec", settings, build, "TSLRec: user-level SFT on latent item categories, then each item alone",
                 needs_collaborative=True, shardable=True)
