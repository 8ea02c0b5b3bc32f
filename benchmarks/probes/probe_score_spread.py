"""Probe (no retraining): how the spread of a trained model's scores compares with the text cosine's.

``text_score`` adds ``w * cos`` to raw scores; the re-ranker adds ``beta * z(cos)`` to ``z(scores)``.
The ratio of the two spreads (per user: the std of the model's scores over the items over the
std of the cosines, median over the first validation batch) turns a re-ranker weight into a
start for ``text_score``: ``w ~ beta * ratio``.

    .venv/bin/python benchmarks/probes/probe_score_spread.py CHECKPOINT [--model=LLMEmbSASRec] [--out=FILE]
"""
import argparse
import json
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from benchmarks.probes import checkpoint_probe  # noqa: E402
from recbole_llmemb.data.dataset import align_item_embeddings  # noqa: E402
from recbole_llmemb.evaluation.rerank import TextReranker  # noqa: E402
from recbole_llmemb.pipeline.generate import item_embeddings  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    checkpoint_probe.add_arguments(parser)
    args = parser.parse_args()

    def text_vectors(config, dataset):
        es = item_embeddings(config, dataset, "plain")
        return align_item_embeddings(dataset, es.tokens, es.vectors, "plain")

    *_, model, trainer, valid, test, vectors = checkpoint_probe.load(args, before_split=text_vectors)
    text = TextReranker(vectors, 1.0, last=3)
    batch = next(iter(valid))[0]
    with torch.no_grad():
        scores = model.full_sort_predict(batch).view(len(batch), -1)[:, 1:]
        cosines = text.text_scores(batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN])[:, 1:]
    row = {"model_std": scores.std(1).median().item(), "cosine_std": cosines.std(1).median().item(),
           "ratio": (scores.std(1) / cosines.std(1)).median().item(), "users": len(batch)}
    print(json.dumps(row))
    if args.out:
        checkpoint_probe.append_run(args.out, {"checkpoint": os.path.relpath(args.checkpoint, ROOT), "model": args.model,
                                               "command": " ".join(sys.argv), **row})


if __name__ == "__main__":
    main()
