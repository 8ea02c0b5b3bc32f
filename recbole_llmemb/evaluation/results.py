"""The results file: one JSON per run, written atomically, in the schema the report reads."""
import enum
import hashlib
import json
import os
import sys
import tempfile
import time

SCHEMA = "recbole-llmemb/results/v1"
# settings that name a place or a machine, not an experiment: left out of the digest
_VOLATILE = {"checkpoint_dir", "results_dir", "data_path", "device", "gpu_id", "use_gpu", "embedding_cache_dir",
             "show_progress", "log_wandb", "state", "verbose", "local_rank", "world_size", "nproc", "offset", "ip", "port"}


def json_safe(value):
    """Config values as JSON: enums by name, numpy/torch scalars as numbers, the rest as text."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):
        try:
            return value.item()
        except (ValueError, TypeError):
            pass
    return str(value)


def config_snapshot(config):
    """The run's settings, less those it does not read (``Config.unused_keys``: e.g. the language
    model's for a RecBole model without the re-ranker)."""
    unused = getattr(config, "unused_keys", ())
    return {k: json_safe(v) for k, v in sorted(config.final_config_dict.items()) if k not in unused}


def config_digest(snapshot):
    stable = {k: v for k, v in snapshot.items() if k not in _VOLATILE}
    return hashlib.sha1(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:12]


def protocol(config):
    return {
        # "paper" under props/paper.yaml (sampled evaluation, one sampled negative); "full" otherwise
        "name": config["protocol_name"] or "full",
        "loss_type": config["loss_type"],
        "split": json_safe(config["eval_args"]["split"]),
        "order": config["eval_args"]["order"],
        "mode": json_safe(config["eval_args"]["mode"]),
        "metrics": list(config["metrics"]),
        "topk": list(config["topk"]),
        "valid_metric": config["valid_metric"].lower(),
    }


def atomic_write_json(path, payload):
    """Write JSON to ``path`` through a temporary file, so a reader never sees half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def build_results(config, run_id, trainer, valid, test, stage_seconds):
    snapshot = config_snapshot(config)
    history = trainer.history
    epochs = [h["epoch_seconds"] for h in history]
    best_epoch = None
    scored = [h for h in history if "valid_score" in h]
    if scored:
        pick = max if config["valid_metric_bigger"] else min
        best_epoch = pick(scored, key=lambda h: h["valid_score"])["epoch"]
    return {
        "schema": SCHEMA,
        "run_id": run_id,
        "model": config["model"],
        "dataset": config["dataset"],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "config": snapshot,
        "config_digest": config_digest(snapshot),
        "protocol": protocol(config),
        "checkpoint": trainer.saved_model_file,
        "best_valid_score": json_safe(trainer.best_valid_score),
        "best_valid_epoch": best_epoch,
        "valid": valid,
        "test": test,
        "history": history,
        "timing": {
            "stages": {k: round(v, 3) for k, v in stage_seconds.items()},
            "epoch_seconds_mean": round(sum(epochs) / len(epochs), 3) if epochs else None,
        },
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb():
    """This process's peak resident memory so far (MiB): every stage it ran, the cached ones excluded."""
    import resource

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round((kib / 1024 if sys.platform == "darwin" else kib) / 1024, 1)
