"""Probe (no training): which part of a trained text-plus-id item table do rare items rank by?

Loads a trained text-plus-id LLMEmb checkpoint and evaluates it with its table changed, no retraining:

* ``--k``: each item's id offset shrunk by ``n / (n + k)`` (``n`` = the item's training
  interactions): ``k = 0`` is the checkpoint as trained; large ``k`` leaves rare items with their
  text vector alone (does the id table's noise on rare items cost their ranking?);
* ``--text_scale``: the adapted text part multiplied by ``s`` for every item (would more text help?).

Settings are compared on the validation split; test is reported for every one.

    .venv/bin/python benchmarks/probes/probe_id_shrinkage.py CHECKPOINT [--k=0,3,10] [--text_scale=0.5,2] [--out=FILE]
"""
import argparse
import json
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from benchmarks.probes import checkpoint_probe  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    checkpoint_probe.add_arguments(parser)
    parser.add_argument("--k", default="0,3,10,30,100")
    parser.add_argument("--text_scale", default="")
    args = parser.parse_args()
    config, dataset, model, trainer, valid, test, _ = checkpoint_probe.load(args)
    groups = trainer.groups
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
        row = {name: value, **{split: checkpoint_probe.evaluate(trainer, data) for split, data in (("valid", valid), ("test", test))}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"checkpoint": os.path.relpath(args.checkpoint, ROOT), "command": " ".join(sys.argv), "rows": rows}
    if args.out:
        checkpoint_probe.append_run(args.out, result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
