"""Stage 1: item embeddings from item text, built once and cached in the embedding store.

    python -m recbole_llmemb.generate --method=scft --dataset=ml-100k [--llm_path=...] [--key=value ...]

``item_embeddings(config, dataset, method)`` returns an ``EmbeddingSet`` aligned with
``dataset.field2id_token[ITEM_ID][1:]``: from the store when an intact entry with the same cache
key exists, else built by the method's registered builder and stored.

Cache key = sha256 of (method, store format, the item tokens, the item texts, the model's identity
and the method's settings). Other methods register a builder with ``register_builder``.
"""
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from recbole_llmemb.config import Config, UserError, split_command_line
from recbole_llmemb.data import store
from recbole_llmemb.data.item_text import instruction, item_attributes, render
from recbole_llmemb.generator.settings import setting

GENERATOR_VERSION = 1  # bump when text building or extraction changes meaning


@dataclass
class BuildContext:
    """What a builder gets: the config, the dataset, the aligned item tokens/texts/attributes,
    the store folder it may write extras into (e.g. ``adapter/``), and its own settings."""

    config: object
    dataset: object
    tokens: list
    texts: list
    attributes: list
    instruction: str
    folder: str
    settings: dict
    progress: bool = True


@dataclass
class Builder:
    """``settings(config, n_items) -> dict`` (everything that changes the vectors; enters the cache key;
    may raise UserError early); ``build(ctx) -> (vectors (n, d), extra meta dict)``."""

    name: str
    settings: Callable
    build: Callable
    description: str = ""
    extra: dict = field(default_factory=dict)


BUILDERS = {}


def register_builder(name, settings, build, description=""):
    """Register an embedding method under ``name`` (e.g. "said", "tslrec")."""
    BUILDERS[name] = Builder(name=name, settings=settings, build=build, description=description)
    return BUILDERS[name]


def get_builder(name):
    if name not in BUILDERS:
        raise UserError(f"Unknown embedding method '{name}'. Available: {', '.join(sorted(BUILDERS))}.")
    return BUILDERS[name]


def _log():
    return logging.getLogger()


# --------------------------------------------------------------------------- SCFT builder
def _check_pca(config, hidden, n_items):
    pca_dim = setting(config, "pca_dim")
    if pca_dim is None:
        return None
    pca_dim = int(pca_dim)
    if pca_dim <= 0:
        raise UserError(f"pca_dim={pca_dim}: must be a positive number of dimensions (or ~ for no PCA).")
    if pca_dim > hidden:
        raise UserError(f"pca_dim={pca_dim} is larger than the model's hidden size {hidden}; "
                        f"use pca_dim <= {hidden}, or ~ for no PCA.")
    if pca_dim > n_items:
        raise UserError(f"pca_dim={pca_dim} is larger than the number of items {n_items}; PCA cannot "
                        "produce more components than rows.")
    return pca_dim


def scft_settings(config, n_items, force_steps=None):
    from recbole_llmemb.generator.backbone import lora_target_modules, model_identity
    from recbole_llmemb.generator.pooling import POOLINGS
    from recbole_llmemb.generator.scft import LOSSES, initial_tau, total_steps

    ident = model_identity(config)
    pooling = setting(config, "llm_pooling")
    if pooling not in POOLINGS:
        raise UserError(f"llm_pooling={pooling}: use one of {', '.join(POOLINGS)}.")
    steps = total_steps(config, n_items) if force_steps is None else int(force_steps)
    s = {
        "model": {k: ident[k] for k in ("name", "model_type", "family", "hidden_size", "dtype", "fingerprint")},
        "pooling": pooling,
        "max_length": int(setting(config, "llm_max_length")),
        "scft_steps": steps,
        "pca_dim": _check_pca(config, ident["hidden_size"], n_items),
        "seed": int(setting(config, "seed", 2020)),
    }
    if steps > 0:
        loss = setting(config, "scft_loss")
        if loss not in LOSSES:
            raise UserError(f"scft_loss={loss}: use one of {', '.join(LOSSES)}.")
        s.update(
            lora_r=int(setting(config, "lora_r")),
            lora_alpha=int(setting(config, "lora_alpha")),
            lora_dropout=float(setting(config, "lora_dropout")),
            lora_target_modules=lora_target_modules(config, ident["model_type"]),
            scft_loss=loss,
            scft_tau=initial_tau(config),
            scft_drop_ratio=float(setting(config, "scft_drop_ratio")),
            scft_batch_size=int(setting(config, "scft_batch_size")),
            scft_lr=float(setting(config, "scft_lr")),
            scft_weight_decay=float(setting(config, "scft_weight_decay", 0.0)),
        )
    return s


def build_scft(ctx):
    import torch

    from recbole_llmemb.generator.backbone import load_backbone
    from recbole_llmemb.generator.extract import extract
    from recbole_llmemb.generator.scft import SCFTTrainer

    config, s = ctx.config, ctx.settings
    steps = s["scft_steps"]
    torch.manual_seed(s["seed"])
    tokenizer, model, info = load_backbone(config, lora=steps > 0)
    extra = {"model": {k: v for k, v in info.items()}}
    if steps > 0:
        trainer = SCFTTrainer(config, tokenizer, model, info, ctx.attributes, ctx.instruction)
        stats = trainer.train(steps, progress=ctx.progress)
        _log().info(f"SCFT: {steps} steps in {stats['seconds']:.1f}s, loss {stats['first_loss']:.4f} -> "
                    f"{stats['final_loss']:.4f}, tau {stats['tau']:.3f}")
        trainer.save_adapter(os.path.join(ctx.folder, "adapter"))
        extra["scft"] = stats
        extra["adapter"] = "adapter"
        model = model.merge_and_unload()
    t0 = time.perf_counter()
    vectors = extract(model, tokenizer, ctx.texts, info, pooling=s["pooling"], max_length=s["max_length"],
                      batch_size=int(setting(config, "llm_batch_size")), progress=ctx.progress)
    extra["extract_seconds"] = round(time.perf_counter() - t0, 3)
    return vectors, extra


