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
import os
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from benchmarks.probes.stage_probe import add_arguments, append_record, config_for  # noqa: E402
from recbole_llmemb.pipeline.generate import sasrec_table  # noqa: E402
from recbole_llmemb.data.item_text import instruction, item_attributes  # noqa: E402
from recbole_llmemb.generator import tslrec  # noqa: E402
from recbole_llmemb.pipeline.training import load_dataset  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1600)
    parser.add_argument("--valid", type=int, default=400)
    add_arguments(parser, "tslrec_stage.json")
    args = parser.parse_args()
    config = config_for("TSLRecSASRec", args)
    dataset = load_dataset(config)
    attributes = item_attributes(config, dataset)
    s = tslrec.settings(config, len(attributes))
    table = sasrec_table(config, dataset)[1:]
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
    append_record(args.out, record)


if __name__ == "__main__":
    main()
