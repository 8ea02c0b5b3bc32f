"""SAID's stage 1 (Hu et al., WWW 2024 Companion): item ids become soft tokens from which the
language model must reproduce the item's text; the learned per-item vectors are the output.

Each item has a trainable id vector; a projector (``Linear -> GELU -> Linear``) turns it into
``said_tokens`` soft tokens in the LM's input-embedding space. The LM reads the soft tokens, then
the item's text, and learns by teacher forcing to produce that text; the loss counts text tokens
only (not the soft tokens, padding or special tokens):

* causal LMs (the paper): next-token prediction of ``text + EOS`` after the soft tokens;
* encoders such as the packaged MiniLM: ``[CLS] soft tokens text [SEP]`` with ``said_mask_ratio``
  of the text's tokens (all, by default) replaced by the mask token and predicted from the soft
  tokens through a trained head (:class:`MaskedTokenHead`: encoders ship no LM head) scored against
  the word-embedding matrix.

The stage reports what it learned against what needs no item at all: its loss (nats per predicted
token, eval mode, a fixed sample of items) beside the word-frequency baseline (each token predicted
by its frequency in the item texts) and the same by position in the text
(:func:`frequency_baselines`). Only a loss below the positional baseline says that the soft tokens
carry something of their own item.

The id vectors start, by default (``said_id_init: text``), at the base model's pooled item-text
vectors reduced by PCA (:func:`text_codes`), or at random (``random``, the paper): random codes
barely move in the stage's few steps an item, so what the export carries is decided by where they
start (on Beauty under the paper's protocol the text start ranks 3% better overall, 7% on the tail).

The LM is frozen (``said_lora: False``) or LoRA-tuned. The exported vector of an item is the mean
of its soft tokens (``said_export: tokens``, in the LM's input space) or its id vector (``id``); one
stage stores both (each under its own cache key), so the choice costs a model's training, not a stage.
The item text is the attribute text without the instruction line (a constant line teaches nothing).
"""
import logging
import math
import random
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from recbole_llmemb import settings
from recbole_llmemb.data.item_text import render
from recbole_llmemb.errors import UserError
from recbole_llmemb.generator.backbone import load_backbone, lora_target_modules, model_identity, read_model_config
from recbole_llmemb.generator.extract import check_pca, extract, pca
from recbole_llmemb.generator.progress import StepTrainer, for_build
from recbole_llmemb.generator.registry import register_builder
from recbole_llmemb.settings import read

EXPORTS = settings.choices("said_export")
VOCABS = settings.choices("said_vocab")


def text_codes(vectors, dim):
    """Id vectors that start arranged by meaning: the text vectors' top ``dim`` principal components,
    each scaled to unit variance (the random start's scale); returns (codes, share of variance kept).
    A catalogue of n items has n - 1 components with variance (a model of width w, w): fewer columns then."""
    dim = max(1, min(int(dim), len(vectors) - 1, np.shape(vectors)[1]))
    projected, info = pca(vectors, dim)
    codes = torch.as_tensor(projected)
    return codes / codes.std(0).clamp_min(1e-12), info["pca_explained_variance"]


class SoftTokens(nn.Module):
    """Item id -> ``k`` soft tokens of size ``lm_dim``: an id table and a projector."""

    def __init__(self, n_items, k, lm_dim, id_dim=64, hidden=None, token_std=1.0):
        super().__init__()
        hidden = int(hidden or lm_dim)
        self.k, self.lm_dim = int(k), int(lm_dim)
        self.ids = nn.Embedding(int(n_items), int(id_dim))
        nn.init.normal_(self.ids.weight, std=1.0)
        self.projector = nn.Sequential(nn.Linear(int(id_dim), hidden), nn.GELU(), nn.Linear(hidden, self.k * self.lm_dim))
        # soft tokens start at the word embeddings' scale, so the LM reads them as it reads words
        nn.init.normal_(self.projector[2].weight, std=float(token_std) / math.sqrt(hidden))
        nn.init.zeros_(self.projector[2].bias)

    def forward(self, items):
        return self.projector(self.ids(items)).view(len(items), self.k, self.lm_dim)


