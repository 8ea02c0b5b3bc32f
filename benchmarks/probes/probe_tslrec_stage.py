"""Probe: does TSLRec's user-level fine-tuning learn more than the global category shares? On Beauty,
cut to a subset of training users so that it runs on a CPU in minutes (the whole stage is ~1,400
steps: hours on 2 cores, two minutes on a GPU).

Builds the stage's real trainer (categories of the alignment SASRec's items, training histories
from RecBole's split, the run's inputs), keeps ``--users`` training users and ``--valid`` held-out
users, trains one epoch and records the held-out loss before and after beside the global-shares
baseline (every held-out user predicted by the training users' mean spread), and the inputs'
length and how many items they hold.

    .venv/bin/python benchmarks/probes/probe_tslrec_stage.py [--users=1600] [--valid=400] [--set=key=value,...] [--out=FILE]

The alignment SASRec must be cached (``--set=embedding_cache_dir=...``; the SASRec row builds it).
"""
import argparse
import json
import os
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from recbole_llmemb.pipeline.collaborative import collaborative_store  # noqa: E402
from recbole_llmemb.pipeline.config import Config, parse_args  # noqa: E402
from recbole_llmemb.data.dataset import align_item_embeddings  # noqa: E402
from recbole_llmemb.data.item_text import instruction, item_attributes  # noqa: E402
from recbole_llmemb.generator import tslrec  # noqa: E402
from recbole_llmemb.pipeline.training import load_dataset  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1600)
    parser.add_argument("--valid", type=int, default=400)
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--data_path", default=os.path.join(ROOT, "..", "shared", "datasets"))
    parser.add_argument("--set", default="", help="settings as key=value,key=value")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "probes", "tslrec_stage.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    extra = parse_args([f"--{kv}" for kv in args.set.split(",") if kv])
    config = Config("TSLRecSASRec", args.dataset, [os.path.join(ROOT, "benchmarks", "beauty.yaml")],
                    {"data_path": os.path.abspath(args.data_path), **extra})
    dataset = load_dataset(config)
    attributes = item_attributes(config, dataset)
    s = tslrec.settings(config, len(attributes))
    es = collaborative_store(config)
    table = align_item_embeddings(dataset, es.tokens, es.vectors, method="collaborative SASRec")[1:]
    trainer = tslrec.make_trainer(config, dataset, attributes, instruction(config), s, table)
    all_users = len(trainer.histories)
    trainer.valid, trainer.train_users = trainer.valid[: args.valid], trainer.train_users[: args.users]
    before = trainer.valid_loss()
    start = time.perf_counter()
    stats = trainer.train(1, progress=False)
    record = {"command": " ".join(sys.argv), "settings": {k: v for k, v in s.items() if k != "model"},
              "users": {"all": all_users, "trained": len(trainer.train_users), "held_out": len(trainer.valid)},
              "inputs (all users)": trainer.input_stats, "held_out_loss_before": before,
              "held_out_loss_after": stats["epochs"][-1]["valid_loss"], "global_shares_baseline": stats["valid_baseline"],
              "train_loss": stats["epochs"][-1]["train_loss"], "seconds": round(time.perf_counter() - start, 1),
              "threads": args.threads, "amx": bool(torch.cpu._is_amx_tile_supported())}
    print(json.dumps(record, indent=1))
    runs = []
    if os.path.isfile(args.out):
        with open(args.out) as f:
            runs = json.load(f)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(runs + [record], f, indent=1)


if __name__ == "__main__":
    main()
