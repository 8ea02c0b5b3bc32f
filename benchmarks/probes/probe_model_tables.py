"""Probe (no training): how much of the text's own ranking is left in a trained model's item table?

The text's vectors rank Beauty's tail items by themselves at 0.0475 NDCG@10 (whitened MiniLM,
``probe_text_vectors.py``); the trained plugin models reach about half of that. This probe loads a
trained checkpoint and ranks each test user's next item by the same rule as ``probe_text_vectors.py``
(cosine to the mean of the last ``--last`` history items, history masked), with the model's own item
vectors:

* ``adapted text``: a plugin model's adapter output alone (the LM vectors through RAT, no id offsets);
* ``item table``: the table the model scores with (adapted text plus id offsets; SASRec's own table).

Where the adapted text ranks the tail well and the table does not, the id offsets hide the text;
where the adapted text already ranks it badly, the adapter (its width, its alignment) lost it.

    .venv/bin/python benchmarks/probes/probe_model_tables.py CHECKPOINT [--model=SASRec] [--set=hidden_size=128] --out=FILE
"""
import argparse
import os
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from benchmarks.probes import checkpoint_probe  # noqa: E402
from benchmarks.probes.probe_text_vectors import benchmark_groups, knn_ndcg, sequences  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    checkpoint_probe.add_arguments(parser)
    parser.add_argument("--last", type=int, default=3)
    args = parser.parse_args()
    config, dataset, model, _, _, _, _ = checkpoint_probe.load(args)
    seqs = sequences(dataset)
    _, groups = benchmark_groups(config, dataset, seqs)
    tables = {}
    with torch.no_grad():
        emb = model.item_embedding
        if hasattr(emb, "adapted"):
            adapted = emb.adapted().float()
            tables["adapted text"] = torch.cat([adapted.new_zeros(1, adapted.shape[1]), adapted])
        tables["item table"] = emb.weight[:dataset.item_num].detach().float()
    result = {"checkpoint": os.path.basename(args.checkpoint), "model": args.model, "set": args.set,
              "date": time.strftime("%Y-%m-%d %H:%M"), "command": " ".join(sys.argv), "last": args.last,
              "dim": int(tables["item table"].shape[1]),
              "knn_ndcg@10": {name: knn_ndcg(t.numpy(), seqs, groups.is_head, args.last) for name, t in tables.items()}}
    print(result, flush=True)
    if args.out:
        checkpoint_probe.append_run(args.out, result)


if __name__ == "__main__":
    main()
