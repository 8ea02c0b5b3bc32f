"""Probe (no training): do later interactions go to rarer items? The share of tail items among targets
by position from the end of each user's history.

Tail as the benchmark defines it: outside the top 20% of items by training count, training being every
interaction but each user's last two (validation: the second last, test: the last). A model fit by
cross-entropy on the training targets learns their popularity; if validation and test targets are
rarer, anything that lifts rare items (the text's similarity) is worth more at test than training can
tell, and a weight learned on training targets falls.

    .venv/bin/python benchmarks/probes/probe_tail_drift.py [--dataset=amazon-beauty] [--out=FILE]
"""
import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_inter(path):
    """(user, item, time) columns of a RecBole atomic .inter file."""
    with open(path, encoding="utf-8") as f:
        header = [c.split(":")[0] for c in f.readline().rstrip("\n").split("\t")]
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    col = {name: [r[i] for r in rows] for i, name in enumerate(header)}
    return np.asarray(col["user_id"]), np.asarray(col["item_id"]), np.asarray(col["timestamp"], dtype=float)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="amazon-beauty")
    ap.add_argument("--data_path", default=os.path.join(os.path.dirname(ROOT), "shared", "datasets"))
    ap.add_argument("--head_ratio", type=float, default=0.2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    user, item, t = read_inter(os.path.join(args.data_path, args.dataset, f"{args.dataset}.inter"))
    order = np.lexsort((np.arange(len(user)), t, user))  # by user, then time (stable: RecBole's order)
    user, item = user[order], item[order]
    starts = np.r_[0, np.flatnonzero(user[1:] != user[:-1]) + 1]
    ends = np.r_[starts[1:], len(user)]
    from_end = np.concatenate([np.arange(e - s)[::-1] for s, e in zip(starts, ends)])  # 0: the last
    from_start = np.concatenate([np.arange(e - s) for s, e in zip(starts, ends)])
    items, item_idx = np.unique(item, return_inverse=True)
    train = from_end >= 2
    count = np.bincount(item_idx[train], minlength=len(items))
    n_head = int(np.ceil(args.head_ratio * len(items)))
    ranked = np.lexsort((np.arange(len(items)), -count))
    is_head = np.zeros(len(items), dtype=bool)
    is_head[ranked[:n_head]] = True
    tail = ~is_head[item_idx]

    def share(mask):
        return {"targets": int(mask.sum()), "tail_share": round(float(tail[mask].mean()), 4)}

    record = {"dataset": args.dataset, "head_ratio": args.head_ratio, "n_items": int(len(items)),
              "training targets (every training interaction but a user's first)": share(train & (from_start > 0)),
              "validation targets (second last)": share(from_end == 1), "test targets (last)": share(from_end == 0),
              "by position from the end (0: test)": {int(k): share(from_end == k) for k in (0, 1, 2, 3, 5, 10, 20)}}
    print(json.dumps(record, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"command": " ".join(["benchmarks/probes/probe_tail_drift.py"] + sys.argv[1:]),
                       "date": time.strftime("%Y-%m-%d %H:%M"), **record}, f, indent=1)


if __name__ == "__main__":
    main()
