"""Probe (no retraining): does a trained recommender leave the text's own next-item signal unused?

benchmarks/probe_text_vectors.py finds that ranking items by the cosine of their (whitened) text
vectors to a user's last few items beats SASRec on tail items by itself. This probe adds that
text score to a trained checkpoint's scores, ``z(model scores) + beta * z(text cosine)`` (each
standardised per user, so ``beta`` is the text's weight in units of the model's own spread), and
evaluates with the benchmark's long-tail groups; beta is compared on validation, test reported.

    .venv/bin/python benchmarks/probe_text_fusion.py CHECKPOINT [--model=SASRec] [--beta=0,0.5,1] \
        [--method=scft] [--norm=whiten] [--last=3] [--out=FILE]
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
from recbole_llmemb.data.dataset import align_item_embeddings  # noqa: E402
from recbole_llmemb.evaluation.longtail import build_groups, training_counts  # noqa: E402
from recbole_llmemb.evaluation.trainer import long_tail_trainer  # noqa: E402
from recbole_llmemb.generate import item_embeddings  # noqa: E402
from recbole_llmemb.model.layers import normalised_vectors  # noqa: E402
from recbole_llmemb.quick_start import load_dataset, prepare_plugin_inputs  # noqa: E402
from recbole.data import data_preparation  # noqa: E402
from recbole.utils import get_trainer, init_logger, init_seed  # noqa: E402


def text_table(config, dataset, norm, method="scft"):
    """The generator's item vectors, normalised as the adapter would (``norm``), unit length, row 0 zero."""
    es = item_embeddings(config, dataset, method)
    raw = torch.as_tensor(align_item_embeddings(dataset, es.tokens, es.vectors, method))
    x = torch.nn.functional.normalize(normalised_vectors(raw[1:], norm), dim=-1)
    return torch.cat([x.new_zeros(1, x.shape[1]), x])


def last_items_query(interaction, model, table, last):
    """Mean text vector of each row's last ``last`` history items."""
    items, length = interaction[model.ITEM_SEQ], interaction[model.ITEM_SEQ_LEN]
    pos = torch.arange(items.shape[1]).unsqueeze(0)
    keep = (pos < length.unsqueeze(1)) & (pos >= (length - last).unsqueeze(1))
    return (table[items] * keep.unsqueeze(-1)).sum(1) / keep.sum(1, keepdim=True).clamp_min(1)


def zscore(x):
    return (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True).clamp_min(1e-12)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("--model", default="LLMEmbSASRec")
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--data_path", default=os.path.join(os.path.dirname(ROOT), "shared", "datasets"))
    parser.add_argument("--beta", default="0,0.25,0.5,1,2")
    parser.add_argument("--norm", default="whiten")
    parser.add_argument("--last", type=int, default=3)
    parser.add_argument("--method", default="scft", help="the generator whose vectors make the text score (plain: no SCFT)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    config = Config(args.model, args.dataset, [os.path.join(ROOT, "benchmarks", "beauty.yaml")],
                    {"data_path": args.data_path, "eval_checkpoint": args.checkpoint, "show_progress": False})
    init_logger(config)
    init_seed(config["seed"], config["reproducibility"])
    dataset = load_dataset(config)
    prepare_plugin_inputs(config, dataset, get_model_class(config["model"]), {})
    table = text_table(config, dataset, args.norm, args.method)
    init_seed(config["seed"], config["reproducibility"])
    train, valid, test = data_preparation(config, dataset)
    groups = build_groups(*training_counts(dataset, [valid.dataset, test.dataset]), **(config["long_tail"] or {}))
    model = get_model_class(config["model"])(config, train.dataset).to(config["device"])
    trainer = long_tail_trainer(get_trainer(config["MODEL_TYPE"], config["model"]))(config, model, groups=groups)
    model.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=False)["state_dict"])
    model.eval()
    own = model.full_sort_predict
    beta = {"value": 0.0}

    def fused(interaction):
        scores = own(interaction)
        if beta["value"] == 0:
            return scores
        text = last_items_query(interaction, model, table, args.last) @ table.T
        return zscore(scores) + beta["value"] * zscore(text)

    model.full_sort_predict = fused
    rows = []
    for value in [float(v) for v in args.beta.split(",") if v]:
        beta["value"] = value
        row = {"beta": value}
        for name, data in (("valid", valid), ("test", test)):
            overall = trainer.evaluate(data, load_best_model=False)
            g = trainer.last_groups["groups"]
            row[name] = {"overall": round(float(overall["ndcg@10"]), 5),
                         "tail": g["item_tail"]["metrics"]["ndcg@10"], "head": g["item_head"]["metrics"]["ndcg@10"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"checkpoint": os.path.relpath(args.checkpoint, ROOT), "model": args.model, "method": args.method, "norm": args.norm,
              "last": args.last, "command": " ".join(sys.argv), "rows": rows}
    if args.out:
        previous = []
        if os.path.isfile(args.out):
            with open(args.out) as f:
                previous = json.load(f).get("runs", [])
        with open(args.out, "w") as f:
            json.dump({"runs": previous + [result]}, f, indent=2)


if __name__ == "__main__":
    main()
