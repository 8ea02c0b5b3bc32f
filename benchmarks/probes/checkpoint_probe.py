"""What the no-retraining probes share: a trained checkpoint loaded with the benchmark's data, split
and long-tail groups; one evaluation as a compact row; results appended to a JSON file."""
import json
import os

import torch

from recbole_llmemb.pipeline.config import Config, get_model_class
from recbole_llmemb.evaluation.longtail import build_groups, training_counts
from recbole_llmemb.evaluation.trainer import long_tail_trainer
from recbole_llmemb.pipeline.quick_start import load_dataset, prepare_plugin_inputs
from recbole.data import data_preparation
from recbole.utils import get_trainer, init_logger, init_seed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def add_arguments(parser):
    parser.add_argument("checkpoint")
    parser.add_argument("--model", default="LLMEmbSASRec")
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--data_path", default=os.path.join(os.path.dirname(ROOT), "shared", "datasets"))
    parser.add_argument("--out", default=None)
    parser.add_argument("--paper", action="store_true", help="the paper's protocol: props/paper.yaml after beauty.yaml")
    parser.add_argument("--set", default="", help="key=value,... more settings (llm_path=all-mpnet-base-v2: that model's vectors)")


def settings_of(args):
    """The extra settings of ``--set``, values read as YAML (numbers, booleans, words)."""
    import yaml

    return {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.set.split(",") if kv)}


def load(args, before_split=None):
    """``(config, dataset, model, trainer, valid, test, extra)`` for ``args.checkpoint`` (weights loaded,
    eval mode); ``extra = before_split(config, dataset)``, called on the dataset as loaded (the split
    turns its item table into tensors)."""
    files = [os.path.join(ROOT, "benchmarks", "beauty.yaml")] + ([os.path.join(ROOT, "props", "paper.yaml")] if args.paper else [])
    config = Config(args.model, args.dataset, files, {"data_path": args.data_path, "eval_checkpoint": args.checkpoint,
                                                      "show_progress": False, **settings_of(args)})
    init_logger(config)
    init_seed(config["seed"], config["reproducibility"])
    dataset = load_dataset(config)
    prepare_plugin_inputs(config, dataset, get_model_class(config["model"]), {})
    extra = before_split(config, dataset) if before_split else None
    init_seed(config["seed"], config["reproducibility"])
    train, valid, test = data_preparation(config, dataset)
    groups = build_groups(*training_counts(dataset, [valid.dataset, test.dataset]), **(config["long_tail"] or {}))
    model = get_model_class(config["model"])(config, train.dataset).to(config["device"])
    trainer = long_tail_trainer(get_trainer(config["MODEL_TYPE"], config["model"]))(config, model, groups=groups)
    model.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=False)["state_dict"])
    model.eval()
    return config, dataset, model, trainer, valid, test, extra


def evaluate(trainer, data):
    """NDCG@10 overall, tail and head (and the tail share of the top-10 lists) of one evaluation."""
    overall = trainer.evaluate(data, load_best_model=False)
    g = trainer.last_groups["groups"]
    return {"overall": round(float(overall["ndcg@10"]), 5), "tail": g["item_tail"]["metrics"]["ndcg@10"],
            "head": g["item_head"]["metrics"]["ndcg@10"],
            "tail_share@10": trainer.last_groups.get("diagnostics", {}).get("tail_share@10")}


def append_run(path, result):
    """Add ``result`` to the ``runs`` list of the JSON file at ``path`` (created when absent)."""
    previous = []
    if os.path.isfile(path):
        with open(path) as f:
            previous = json.load(f).get("runs", [])
    with open(path, "w") as f:
        json.dump({"runs": previous + [result]}, f, indent=2)