class MaskedTokenHead(nn.Module):
    """The encoder's hidden state -> scores over the vocabulary: BERT's MLM transform (dense, GELU,
    LayerNorm) and a dense layer that starts at zero, dotted with the frozen word embeddings, plus a
    per-token bias that starts at the log word frequencies: training starts exactly at the
    word-frequency baseline and can only learn from there."""

    def __init__(self, hidden, log_frequency):
        super().__init__()
        self.transform = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden), nn.Linear(hidden, hidden))
        nn.init.zeros_(self.transform[3].weight)
        nn.init.zeros_(self.transform[3].bias)
        self.bias = nn.Parameter(torch.as_tensor(log_frequency, dtype=torch.float32).clone())

    def forward(self, hidden, words):
        return self.transform(hidden) @ words.t() + self.bias


def frequency_baselines(targets, vocab_size, fit=None):
    """Nats per predicted token of the two models that know no item, on ``targets`` (each example's
    predicted token ids, in text order), averaged as the stage's loss is (per example, then over
    examples): each token by its frequency, and by its frequency at its position, both counted over
    ``fit`` (default: ``targets``; the stage counts over every item's text)."""
    counts = torch.zeros(vocab_size, dtype=torch.float64)
    by_position = {}
    for ids in targets if fit is None else fit:
        for p, t in enumerate(ids):
            counts[t] += 1
            by_position.setdefault(p, {}).setdefault(t, 0)
            by_position[p][t] += 1
    p_token = counts / counts.sum()
    position_totals = {p: sum(c.values()) for p, c in by_position.items()}

    def positional(p, t):  # a token never seen at its position falls back on its overall frequency
        seen = by_position.get(p, {}).get(t, 0)
        return seen / position_totals[p] if seen else float(p_token[t]) / max(position_totals.get(p, 1), 1)

    plain, at_position = [], []
    for ids in targets:
        if ids:
            plain.append(float(-torch.log(p_token[ids]).mean()))
            at_position.append(sum(-math.log(positional(p, t)) for p, t in enumerate(ids)) / len(ids))
    return {"word_frequency": sum(plain) / max(len(plain), 1),
            "word_frequency_by_position": sum(at_position) / max(len(at_position), 1)}


