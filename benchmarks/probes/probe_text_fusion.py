"""Probe (no retraining): does a trained recommender leave the text's own next-item signal unused?

benchmarks/probes/probe_text_vectors.py finds that ranking items by the cosine of their (whitened) text
vectors to a user's last few items beats SASRec on tail items by itself. This probe adds that
text score to a trained checkpoint's scores, ``z(model scores) + beta * z(text cosine)`` (each
standardised per user, so ``beta`` is the text's weight in units of the model's own spread: what
the models' ``text_blend`` setting computes, here with the text vectors of any generator), and
evaluates with the benchmark's long-tail groups; beta is compared on validation, test reported.

    .venv/bin/python benchmarks/probes/probe_text_fusion.py CHECKPOINT [--model=SASRec] [--beta=0,0.5,1] \
        [--method=scft] [--norm=whiten] [--last=3] [--gate=none] [--out=FILE]

``--scale=raw`` adds ``beta * cosine`` to the model's raw scores instead (the form of the models'
``text_score`` term, whose learned weight is in these units).

``--scale=mixture`` ranks by a mixture of the two next-item distributions instead of a sum of scores,
``log((1 - beta) softmax(scores) + beta softmax(cosine / tau))`` (the user's history left out of both
softmaxes): the text's confident picks come first, and where it is unsure the model's order stands.
``--own_tau`` divides the model's scores before its softmax (how sure the model's part is);
``--own_over=all`` takes that softmax over every item (``text_mixture_over: all``, the package's default;
the input items then masked) instead of over the items outside the input sequence (``rest``:
``text_mixture_over: new``). The mixture is the package's :class:`TextMixture`.

``--candidates=tail`` applies the text term to tail items only (head items keep the model's score).

``--gate`` scales beta per user: ``tail`` by the share of the user's last ``--last`` items that are
tail items (the text is trusted where the ids are rarely trained), ``entropy`` by the normalised
entropy of the model's softmax over all items (where the model itself is unsure).
"""
import argparse
import json
import os
import math
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from benchmarks.probes import checkpoint_probe  # noqa: E402
from recbole_llmemb.data.dataset import align_item_embeddings  # noqa: E402
from recbole_llmemb.pipeline.generate import item_embeddings  # noqa: E402
from recbole_llmemb.evaluation.rerank import TextReranker, zscore_rows  # noqa: E402
from recbole_llmemb.model.text_score import TextMixture, input_items  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    checkpoint_probe.add_arguments(parser)
    parser.add_argument("--beta", default="0,0.25,0.5,1,2")
    parser.add_argument("--last", type=int, default=3)
    parser.add_argument("--gate", default="none", choices=["none", "tail", "entropy"])
    parser.add_argument("--candidates", default="all", choices=["all", "tail"],
                        help="tail: the text term only for tail items (head items keep the model's score)")
    parser.add_argument("--scale", default="z", choices=["z", "raw", "mixture"],
                        help="z: standardised per user; raw: scores + beta * cosine; mixture: of the two softmaxes")
    parser.add_argument("--tau", type=float, default=0.05, help="the text softmax's temperature (--scale=mixture)")
    parser.add_argument("--own_over", default="rest", choices=["rest", "all"],
                        help="the model softmax's items (--scale=mixture): those outside the input sequence, or every "
                             "item as the package's TextMixture (the input items then masked)")
    parser.add_argument("--own_tau", type=float, default=1.0,
                        help="the model softmax's temperature (--scale=mixture; 1: its scores as trained)")
    parser.add_argument("--method", default="scft", help="the generator whose vectors make the text score (plain: no SCFT)")
    args = parser.parse_args()

    def text_vectors(config, dataset):
        es = item_embeddings(config, dataset, args.method)
        return align_item_embeddings(dataset, es.tokens, es.vectors, args.method)

    *_, model, trainer, valid, test, vectors = checkpoint_probe.load(args, before_split=text_vectors)
    text_score = TextReranker(vectors, 1.0, last=args.last)  # its text table: whitened, unit length
    is_tail = torch.as_tensor(~trainer.groups.is_head, dtype=torch.float32)
    is_tail[0] = 0.0
    own = model.full_sort_predict
    mixture = TextMixture(vectors, 0.5, args.tau, args.last, over="new" if args.own_over == "rest" else "all")
    beta = {"value": 0.0}

    def fused(interaction):
        scores = own(interaction)
        if beta["value"] == 0:
            return scores
        seq, seq_len = interaction[model.ITEM_SEQ], interaction[model.ITEM_SEQ_LEN]
        text = text_score.text_scores(seq, seq_len)
        scores = scores[:, : text.shape[1]]
        weight = torch.ones(len(scores), 1)
        if args.gate == "tail":  # share of tail items among the last `last` history items
            positions = torch.arange(seq.shape[1]).unsqueeze(0)
            recent = (positions < seq_len.unsqueeze(1)) & (positions >= (seq_len - args.last).unsqueeze(1))
            weight = ((is_tail[seq] * recent).sum(1) / recent.sum(1).clamp_min(1)).unsqueeze(1)
        elif args.gate == "entropy":
            logp = torch.log_softmax(scores[:, 1:].float(), dim=1)
            weight = (-(logp.exp() * logp).sum(1) / math.log(logp.shape[1])).unsqueeze(1)
        only = is_tail[: text.shape[1]].unsqueeze(0) if args.candidates == "tail" else 1.0
        if args.scale == "mixture":  # the package's mixture (the re-ranker's), the input items out of the ranking
            mixture.share = beta["value"]
            mixed = mixture(scores.float() / args.own_tau, seq, seq_len)
            return mixed.masked_fill(input_items(seq, mixed.shape[1]), -1e9)
        if args.scale == "raw":
            return scores + beta["value"] * weight * text * only
        return zscore_rows(scores) + beta["value"] * weight * zscore_rows(text) * only

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
            "norm": "whiten", "last": args.last, "gate": args.gate, "scale": args.scale, "tau": args.tau if args.scale == "mixture" else None, "own_tau": args.own_tau if args.scale == "mixture" else None, "own_over": args.own_over if args.scale == "mixture" else None, "candidates": args.candidates, "command": " ".join(sys.argv), "rows": rows})


if __name__ == "__main__":
    main()
