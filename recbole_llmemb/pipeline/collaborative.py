"""The collaborative item table for LLMEmb's alignment: a SASRec trained first on the same split.

    python -m recbole_llmemb.pipeline.collaborative --model=LLMEmbSASRec --dataset=ml-100k [--key=value ...]

builds (or finds) the table the given model would use, as its own stage.

Trained through the same pipeline as any run (so it leaves its own results file, a baseline for
free) and cached in the embedding store, keyed by the data files' content and every SASRec
setting that changes what it learns.
"""
import hashlib
import json
import os
import sys
from logging import getLogger

from recbole_llmemb import distributed
from recbole_llmemb.data import store
from recbole_llmemb.data.dataset import align_item_embeddings
from recbole_llmemb.evaluation.results import config_digest, json_safe
from recbole_llmemb import settings
from recbole_llmemb.pipeline.config import (
    Config, UserError, get_model_class, item_table_size, is_plugin_model, one_process_only, split_command_line,
)
from recbole_llmemb.pipeline.training import load_dataset, train_and_evaluate


#: the alignment SASRec's whole state dict, kept in its store entry for RAT's warm start
CHECKPOINT = "sasrec_state.pt"


def _state_bytes(model):
    import io

    import torch

    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    return buf.getvalue()


def load_state(es):
    """The alignment SASRec's state dict from its store entry (tensors only, checked)."""
    import io

    import torch

    return torch.load(io.BytesIO(store.load_extra(es, CHECKPOINT)), map_location="cpu", weights_only=True)


def _plugin_only_keys():
    """Settings that do not change the SASRec being trained: the generator's, RAT's, the re-ranker's."""
    return (settings.keys(group="generator") | settings.keys(group="rat") | settings.keys(used_by="rerank")
            | {"model", "report", "collab_epochs", "eval_checkpoint", "resume_checkpoint"})


def sasrec_config(config, model_class):
    """SASRec on the same data, split and training settings, sized to the model's item table.

    Built from the user's layers only (their config files and command line, over the plugin's
    dataset props), never from the plugin model's own props: so LLMEmbSASRec and LLMEmbGRU4Rec
    with the same table size share one cached SASRec, and it equals a plain ``--model=SASRec`` run.
    """
    overrides = {k: v for k, v in config.user_config_dict.items() if k not in _plugin_only_keys()}
    overrides["hidden_size"] = item_table_size(model_class, config) if is_plugin_model(model_class) else config["hidden_size"]
    overrides["epochs"] = config["collab_epochs"] or config["epochs"]
    overrides["text_blend"] = 0  # the plain SASRec, never re-ranked (its results file is the baseline)
    overrides.pop("embedding_size", None)
    return Config("SASRec", config["dataset"], config_file_list=config.user_config_files, config_dict=overrides)


def _files_digest(config):
    h = hashlib.sha256()
    folder = config["data_path"]
    for suffix in sorted(config["load_col"] or {"inter": None}):
        path = os.path.join(folder, f"{config['dataset']}.{suffix}")
        if os.path.isfile(path):
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def cache_entry(config):
    """``(sasrec config, cache key, store folder)`` of the alignment SASRec for ``config``."""
    sas_config = sasrec_config(config, get_model_class(config["model"]))
    # RAT/generator keys can still reach it through the user's config files: never part of the key (nor
    # the re-ranker's weight: the alignment SASRec never has one)
    ignored = _plugin_only_keys() | {"embedding_size", "text_blend"}
    snapshot = {k: json_safe(v) for k, v in sorted(sas_config.final_config_dict.items()) if k not in ignored}
    if not snapshot.get("new_items"):  # no new items: the key entries made before these settings existed had
        snapshot.pop("new_items", None)
        snapshot.pop("new_items_negatives", None)
    if snapshot.get("target_weights") == "none":  # the default: the key entries made before the setting had
        snapshot.pop("target_weights", None)
    if not snapshot.get("mask_history"):  # likewise; masked, validation (so the best epoch) differs
        snapshot.pop("mask_history", None)
    # several processes deal the training batches otherwise (each rank its sampler's share): another
    # SASRec, keyed by their number (one process keeps the key it always had)
    if snapshot.get("single_spec") is False:
        snapshot["processes"] = distributed.world_size()
    key = hashlib.sha256(json.dumps({"files": _files_digest(sas_config), "config": config_digest(snapshot)}).encode()).hexdigest()
    return sas_config, key, os.path.join(store.cache_root(config), str(config["dataset"]), f"collab-sasrec-{key[:16]}")


