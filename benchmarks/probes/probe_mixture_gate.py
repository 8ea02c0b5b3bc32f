"""Probe (no retraining): would a per-user share of the text mixture beat one share for everyone?

The text mixture (``TextMixture``) gives every user the same text share. A gate would give each user
their own, from something known at ranking time. Before building one, this probe asks whether any
such signal separates users who want different shares: it evaluates a checkpoint under the mixture at
each share of ``--shares`` and keeps every user's NDCG@10; then, per signal, it cuts the validation
users into ``--buckets`` quantiles, picks each bucket's best share on validation, and scores the test
users with their bucket's share. Compared user by user (paired bootstrap) with the one share that
validation picks for everyone: if no signal's gate beats it, a gate is not worth building.

Signals: ``own_entropy`` (normalised entropy of the model's softmax over all items: how unsure the
model is), ``text_peak`` (the text softmax's largest probability: how sure the text is),
``history`` (the user's input length) and ``tail_recent`` (share of tail items among the last 3 inputs).

    .venv/bin/python benchmarks/probes/probe_mixture_gate.py CHECKPOINT --model=SASRec [--shares=...] [--out=FILE]
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from benchmarks.probes import checkpoint_probe  # noqa: E402
from recbole_llmemb.data.dataset import align_item_embeddings  # noqa: E402
from recbole_llmemb.evaluation.paired import format_ratio, paired_ratio, per_user_values  # noqa: E402
from recbole_llmemb.model.text_score import TextMixture, input_items, recent_positions  # noqa: E402
from recbole_llmemb.pipeline.generate import item_embeddings  # noqa: E402

SIGNALS = ("own_entropy", "text_peak", "history", "tail_recent")


def gate_choice(valid, test, signal_valid, signal_test, buckets):
    """Per-bucket best share on validation, applied to test: ``(per-user test values, shares, edges)``.
    ``valid``/``test``: ``{share: {user: ndcg}}``; ``signal_*``: ``{user: value}``."""
    shares = sorted(valid)
    users_v = sorted(signal_valid)
    edges = np.quantile([signal_valid[u] for u in users_v], np.linspace(0, 1, buckets + 1)[1:-1])
    bucket_v = {u: int(np.searchsorted(edges, signal_valid[u], side="right")) for u in users_v}
    chosen = []
    for b in range(buckets):
        members = [u for u in users_v if bucket_v[u] == b and u in valid[shares[0]]]
        means = [np.mean([valid[s][u] for u in members]) if members else 0.0 for s in shares]
        chosen.append(shares[int(np.argmax(means))])
    out = {}
    for u, v in signal_test.items():
        share = chosen[int(np.searchsorted(edges, v, side="right"))]
        if u in test[share]:
            out[u] = test[share][u]
    return out, chosen, edges.tolist()


def main():
    parser = argparse.ArgumentParser()
    checkpoint_probe.add_arguments(parser)
    parser.add_argument("--shares", default="0.05,0.1,0.2,0.3,0.5,0.7,0.9")
    parser.add_argument("--tau", type=float, default=0.05)
    parser.add_argument("--last", type=int, default=3)
    parser.add_argument("--buckets", type=int, default=4)
    parser.add_argument("--method", default="plain", help="the generator whose vectors make the text's part (the mixture rows: plain)")
    args = parser.parse_args()

    def text_vectors(config, dataset):
        es = item_embeddings(config, dataset, args.method)
        return align_item_embeddings(dataset, es.tokens, es.vectors, args.method)

    *_, model, trainer, valid, test, vectors = checkpoint_probe.load(args, before_split=text_vectors)
    is_tail = torch.as_tensor(~trainer.groups.is_head, dtype=torch.float32)
    is_tail[0] = 0.0
    own = model.full_sort_predict
    mixture = TextMixture(vectors, 0.5, args.tau, args.last)
    signals = {}

    def mixed(interaction):
        scores = own(interaction).float()
        seq, seq_len = interaction[model.ITEM_SEQ], interaction[model.ITEM_SEQ_LEN]
        n = min(scores.shape[1], mixture.table.shape[0])
        logp = torch.log_softmax(scores[:, 1:n], dim=1)
        text_peak = mixture.text_log_probs(seq, seq_len)[:, 1:n].max(1).values.exp()
        recent = recent_positions(seq, seq_len, args.last).float()
        values = {"own_entropy": -(logp.exp() * logp).sum(1) / math.log(logp.shape[1]), "text_peak": text_peak,
                  "history": seq_len.float(), "tail_recent": (is_tail[seq] * recent).sum(1) / recent.sum(1).clamp_min(1)}
        for user, *vals in zip(interaction[model.USER_ID].tolist(), *(values[s].tolist() for s in SIGNALS)):
            signals[user] = dict(zip(SIGNALS, vals))
        out = mixture(scores, seq, seq_len)
        return out.masked_fill(input_items(seq, out.shape[1]), -1e9)

    model.full_sort_predict = mixed
    per_share = {"valid": {}, "test": {}}
    per_split_signals = {}
    for split, data in (("valid", valid), ("test", test)):
        for share in [float(s) for s in args.shares.split(",") if s]:
            mixture.share = share
            checkpoint_probe.evaluate(trainer, data)
            per_share[split][share] = per_user_values(trainer.last_groups, "ndcg@10")["overall"]
            print(f"{split} share {share}: ndcg@10 {np.mean(list(per_share[split][share].values())):.4f}", flush=True)
        per_split_signals[split] = dict(signals)
    shares = sorted(per_share["valid"])
    means_v = [np.mean(list(per_share["valid"][s].values())) for s in shares]
    single = shares[int(np.argmax(means_v))]
    result = {"checkpoint": os.path.relpath(args.checkpoint, ROOT), "model": args.model, "method": args.method,
              "tau": args.tau, "last": args.last, "buckets": args.buckets, "command": " ".join(sys.argv),
              "valid_by_share": dict(zip(shares, [round(float(m), 5) for m in means_v])),
              "test_by_share": {s: round(float(np.mean(list(per_share["test"][s].values()))), 5) for s in shares},
              "single_share": single, "gates": {}}
    base = per_share["test"][single]
    print(f"one share for everyone (validation's pick): {single}, test ndcg@10 {np.mean(list(base.values())):.4f}")
    for signal in SIGNALS:
        sv = {u: s[signal] for u, s in per_split_signals["valid"].items()}
        st = {u: s[signal] for u, s in per_split_signals["test"].items()}
        gated, chosen, edges = gate_choice(per_share["valid"], per_share["test"], sv, st, args.buckets)
        users = sorted(set(gated) & set(base))
        ratio, low, high = paired_ratio([gated[u] for u in users], [base[u] for u in users])
        entry = {"shares_by_bucket": chosen, "edges": [round(e, 4) for e in edges],
                 "test_ndcg@10": round(float(np.mean([gated[u] for u in users])), 5),
                 "ratio": ratio, "low": low, "high": high}
        result["gates"][signal] = entry
        print(f"gate by {signal}: shares {chosen} at edges {entry['edges']}: test ndcg@10 {entry['test_ndcg@10']:.4f}, "
              f"{format_ratio(entry)} the one share", flush=True)
    if args.out:
        checkpoint_probe.append_run(args.out, result)


if __name__ == "__main__":
    main()