register_builder("scft", scft_settings, build_scft, "LLMEmb: SCFT (LoRA) then pooled extraction")
register_builder("plain", lambda config, n: scft_settings(config, n, force_steps=0), build_scft,
                 "pooled extraction from the base model (no fine-tuning)")


# --------------------------------------------------------------------------- store + cache
def cache_key(method, tokens, texts, settings):
    payload = json.dumps({
        "method": method,
        "generator_version": GENERATOR_VERSION,
        "store_format": store.FORMAT_VERSION,
        "tokens": store.sha256_texts(tokens),
        "texts": store.sha256_texts(texts),
        "settings": settings,
    }, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def cache_root(config):
    return os.path.abspath(os.path.expanduser(str(setting(config, "embedding_cache_dir", "llmemb_cache/"))))


def entry_path(config, method, key):
    return os.path.join(cache_root(config), str(config["dataset"]), f"{method}-{key[:16]}")


def item_embeddings(config, dataset, method="scft", progress=True):
    """Item vectors for ``dataset`` by ``method``, from the store or built (and stored).

    Logs "reused" or "built" with the seconds. ``result.meta['status']`` is "reused" or "built"
    and ``result.meta['seconds']`` the time this call took (both not stored).
    """
    start = time.perf_counter()
    builder = get_builder(method)
    iid = config["ITEM_ID_FIELD"]
    tokens = [str(t) for t in dataset.field2id_token[iid][1:]]
    attributes = item_attributes(config, dataset)
    instr = instruction(config)
    texts = [render(instr, a) for a in attributes]
    settings = builder.settings(config, len(tokens))
    key = cache_key(method, tokens, texts, settings)
    folder = entry_path(config, method, key)

    if os.path.exists(os.path.join(folder, store.META)) or os.path.exists(os.path.join(folder, store.VECTORS)):
        try:
            es = store.load(folder, expect_key=key)
            if es.tokens != tokens:
                raise store.StoreError("its item tokens differ from the dataset's")
            seconds = time.perf_counter() - start
            es.meta.update(status="reused", seconds=round(seconds, 3))
            _log().info(f"item embeddings ({method}): reused {folder} ({seconds:.1f}s)")
            return es
        except store.StoreError as e:
            _log().warning(f"item embeddings ({method}): store entry {folder} is not intact ({e}); rebuilding.")

    os.makedirs(folder, exist_ok=True)
    ctx = BuildContext(config=config, dataset=dataset, tokens=tokens, texts=texts, attributes=attributes,
                       instruction=instr, folder=folder, settings=settings, progress=progress)
    vectors, extra = builder.build(ctx)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.shape[0] != len(tokens):
        raise RuntimeError(f"builder '{method}' returned {vectors.shape[0]} rows for {len(tokens)} items")
    pca_info = {}
    if settings.get("pca_dim"):
        from recbole_llmemb.generator.extract import pca

        vectors, pca_info = pca(vectors, settings["pca_dim"])
    build_seconds = time.perf_counter() - start
    meta = {
        "method": method,
        "key": key,
        "dataset": str(config["dataset"]),
        "item_id_field": iid,
        "texts_sha256": store.sha256_texts(texts),
        "n_items": len(tokens),
        "settings": settings,
        "build_seconds": round(build_seconds, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **extra,
        **pca_info,
    }
    meta.setdefault("model_path", (extra.get("model") or {}).get("path"))
    with open(os.path.join(folder, "texts.sample.txt"), "w", encoding="utf-8") as f:
        for t, x in list(zip(tokens, texts))[:20]:
            f.write(f"{t}\t{json.dumps(x)}\n")
    es = store.save(folder, tokens, vectors, meta)
    seconds = time.perf_counter() - start
    es.meta = dict(es.meta, status="built", seconds=round(seconds, 3))
    _log().info(f"item embeddings ({method}): built {folder} ({seconds:.1f}s)")
    return es


# --------------------------------------------------------------------------- command line
def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        model, dataset_name, files, args = split_command_line(argv, default_model="SASRec")
        method = str(args.pop("method", "scft"))
        if not dataset_name:
            raise UserError("--dataset=<name> is needed, e.g. --dataset=ml-100k.")
        get_builder(method)
        config = Config(model, dataset_name, config_file_list=files, config_dict=args)
        from recbole_llmemb.quick_start import load_dataset

        start = time.perf_counter()
        dataset = load_dataset(config)
        es = item_embeddings(config, dataset, method=method)
        total = time.perf_counter() - start
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{es.meta['status']}: {es.path} ({es.vectors.shape[0]} items x {es.vectors.shape[1]}) "
          f"in {es.meta['seconds']:.1f}s (with dataset loading {total:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