def _intact(folder, key):
    """The entry in ``folder`` when it is whole and has ``key``, else ``None`` (a damaged one is logged)."""
    if not os.path.exists(os.path.join(folder, store.META)):
        return None
    try:
        es = store.load(folder, expect_key=key)
        store.load_extra(es, CHECKPOINT)
        return es
    except store.StoreError as e:
        getLogger().warning(f"collaborative SASRec: cache entry {folder} is not intact ({e}); retraining.")
        return None


def collaborative_store(config):
    """The alignment SASRec's item table as a store entry (``meta['results']``: its results file).

    In several processes rank 0 decides whether to reuse, every rank trains (it is a distributed run
    like any other), rank 0 writes the entry and the others then read it."""
    sas_config, key, folder = cache_entry(config)
    logger = getLogger()
    es = _intact(folder, key) if distributed.is_main() else None
    if distributed.broadcast_object(es is not None):
        with distributed.main_first():
            es = es or store.load(folder, expect_key=key)
        logger.info(f"collaborative SASRec: reused {folder}")
        return es
    logger.info("collaborative SASRec: training it on the same split (cached for later runs)")
    results, trainer, sas_dataset = train_and_evaluate(sas_config)
    with distributed.main_first():
        if distributed.is_main():
            weight = trainer.model.item_embedding.weight.detach().cpu().numpy()  # best checkpoint: loaded by the test
            tokens = [str(t) for t in sas_dataset.field2id_token[sas_dataset.iid_field][1:]]
            meta = {"key": key, "method": "collaborative-sasrec", "results": results["path"],
                    "test_ndcg@10": results["test"]["overall"].get("ndcg@10")}
            es = store.save(folder, tokens, weight[1:], meta, extras={CHECKPOINT: _state_bytes(trainer.model)})
            logger.info(f"collaborative SASRec: built {folder}")
        else:
            es = store.load(folder, expect_key=key)
    return es


def collaborative_item_embeddings(config, dataset):
    """``(table, state, results file)``: the SASRec's (item_num, hidden) item embeddings for
    ``dataset``, its whole state dict (RAT's warm start) and its own results file (a baseline run
    on the same split), from the cache or trained now."""
    es = collaborative_store(config)
    table = align_item_embeddings(dataset, es.tokens, es.vectors, method="collaborative SASRec")
    return table, load_state(es), es.meta.get("results")


def main(argv=None):
    """Build the collaborative table for ``--model`` on ``--dataset`` alone; exit 2 on a user error."""

    try:
        model, dataset_name, files, args = split_command_line(sys.argv[1:] if argv is None else argv)
        one_process_only(args, "python -m recbole_llmemb.pipeline.collaborative")
        config = Config(model, dataset_name, files, args)
        if not is_plugin_model(get_model_class(config["model"])):
            raise UserError(f"Model '{config['model']}' uses no collaborative table (try LLMEmbSASRec).")
        from recbole.utils import init_logger

        init_logger(config)
        load_dataset(config)  # the atomic files' checks, before any training
        es = collaborative_store(config)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"collaborative table: {es.path} ({es.vectors.shape[0]} items x {es.vectors.shape[1]})")
    print(f"SASRec results: {es.meta.get('results')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
