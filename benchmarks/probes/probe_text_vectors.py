"""Probe (no recommender training): how much of what the recommender needs do item text vectors carry?

The LLMEmb rows show the tail gain coming from the text part of the item table alone (scaling it
up or down after training gains nothing, benchmarks/results/probes/id_shrinkage.json), so a better
row needs better text vectors. A 20-epoch Beauty row costs ~40 min on 2 cores; this probe screens
candidate vectors and input normalisations in minutes, on two figures:

* ``ridge_r2_heldout``: a ridge map from the (normalised) text vectors to the alignment SASRec's
  item table, fitted on 80% of the items, R^2 on the other 20% (all of them, and their tail items):
  how much collaborative geometry the text can seed;
* ``popularity_r2_heldout``: the same ridge, to each item's log training count (how much of an
  item's popularity its vector tells a model that starts from it);
* ``knn``: each test user's next item ranked among all items by cosine to the mean of the user's
  last ``--last`` history items' vectors (history items masked, as RecBole's full ranking does),
  NDCG@10 overall / head / tail with the benchmark's groups: how much sequential signal the text
  geometry holds by itself.

Variants are ``METHOD[:key=value,...]`` (a generator and its settings: built and cached if absent,
then reused by the rows); normalisations are the adapter's ``llm_emb_norm`` values.

``--dims=64,128`` also ranks with each normalised table cut to its top principal components (the
width a recommender's item table has: does the text's ranking survive a 64-d table?), and
``--mapped`` with the text mapped onto the alignment SASRec's table by the fitted ridge (what a
warm-started adapter reaches), beside the SASRec table's own ranking by the same rule.

    .venv/bin/python benchmarks/probes/probe_text_vectors.py --variants=scft,plain \
        "--variants=plain:llm_path=/path/to/all-mpnet-base-v2" --norms=center,whiten --out=FILE
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from recbole_llmemb.pipeline.collaborative import collaborative_item_embeddings  # noqa: E402
from recbole_llmemb.pipeline.config import Config, parse_args  # noqa: E402
from recbole_llmemb.data.dataset import align_item_embeddings  # noqa: E402
from recbole_llmemb.evaluation.longtail import build_groups  # noqa: E402
from recbole_llmemb.pipeline.generate import item_embeddings  # noqa: E402
from recbole_llmemb.model.adapter import normalised_vectors  # noqa: E402
from recbole_llmemb.pipeline.training import load_dataset  # noqa: E402
from recbole.utils import init_logger, init_seed  # noqa: E402


def sequences(dataset):
    """Per user, item ids in time order (RecBole's TO order: a stable sort on the time field)."""
    feat = dataset.inter_feat
    uid, iid, t = (np.asarray(feat[f]) for f in (dataset.uid_field, dataset.iid_field, dataset.time_field))
    order = np.lexsort((np.arange(len(uid)), t, uid))
    uid, iid = uid[order], iid[order]
    starts = np.flatnonzero(np.r_[True, uid[1:] != uid[:-1]])
    return np.split(iid, starts[1:])


def ridge_r2(x, y, train, test, lams=(0.1, 1.0, 10.0, 100.0)):
    """Held-out R^2 of ridge maps x -> y for each ridge strength (the best is reported with its lambda)."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    mx, my = x[train].mean(0), y[train].mean(0)
    xt, yt = x[train] - mx, y[train] - my
    xx, xy = xt.T @ xt, xt.T @ yt
    scale = np.trace(xx) / xx.shape[0]
    out = {}
    for lam in lams:
        w = np.linalg.solve(xx + lam * scale * np.eye(len(xx)), xy)
        pred = (x[test] - mx) @ w + my
        out[lam] = 1 - ((y[test] - pred) ** 2).sum() / ((y[test] - y[test].mean(0)) ** 2).sum()
    return out


def top_components(x, dim):
    """``x`` (row 0: padding, kept 0) projected on its top ``dim`` principal components."""
    body = x[1:].astype(np.float64)
    body = body - body.mean(0)
    _, _, vt = np.linalg.svd(body, full_matrices=False)
    return np.concatenate([np.zeros((1, dim)), body @ vt[:dim].T]).astype(np.float32)


def ridge_map(x, y, train, lam):
    """Every row of ``x`` through the ridge map x -> y fitted on the ``train`` rows (as :func:`ridge_r2`)."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    mx, my = x[train].mean(0), y[train].mean(0)
    xt, yt = x[train] - mx, y[train] - my
    xx = xt.T @ xt
    w = np.linalg.solve(xx + lam * np.trace(xx) / xx.shape[0] * np.eye(len(xx)), xt.T @ yt)
    out = (x - mx) @ w + my
    out[0] = 0
    return out.astype(np.float32)


def benchmark_groups(config, dataset, seqs):
    """``(item_count, groups)``: the benchmark's head/tail groups, counts over training interactions
    (each user's last two items held out)."""
    item_count = np.bincount(np.concatenate([s[:-2] for s in seqs]), minlength=dataset.item_num)
    return item_count, build_groups(item_count, np.zeros(dataset.user_num, dtype=np.int64), **(config["long_tail"] or {}))


def knn_ndcg(vectors, seqs, is_head, last, batch=2048):
    """NDCG@10 of the next (test) item by cosine to the mean of the last ``last`` history vectors."""
    v = torch.as_tensor(vectors, dtype=torch.float32)
    v = torch.nn.functional.normalize(v, dim=-1)
    v[0] = 0
    users = [s for s in seqs if len(s) >= 3]
    ndcg, head = [], []
    for lo in range(0, len(users), batch):
        chunk = users[lo:lo + batch]
        query = torch.stack([v[torch.as_tensor(s[:-1][-last:])].mean(0) for s in chunk])
        scores = query @ v.T
        scores[:, 0] = -np.inf
        for row, s in enumerate(chunk):
            scores[row, torch.as_tensor(s[:-1])] = -np.inf  # interacted items are not ranked
        target = torch.as_tensor([s[-1] for s in chunk])
        rank = (scores > scores[torch.arange(len(chunk)), target].unsqueeze(1)).sum(1)
        ndcg.append(torch.where(rank < 10, 1.0 / torch.log2(rank.double() + 2), torch.zeros(len(chunk), dtype=torch.float64)))
        head.append(torch.as_tensor(is_head[target.numpy()]))
    ndcg, head = torch.cat(ndcg).numpy(), torch.cat(head).numpy()
    return {"overall": round(float(ndcg.mean()), 4), "head": round(float(ndcg[head].mean()), 4),
            "tail": round(float(ndcg[~head].mean()), 4)}


def parse_variant(text):
    method, _, rest = text.partition(":")
    return method, parse_args([f"--{pair}" for pair in rest.split(",") if pair])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--data_path", default=os.path.join(os.path.dirname(ROOT), "shared", "datasets"))
    parser.add_argument("--variants", action="append", default=[])
    parser.add_argument("--norms", default="center,whiten")
    parser.add_argument("--last", type=int, default=3)
    parser.add_argument("--out", default=None)
    parser.add_argument("--dims", default="", help="also rank with the top-d principal components, e.g. 64,128")
    parser.add_argument("--mapped", action="store_true", help="also rank with the text mapped onto the SASRec table")
    args = parser.parse_args()
    variants = [v for arg in (args.variants or ["scft"]) for v in ([arg] if ":" in arg else arg.split(","))]
    base = {"data_path": args.data_path, "show_progress": False}
    config = Config("LLMEmbSASRec", args.dataset, [os.path.join(ROOT, "benchmarks", "beauty.yaml")], base)
    init_logger(config)
    init_seed(config["seed"], config["reproducibility"])
    dataset = load_dataset(config)
    seqs = sequences(dataset)
    item_count, groups = benchmark_groups(config, dataset, seqs)
    sasrec, _, _ = collaborative_item_embeddings(config, dataset)
    rng = np.random.default_rng(0)
    items = rng.permutation(np.arange(1, dataset.item_num))
    train, test = items[: int(0.8 * len(items))], items[int(0.8 * len(items)):]
    test_tail = test[~groups.is_head[test]]
    log_count = np.log1p(item_count).astype(np.float64)[:, None]
    rows = []
    if args.mapped:
        row = {"variant": "alignment SASRec item table", "dim": int(sasrec.shape[1]),
               "knn_ndcg@10": knn_ndcg(sasrec, seqs, groups.is_head, args.last)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    for variant in variants:
        method, overrides = parse_variant(variant)
        vconfig = Config("LLMEmbSASRec", args.dataset, [os.path.join(ROOT, "benchmarks", "beauty.yaml")], {**base, **overrides})
        start = time.perf_counter()
        es = item_embeddings(vconfig, dataset, method)
        raw = torch.as_tensor(align_item_embeddings(dataset, es.tokens, es.vectors, method))
        built = round(time.perf_counter() - start, 1)
        for norm in args.norms.split(","):
            x = np.concatenate([np.zeros((1, raw.shape[1]), np.float32), normalised_vectors(raw[1:], norm).numpy()])
            r2 = ridge_r2(x, sasrec, train, test)
            r2_tail = ridge_r2(x, sasrec, train, test_tail)
            best = max(r2, key=r2.get)
            r2_pop = ridge_r2(x, log_count, train, test)
            row = {"variant": variant, "norm": norm, "dim": int(x.shape[1]), "status": es.meta.get("status"),
                   "stage_seconds": built, "ridge_r2_heldout": round(float(r2[best]), 4),
                   "ridge_r2_heldout_tail": round(float(r2_tail[best]), 4), "ridge_lambda": best,
                   "popularity_r2_heldout": round(float(max(r2_pop.values())), 4),
                   "knn_ndcg@10": knn_ndcg(x, seqs, groups.is_head, args.last)}
            print(json.dumps(row), flush=True)
            rows.append(row)
            for dim in [int(d) for d in args.dims.split(",") if d]:
                row = {"variant": variant, "norm": norm, "dim": dim, "projection": f"top {dim} principal components",
                       "knn_ndcg@10": knn_ndcg(top_components(x, dim), seqs, groups.is_head, args.last)}
                print(json.dumps(row), flush=True)
                rows.append(row)
            if args.mapped:
                row = {"variant": variant, "norm": norm, "dim": int(sasrec.shape[1]), "ridge_lambda": best,
                       "projection": "ridge map onto the alignment SASRec's table (fitted on 80% of the items, all mapped)",
                       "knn_ndcg@10": knn_ndcg(ridge_map(x, sasrec, train, best), seqs, groups.is_head, args.last)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"),
                       "dataset": args.dataset, "last": args.last, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
