"""Probe (no retraining): does a trained recommender leave the text's own next-item signal unused?

benchmarks/probe_text_vectors.py finds that ranking items by the cosine of their (whitened) text
vectors to a user's last few items beats SASRec on tail items by itself. This probe adds that
text score to a trained checkpoint's scores, ``z(model scores) + beta * z(text cosine)`` (each
standardised per user, so ``beta`` is the text's weight in units of the model's own spread: what
the models' ``text_blend`` setting computes, here with the text vectors of any generator), and
evaluates with the benchmark's long-tail groups; beta is compared on validation, test reported.

    .venv/bin/python benchmarks/probe_text_fusion.py CHECKPOINT [--model=SASRec] [--beta=0,0.5,1] \
        [--method=scft] [--norm=whiten] [--last=3] [--out=FILE]
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import checkpoint_probe  # noqa: E402
from recbole_llmemb.data.dataset import align_item_embeddings  # noqa: E402
from recbole_llmemb.generate import item_embeddings  # noqa: E402
from recbole_llmemb.model.layers import TextMatch, zscore_rows  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    checkpoint_probe.add_arguments(parser)
    parser.add_argument("--beta", default="0,0.25,0.5,1,2")
    parser.add_argument("--norm", default="whiten")
    parser.add_argument("--last", type=int, default=3)
    parser.add_argument("--method", default="scft", help="the generator whose vectors make the text score (plain: no SCFT)")
    args = parser.parse_args()

    def text_vectors(config, dataset):
        es = item_embeddings(config, dataset, args.method)
        return align_item_embeddings(dataset, es.tokens, es.vectors, args.method)

    *_, model, trainer, valid, test, vectors = checkpoint_probe.load(args, before_split=text_vectors)
    text_score = TextMatch(vectors, last=args.last, norm=args.norm, weight=1.0, learned=False)
    own = model.full_sort_predict
    beta = {"value": 0.0}

    def fused(interaction):
        scores = own(interaction)
        if beta["value"] == 0:
            return scores
        text = text_score(interaction[model.ITEM_SEQ], interaction[model.ITEM_SEQ_LEN])
        return zscore_rows(scores) + beta["value"] * zscore_rows(text)

    model.full_sort_predict = fused
    rows = []
    for value in [float(v) for v in args.beta.split(",") if v]:
        beta["value"] = value
        row = {"beta": value, **{split: checkpoint_probe.evaluate(trainer, data) for split, data in (("valid", valid), ("test", test))}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        checkpoint_probe.append_run(args.out, {
            "checkpoint": os.path.relpath(args.checkpoint, ROOT), "model": args.model, "method": args.method,
            "norm": args.norm, "last": args.last, "command": " ".join(sys.argv), "rows": rows})


if __name__ == "__main__":
    main()