class SAIDTrainer(StepTrainer):
    """Trains the soft tokens (and LoRA when enabled) to reproduce each item's text."""

    def __init__(self, config, tokenizer, model, info, texts, settings):
        self.tokenizer, self.model, self.info, self.s = tokenizer, model, info, settings
        self.decoder = info["family"] == "decoder"
        self.device = next(model.parameters()).device
        self.words = model.get_input_embeddings()
        budget = settings["said_max_length"]
        self.text_ids = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=budget)["input_ids"]
        if self.decoder and tokenizer.eos_token_id is None:
            raise UserError(f"llm_path '{info['path']}': SAID with a causal LM needs an EOS token in its tokenizer.")
        if not self.decoder and (tokenizer.mask_token_id is None or tokenizer.cls_token_id is None):
            raise UserError(f"llm_path '{info['path']}': SAID with an encoder needs [MASK] and [CLS] tokens in its tokenizer.")
        # scored against the tokens the item texts use (``said_vocab: corpus``) or the whole vocabulary:
        # on a CPU the 30k-word output layer is most of a step's work, and no text needs the rest
        self.body = model.get_decoder() if self.decoder else model
        self.output = (model.get_output_embeddings() if self.decoder else self.words).weight
        used = sorted({t for ids in self.text_ids for t in ids} | ({tokenizer.eos_token_id} if self.decoder else set()))
        vocab = torch.arange(self.output.shape[0]) if settings["said_vocab"] == "full" else torch.tensor(used, dtype=torch.long)
        self.vocab = vocab.to(self.device)
        self.to_vocab = torch.full((self.output.shape[0],), -100, dtype=torch.long, device=self.device)
        self.to_vocab[self.vocab] = torch.arange(len(self.vocab), device=self.device)
        std = float(self.words.weight.detach().float().std())
        torch.manual_seed(settings["seed"])
        self.soft = SoftTokens(len(texts), settings["said_tokens"], info["hidden_size"], settings["said_id_dim"],
                               token_std=std).to(self.device)
        self.head = None
        if not self.decoder:
            counts = torch.zeros(len(self.vocab), dtype=torch.float64)
            for ids in self.text_ids:
                counts.index_add_(0, self.to_vocab[torch.as_tensor(ids, dtype=torch.long, device=self.device)].cpu(),
                                  torch.ones(len(ids), dtype=torch.float64))
            log_frequency = torch.log((counts + 1e-3) / (counts + 1e-3).sum()).float()
            self.head = MaskedTokenHead(info["hidden_size"], log_frequency).to(self.device)
        trained = list(self.soft.parameters()) + (list(self.head.parameters()) if self.head is not None else [])
        groups = [{"params": trained, "lr": settings["said_lr"]}]
        lora = [p for p in model.parameters() if p.requires_grad]
        if lora:
            groups.append({"params": lora, "lr": settings["said_lora_lr"]})
        self.optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
        self.rng = random.Random(settings["seed"])
        #: the items trained on (all of them; a probe may train on fewer)
        self.items = list(range(len(self.text_ids)))
        self.order = []

    def start_ids_from_text(self, texts, pooling, max_length, batch_size, progress=False):
        """Set the id vectors to :func:`text_codes` of the backbone's pooled ``texts`` (the plain method's
        vectors; LoRA, zero at the start, changes nothing); columns the text cannot fill (a catalogue
        smaller than said_id_dim) keep their random start. Returns (explained variance, components)."""
        vectors = extract(self.body, self.tokenizer, texts, self.info, pooling=pooling, max_length=max_length,
                          batch_size=batch_size, progress=progress)
        codes, explained = text_codes(vectors, self.soft.ids.embedding_dim)
        with torch.no_grad():
            self.soft.ids.weight[:, :codes.shape[1]] = codes.to(self.soft.ids.weight)
        return explained, int(codes.shape[1])

    # ------------------------------------------------------------------ one batch
    def _inputs(self, items, texts_of=None):
        """``(inputs_embeds, attention_mask, targets)`` for soft tokens of ``items`` and the texts of
        ``texts_of`` (default: the same items); ``targets`` is -100 where nothing is predicted."""
        texts_of = items if texts_of is None else texts_of
        k, tok = self.s["said_tokens"], self.tokenizer
        rows, targets = [], []
        for j in texts_of:
            ids = list(self.text_ids[j])
            if self.decoder:  # [soft] text EOS: position t predicts token t+1
                seq = ids + [tok.eos_token_id]
                target = [-100] * (k - 1) + seq + [-100]
                inp = seq
            else:  # [CLS] [soft] masked text [SEP]: each masked position predicts its own token
                n_mask = max(1, round(self.s["said_mask_ratio"] * len(ids))) if ids else 0
                masked = set(self.rng.sample(range(len(ids)), n_mask)) if n_mask < len(ids) else set(range(len(ids)))
                inp = [tok.cls_token_id] + [tok.mask_token_id if i in masked else t for i, t in enumerate(ids)] + [tok.sep_token_id]
                target = [-100] * (1 + k) + [t if i in masked else -100 for i, t in enumerate(ids)] + [-100]
            rows.append(inp)
            targets.append(target)
        width = max(len(r) for r in rows) + k
        n = len(rows)
        pad = tok.pad_token_id
        token_ids = torch.full((n, width - k), pad, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        target_t = torch.full((n, width), -100, dtype=torch.long)
        for r, (inp, target) in enumerate(zip(rows, targets)):
            token_ids[r, : len(inp)] = torch.tensor(inp)
            mask[r, : len(inp) + k] = 1
            target_t[r, : len(target)] = torch.tensor(target)
        words = self.words(token_ids.to(self.device))
        soft = self.soft(torch.as_tensor(items, device=self.device)).to(words.dtype)
        if self.decoder:
            embeds = torch.cat([soft, words], dim=1)
        else:
            embeds = torch.cat([words[:, :1], soft, words[:, 1:]], dim=1)
        return embeds, mask.to(self.device), target_t.to(self.device)

    def example_losses(self, items, texts_of=None):
        """Mean reconstruction loss per example (soft tokens of ``items[r]``, text of ``texts_of[r]``),
        the output layer applied at the predicted positions only."""
        embeds, mask, target = self._inputs(items, texts_of)
        out = self.body(inputs_embeds=embeds, attention_mask=mask)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        where = target != -100
        words = self.output[self.vocab].float()
        logits = self.head(hidden[where].float(), words) if self.head is not None else hidden[where].float() @ words.t()
        loss = F.cross_entropy(logits, self.to_vocab[target[where]], reduction="none")
        rows = where.nonzero()[:, 0]
        total = torch.zeros(len(target), device=loss.device).index_add(0, rows, loss)
        return total / where.sum(1).clamp_min(1)

    # ------------------------------------------------------------------ training
    def next_batch(self):
        """The next ``said_batch_size`` of :attr:`items`, each pass over them in a new random order."""
        bs = min(self.s["said_batch_size"], len(self.items))
        if len(self.order) < bs:
            perm = list(self.items)
            self.rng.shuffle(perm)
            self.order += perm
        batch, self.order = self.order[:bs], self.order[bs:]
        return batch

    def predicted_tokens(self, item):
        """The token ids the stage predicts for an item (its text; a causal LM also its EOS)."""
        return list(self.text_ids[item]) + ([self.tokenizer.eos_token_id] if self.decoder else [])

    @torch.no_grad()
    def evaluate(self, sample=1024, among=None):
        """Loss (nats per predicted token, eval mode) on a fixed sample of items (of ``among``, default
        all) beside the two frequency baselines (counted over every item's text) on the same items' tokens."""
        among = list(range(len(self.text_ids))) if among is None else list(among)
        items = sorted(random.Random(0).sample(among, min(sample, len(among))))
        self.model.eval()
        if self.head is not None:
            self.head.eval()
        bs = self.s["said_batch_size"]
        losses = torch.cat([self.example_losses(items[i : i + bs]) for i in range(0, len(items), bs)])
        fit = [self.to_vocab[torch.as_tensor(self.predicted_tokens(i), dtype=torch.long, device=self.device)].tolist()
               for i in range(len(self.text_ids))]
        baselines = frequency_baselines([fit[i] for i in items], len(self.vocab), fit=fit)
        return {"loss": float(losses.mean()), "items": len(items), **baselines}

    def step(self):
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.example_losses(self.next_batch()).mean()
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def trained_parameters(self):
        named = {f"soft.{n}": p for n, p in self.soft.named_parameters()}
        if self.head is not None:
            named.update({f"head.{n}": p for n, p in self.head.named_parameters()})
        return {**named, **{f"model.{n}": p for n, p in self.model.named_parameters() if p.requires_grad}}

    def train(self, steps, progress=True, saver=None):
        if self.head is not None:
            self.head.train()
        losses, seconds, resumed_at = self.run_steps(steps, "SAID", progress, saver)
        self.model.eval()
        head, tail = losses[:10], losses[-10:]
        return {"steps": steps, "seconds": round(seconds, 3),
                "first_loss": sum(head) / len(head) if head else None,
                "final_loss": sum(tail) / len(tail) if tail else None, "resumed_at": resumed_at}

    @torch.no_grad()
    def vectors(self, export):
        """One vector per item: the mean of its soft tokens, or its id vector."""
        if export == "id":
            return self.soft.ids.weight.detach().float().cpu().numpy()
        items = torch.arange(len(self.text_ids), device=self.device)
        return torch.cat([self.soft(b).mean(1) for b in items.split(1024)]).float().cpu().numpy()


# --------------------------------------------------------------------------- stage 1 of SAID, registered
def said_texts(attributes):
    """The texts SAID reproduces: the attribute text, no instruction line."""
    return [render("", a) for a in attributes]


def total_steps(config, n_items):
    """``said_steps`` when set, else ``said_epochs`` passes over the items."""
    steps = read(config, "said_steps")
    if steps is not None:
        return int(steps)
    bs = int(read(config, "said_batch_size"))
    return int(math.ceil(float(read(config, "said_epochs")) * math.ceil(n_items / bs)))


def settings(config, n_items):
    """Everything that changes SAID's vectors (the cache key); bad values refused before any work."""
    ident = model_identity(config)
    k = int(read(config, "said_tokens"))
    limit = getattr(read_model_config(ident["path"]), "max_position_embeddings", None)
    said_max_length = int(read(config, "said_max_length"))
    if isinstance(limit, int) and k + said_max_length + 2 > limit:
        raise UserError(f"said_tokens={k} + said_max_length={said_max_length} (+2 special tokens) exceeds the "
                        f"model's limit of {limit} positions: lower said_max_length to at most {limit - k - 2}.")
    vocab = str(read(config, "said_vocab"))
    export = str(read(config, "said_export"))
    mask_ratio = float(read(config, "said_mask_ratio"))
    batch = int(read(config, "said_batch_size"))
    lora = bool(read(config, "said_lora"))
    s = {
        "model": {key: ident[key] for key in ("name", "model_type", "family", "hidden_size", "dtype", "fingerprint")},
        "said_max_length": said_max_length,
        "said_vocab": vocab,
        "said_tokens": k,
        "said_id_dim": int(read(config, "said_id_dim")),
        "said_steps": total_steps(config, n_items),
        "said_batch_size": batch,
        "said_lr": float(read(config, "said_lr")),
        "said_mask_ratio": mask_ratio,
        "said_export": export,
        "said_lora": lora,
        "encoder_head": "MLM transform from zero, word-frequency bias",
        "pca_dim": check_pca(config, ident["hidden_size"], n_items),
        "seed": int(read(config, "seed", 2020)),
    }
    if str(read(config, "said_id_init")) == "text":  # the random start keeps the key it had before this setting
        s.update(said_id_init="text", pooling=read(config, "llm_pooling"), max_length=int(read(config, "llm_max_length")))
    if s["said_steps"] < 1:
        raise UserError(f"said_steps={s['said_steps']}: SAID's vectors are learned; give at least one step.")
    if lora:
        s.update(lora_r=int(read(config, "lora_r")), lora_alpha=int(read(config, "lora_alpha")),
                 lora_dropout=float(read(config, "lora_dropout")),
                 lora_target_modules=lora_target_modules(config, ident["model_type"]),
                 said_lora_lr=float(read(config, "said_lora_lr")))
    else:
        s["said_lora_lr"] = 0.0
    return s


def make_trainer(config, texts, s):
    """The backbone (frozen or LoRA-wrapped; causal LMs with their LM head) and a SAID trainer."""
    tokenizer, model, info = load_backbone(config, lora=s["said_lora"], causal_lm=s["model"]["family"] == "decoder")
    if not s["said_lora"]:
        model.requires_grad_(False)
    return SAIDTrainer(config, tokenizer, model, info, texts, s)


def build(ctx):
    """Train the soft tokens on the item texts, then export one vector per item."""
    s = ctx.settings
    trainer = make_trainer(ctx.config, said_texts(ctx.attributes), s)
    start = {}
    if s.get("said_id_init") == "text":
        start["explained_variance"], start["components"] = trainer.start_ids_from_text(
            ctx.texts, s["pooling"], s["max_length"], int(read(ctx.config, "llm_batch_size")), ctx.progress)
    saver = for_build(ctx)
    stats = trainer.train(s["said_steps"], progress=ctx.progress, saver=saver)
    stats["evaluation"] = e = trainer.evaluate()
    if start:
        stats["id_start_from_text"] = start
    logging.getLogger().info(
        f"SAID: {stats['steps']} steps in {stats['seconds']:.1f}s; reconstruction loss {e['loss']:.4f} vs word-frequency "
        f"baseline {e['word_frequency']:.4f} ({e['word_frequency_by_position']:.4f} by position) nats per token, "
        f"{e['items']} items")
    meta = {"said": stats, "model": dict(trainer.info)}
    other = next(x for x in EXPORTS if x != s["said_export"])  # stored beside it: the export is chosen by measurement
    if not (s["pca_dim"] and s["pca_dim"] > s["said_id_dim"]):  # (a PCA wider than the id vectors fits one export)
        meta["also"] = [({"said_export": other}, trainer.vectors(other))]
    return trainer.vectors(s["said_export"]), meta


register_builder("said", settings, build, "SAID: soft tokens from item ids, trained to reproduce the item text")
