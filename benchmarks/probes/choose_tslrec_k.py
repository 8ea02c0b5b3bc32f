"""TSLRec's K, measured: k-means over a cached alignment SASRec's item table for several K, with
the silhouette (sampled), the sizes of the smallest and largest category, and what TSLRec's target
is for: how much a user's training-history category shares tell about the category of the user's
next (validation) item, in bits per user over the catalogue-wide category shares (add-one smoothed).

    .venv/bin/python benchmarks/probes/choose_tslrec_k.py llmemb_cache/amazon-beauty/collab-sasrec-<key> \
        --dataset=amazon-beauty --data_path=../shared/datasets --config_files=benchmarks/beauty.yaml [--k=8,16,32]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("entry")
    parser.add_argument("--k", default="8,16,32,64,128")
    parser.add_argument("--out", default=None)
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--data_path", default="../shared/datasets")
    parser.add_argument("--config_files", default="benchmarks/beauty.yaml")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from recbole_llmemb.pipeline.config import Config
    from recbole_llmemb.data import store
    from recbole_llmemb.data.dataset import align_item_embeddings
    from recbole_llmemb.generator.tslrec import training_histories
    from recbole_llmemb.pipeline.training import load_dataset

    config = Config("SASRec", args.dataset, args.config_files.split(","), {"data_path": args.data_path})
    dataset = load_dataset(config)
    es = store.load(args.entry)
    table = align_item_embeddings(dataset, es.tokens, es.vectors)[1:].astype(np.float64)
    # training history and next (validation) item per user: all but the last one, then that one
    with_next = [h for h in training_histories(dataset, {"eval_args": {"split": {"LS": "test_only"}}}) if len(h) >= 3]
    histories, nxt = [h[:-2] for h in with_next], np.array([h[-2] for h in with_next])
    rows = []
    for k in [int(v) for v in args.k.split(",")]:
        start = time.perf_counter()
        labels = KMeans(n_clusters=k, n_init=4, random_state=2020).fit_predict(table)
        sizes = np.bincount(labels, minlength=k)
        prior = (sizes + 1) / (sizes.sum() + k)
        gain = []
        for h, item in zip(histories, nxt):
            shares = (np.bincount(labels[h], minlength=k) + prior * 1.0) / (len(h) + 1.0)  # one pseudo-item of prior
            gain.append(np.log2(shares[labels[item]] / prior[labels[item]]))
        row = {"k": k, "bits_per_user": round(float(np.mean(gain)), 4), "silhouette": round(float(silhouette_score(table, labels, sample_size=4000, random_state=0)), 4),
               "smallest": int(sizes.min()), "largest": int(sizes.max()), "seconds": round(time.perf_counter() - start, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"entry": args.entry, "command": " ".join(sys.argv), "items": len(table), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
