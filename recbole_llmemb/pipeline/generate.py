"""Stage 1: item embeddings from item text, built once and cached in the embedding store.

    python -m recbole_llmemb.pipeline.generate --method=scft --dataset=ml-100k [--llm_path=...] [--key=value ...]

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
import numpy as np

from recbole_llmemb import distributed
from recbole_llmemb.pipeline.config import Config, UserError, one_process_only, split_command_line
from recbole_llmemb.data import store
from recbole_llmemb.data.dataset import align_item_embeddings
from recbole_llmemb.data.item_text import instruction, item_attributes, render
from recbole_llmemb.generator import extract, random_vectors, said, scft, tslrec  # noqa: F401  (registering their builders)
from recbole_llmemb.generator.progress import clear_all as clear_progress
from recbole_llmemb.generator.registry import BuildContext, get_builder
from recbole_llmemb.settings import read
from recbole_llmemb.pipeline.collaborative import cache_entry as cache_entry_of_sasrec, collaborative_store

GENERATOR_VERSION = 1  # bump when text building or extraction changes meaning


def _log():
    return logging.getLogger()


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


def entry_path(config, method, key):
    return os.path.join(store.cache_root(config), str(config["dataset"]), f"{method}-{key[:16]}")


def trained_config(config):
    """The config of the run that trained ``eval_checkpoint`` (else ``config``): the alignment SASRec a
    stage reads is keyed by its training settings, and an evaluation may change those that only pick
    the best epoch (``mask_history``, ``eval_args``); keyed by the evaluation's own, the stages the
    checkpoint read would be trained again."""
    if not config["eval_checkpoint"]:
        return config
    from recbole_llmemb.compat import load_checkpoint

    trained = load_checkpoint(config["eval_checkpoint"]).get("config")
    return config if trained is None else trained


def sasrec_table(config, dataset):
    """The alignment SASRec's item table in ``dataset``'s id order (trained now or reused)."""
    es = collaborative_store(config)
    return align_item_embeddings(dataset, es.tokens, es.vectors, method="collaborative SASRec")


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
    dtype = read(config, "store_dtype")
    if dtype != "float32":  # (float32 entries keep the keys they had before the setting existed)
        settings["store_dtype"] = dtype
    sasrec_config = trained_config(config) if builder.needs_collaborative else None
    if builder.needs_collaborative:  # the alignment SASRec it reads is part of what it builds from
        settings["sasrec"] = cache_entry_of_sasrec(sasrec_config)[1]
    key = cache_key(method, tokens, texts, settings)
    folder = entry_path(config, method, key)

    # several processes: rank 0 decides between reuse and build, builds (every rank extracts a share
    # where the method only extracts), writes the one entry; the others then read it
    es = _reusable(folder, key, tokens, method, start) if distributed.is_main() else None
    if distributed.broadcast_object(es is not None):
        return es or _reusable(folder, key, tokens, method, start)
    table = sasrec_table(sasrec_config, dataset) if builder.needs_collaborative else None  # every rank: it may train
    sharded = builder.shardable and distributed.is_distributed()
    if distributed.is_main() or sharded:
        if distributed.is_main():
            os.makedirs(folder, exist_ok=True)
        ctx = BuildContext(config=config, dataset=dataset, tokens=tokens, texts=texts, attributes=attributes,
                           instruction=instr, folder=folder, settings=settings, progress=progress and distributed.is_main(),
                           key=key, collaborative=lambda: table, sharded=sharded)
        vectors, extra = builder.build(ctx)
    with distributed.main_first():
        if not distributed.is_main():
            return _reusable(folder, key, tokens, method, start)
        for changes, other in extra.pop("also", []):  # what the same training gives under other settings
            also = {**settings, **changes}
            also_key = cache_key(method, tokens, texts, also)
            also_folder = entry_path(config, method, also_key)
            if _reusable(also_folder, also_key, tokens, method, start) is None:
                os.makedirs(also_folder, exist_ok=True)
                _save(config, method, also_key, also_folder, tokens, texts, also, other, dict(extra, built_with=key),
                      dtype, start)
        es = _save(config, method, key, folder, tokens, texts, settings, vectors, extra, dtype, start)
        clear_progress(folder)  # the entry is whole: a rerun reads it, not the progress
        return es


def _reusable(folder, key, tokens, method, start):
    """The intact entry in ``folder`` with this key and these items, else ``None`` (a damaged one logged)."""
    if not (os.path.exists(os.path.join(folder, store.META)) or os.path.exists(os.path.join(folder, store.VECTORS))):
        return None
    try:
        es = store.load(folder, expect_key=key, mmap=True)  # mapped: the caller copies the rows it needs
        if es.tokens != tokens:
            raise store.StoreError("its item tokens differ from the dataset's")
    except store.StoreError as e:
        _log().warning(f"item embeddings ({method}): store entry {folder} is not intact ({e}); rebuilding.")
        return None
    seconds = time.perf_counter() - start
    es.meta.update(status="reused", seconds=round(seconds, 3))
    _log().info(f"item embeddings ({method}): reused {folder} ({seconds:.1f}s)")
    return es


def _save(config, method, key, folder, tokens, texts, settings, vectors, extra, dtype, start):
    """Check what a builder returned, reduce it (PCA) and write it as the entry in ``folder``."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.shape[0] != len(tokens):
        raise RuntimeError(f"builder '{method}' returned {vectors.shape[0]} rows for {len(tokens)} items")
    pca_info = {}
    if settings.get("pca_dim"):
        vectors, pca_info = extract.pca(vectors, settings["pca_dim"])
    meta = {
        "method": method,
        "key": key,
        "dataset": str(config["dataset"]),
        "item_id_field": config["ITEM_ID_FIELD"],
        "texts_sha256": store.sha256_texts(texts),
        "n_items": len(tokens),
        "settings": settings,
        "build_seconds": round(time.perf_counter() - start, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **extra,
        **pca_info,
    }
    meta.setdefault("model_path", (extra.get("model") or {}).get("path"))
    with open(os.path.join(folder, "texts.sample.txt"), "w", encoding="utf-8") as f:
        for t, x in list(zip(tokens, texts))[:20]:
            f.write(f"{t}\t{json.dumps(x)}\n")
    es = store.save(folder, tokens, vectors, meta, dtype=dtype)
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
        one_process_only(args, "python -m recbole_llmemb.pipeline.generate")
        if not dataset_name:
            raise UserError("--dataset=<name> is needed, e.g. --dataset=ml-100k.")
        get_builder(method)
        config = Config(model, dataset_name, config_file_list=files, config_dict=args)
        from recbole_llmemb.pipeline.training import load_dataset

        start = time.perf_counter()
        dataset = load_dataset(config)
        es = item_embeddings(config, dataset, method=method)
        total = time.perf_counter() - start
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{es.meta['status']}: {es.path} ({es.vectors.shape[0]} items x {es.vectors.shape[1]}) "
          f"in {es.meta['seconds']:.1f}s (with dataset loading {total:.1f}s)")
    import torch

    if torch.cuda.is_available() and torch.cuda.max_memory_allocated():
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
