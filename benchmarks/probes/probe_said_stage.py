"""Probe: do SAID's soft tokens come to hold their own item? On Beauty, the real stage (every item's
text, vocabulary and frequency baselines over all 12,101 texts) trained on a subset of items for as
many passes as the default makes over all of them, so that it runs on a CPU in minutes.

Records, on up to 512 of the trained items (eval mode): the loss (nats per predicted token) before
and after, the word-frequency baselines (plain and by position in the text), and the loss when each
item's soft tokens must reproduce another trained item's text: the gap between the two is what the
soft tokens know of their own item. And whether the exported vectors are arranged by meaning: over
pairs of the evaluated items, the correlation of their exported vectors' cosines (each export) with
their plain text vectors' cosines, and how far the id vectors moved from their random start.

    .venv/bin/python benchmarks/probes/probe_said_stage.py [--items=1000] [--epochs=10] [--set=key=value,...] [--out=FILE]
"""
import argparse
import math
import os
import random
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from benchmarks.probes.stage_probe import add_arguments, append_record, config_for  # noqa: E402
from recbole_llmemb.data.item_text import item_attributes  # noqa: E402
from recbole_llmemb.generator import said  # noqa: E402
from recbole_llmemb.data.dataset import align_item_embeddings  # noqa: E402
from recbole_llmemb.pipeline.generate import item_embeddings  # noqa: E402
from recbole_llmemb.pipeline.training import load_dataset  # noqa: E402


def other_text_loss(trainer, items):
    """Mean loss of each item's soft tokens against the next item's text (in ``items``' order)."""
    trainer.model.eval()
    if trainer.head is not None:
        trainer.head.eval()
    bs, shifted = trainer.s["said_batch_size"], items[1:] + items[:1]
    with torch.no_grad():
        losses = [trainer.example_losses(items[i : i + bs], shifted[i : i + bs]) for i in range(0, len(items), bs)]
    return float(torch.cat(losses).mean())


def meaning(trainer, items, plain, start_ids):
    """Pearson correlation of pairwise cosines, exported vectors against the plain text's, per export."""
    def cosines(x):
        x = torch.nn.functional.normalize(torch.as_tensor(x, dtype=torch.float64)[items], dim=-1)
        c = x @ x.T
        return c[torch.triu_indices(len(items), len(items), 1).unbind()]
    text = cosines(plain)
    ids = trainer.soft.ids.weight.detach().double()[items]
    out = {"id_vectors_moved": round(float((ids - start_ids[items]).norm() / start_ids[items].norm()), 4)}
    for export in said.EXPORTS:
        out[f"cosine_correlation_with_plain_text_{export}"] = round(float(torch.corrcoef(
            torch.stack([cosines(trainer.vectors(export)), text]))[0, 1]), 4)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--id_init", choices=("random", "text"), default="random",
                        help="text: start the id vectors from the plain text's top principal components "
                             "(unit variance each, as the random start), a candidate for codes arranged by meaning")
    add_arguments(parser, "said_stage.json")
    args = parser.parse_args()
    config = config_for("SAIDSASRec", args)
    dataset = load_dataset(config)
    texts = said.said_texts(item_attributes(config, dataset))
    es = item_embeddings(config, dataset, "plain")
    plain = align_item_embeddings(dataset, es.tokens, es.vectors, "plain")[1:]
    s = said.settings(config, len(texts))
    trainer = said.make_trainer(config, texts, s)
    if args.id_init == "text":
        with torch.no_grad():  # the stage's said_id_init=text, from the cached plain vectors
            codes = said.text_codes(plain, s["said_id_dim"])[0]
            trainer.soft.ids.weight[:, :codes.shape[1]] = codes
    trainer.items = sorted(random.Random(0).sample(range(len(texts)), min(args.items, len(texts))))
    shown = trainer.items[:512]
    before = trainer.evaluate(among=shown, sample=len(shown))
    start_ids = trainer.soft.ids.weight.detach().double().clone()
    steps = int(math.ceil(args.epochs * len(trainer.items) / s["said_batch_size"]))
    start = time.perf_counter()
    stats = trainer.train(steps, progress=False)
    after = trainer.evaluate(among=shown, sample=len(shown))
    record = {"command": " ".join(sys.argv), "settings": {k: v for k, v in s.items() if k != "model"}, "id_init": args.id_init,
              "items": {"all": len(texts), "trained": len(trainer.items), "evaluated": len(shown)},
              "passes": args.epochs, "steps": steps, "before": before, "after": after,
              "after_other_items_text": other_text_loss(trainer, shown),
              "meaning": meaning(trainer, shown, plain, start_ids), "train": stats,
              "seconds": round(time.perf_counter() - start, 1), "threads": args.threads,
              "amx": bool(torch.cpu._is_amx_tile_supported())}
    append_record(args.out, record)


if __name__ == "__main__":
    main()
