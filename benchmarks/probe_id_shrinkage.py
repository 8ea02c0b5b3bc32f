"""Probe (no training): which part of a trained text-plus-id item table do rare items rank by?

Loads a trained text-plus-id LLMEmb checkpoint and evaluates it with its table changed, no retraining:

* ``--k``: each item's id offset shrunk by ``n / (n + k)`` (``n`` = the item's training
  interactions): ``k = 0`` is the checkpoint as trained; large ``k`` leaves rare items with their
  text vector alone (does the id table's noise on rare items cost their ranking?);
* ``--text_scale``: the adapted text part multiplied by ``s`` for every item (would more text help?).

Settings are compared on the validation split; test is reported for every one.

    .venv/bin/python benchmarks/probe_id_shrinkage.py CHECKPOINT [--k=0,3,10] [--text_scale=0.5,2] [--out=FILE]
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from recbole_llmemb.config import Config, get_model_class  # noqa: E402
from recbole_llmemb.evaluation.longtail import build_groups, training_counts  # noqa: E402
from recbole_llmemb.evaluation.trainer import long_tail_trainer  # noqa: E402
from recbole_llmemb.quick_start import load_dataset, prepare_plugin_inputs  # noqa: E402
from recbole.data import data_preparation  # noqa: E402
from recbole.utils import get_trainer, init_logger, init_seed  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("--model", default="LLMEmbSASRec")
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--data_path", default=os.path.join(os.path.dirname(ROOT), "shared", "datasets"))
    parser.add_argument("--k", default="0,3,10,30,100")
    parser.add_argument("--text_scale", default="")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    config = Config(args.model, args.dataset, [os.path.join(ROOT, "benchmarks", "beauty.yaml")],
                    {"data_path": args.data_path, "eval_checkpoint": args.checkpoint, "show_progress": False})
    init_logger(config)
    init_seed(config["seed"], config["reproducibility"])
    dataset = load_dataset(config)
    prepare_plugin_inputs(config, dataset, get_model_class(config["model"]), {})
    init_seed(config["seed"], config["reproducibility"])
    train, valid, test = data_preparation(config, dataset)
    groups = build_groups(*training_counts(dataset, [valid.dataset, test.dataset]), **(config["long_tail"] or {}))
    model = get_model_class(config["model"])(config, train.dataset).to(config["device"])
    trainer = long_tail_trainer(get_trainer(config["MODEL_TYPE"], config["model"]))(config, model, groups=groups)
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    model.load_state_dict(state)
    model.eval()
    emb = model.item_embedding
    if emb.id_weight is None:
        sys.exit("the checkpoint has no id table (item_id_emb=False)")
    original = emb.id_weight.detach().clone()
    adapter_out = emb.adapter.net[3]
    weight, bias = adapter_out.weight.detach().clone(), adapter_out.bias.detach().clone()
    n = torch.as_tensor(groups.item_count[1:], dtype=torch.float32).clamp_min(0)
    settings = [("k", float(v)) for v in args.k.split(",") if v] + [("text_scale", float(v)) for v in args.text_scale.split(",") if v]
    rows = []
    for name, value in settings:
        with torch.no_grad():
            shrink = n / (n + value) if name == "k" and value > 0 else torch.ones_like(n)
            emb.id_weight.copy_(original * shrink.unsqueeze(1))
            scale = value if name == "text_scale" else 1.0
            adapter_out.weight.copy_(weight * scale)  # the adapter is linear: its output scales with its last layer
            adapter_out.bias.copy_(bias * scale)
        row = {name: value}
        for name, data in (("valid", valid), ("test", test)):
            overall = trainer.evaluate(data, load_best_model=False)
            g = trainer.last_groups["groups"]
            row[name] = {"overall": round(float(overall["ndcg@10"]), 5),
                         "tail": g["item_tail"]["metrics"]["ndcg@10"], "head": g["item_head"]["metrics"]["ndcg@10"],
                         "tail_share@10": trainer.last_groups.get("diagnostics", {}).get("tail_share@10")}
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"checkpoint": os.path.relpath(args.checkpoint, ROOT), "command": " ".join(sys.argv), "rows": rows}
    if args.out:
        previous = []
        if os.path.isfile(args.out):
            with open(args.out) as f:
                previous = json.load(f).get("runs", [])
        with open(args.out, "w") as f:
            json.dump({"runs": previous + [result]}, f, indent=2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
