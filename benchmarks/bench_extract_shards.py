"""Extraction of a synthetic catalogue on this machine, in one process and sharded over several
(torch.distributed, gloo): items per second with the packaged all-MiniLM-L6-v2 through the plugin's
own ``generator.extract.extract``, the machine's cores shared out alike (one process with all
threads, or N processes with a share each), and whether the sharded table equals the one-process one.

    .venv/bin/python benchmarks/bench_extract_shards.py [--items=20000] [--nprocs=1,2] [--out=...]

Texts: random words of a Beauty-like length (titles, brands, categories: 40-70 tokens), so the
figure scales to a catalogue of any size (seconds per item do not depend on the catalogue).
"""
import argparse
import json
import os
import platform
import random
import socket
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

WORDS = ("serum cream gentle hydrating matte lipstick shade brush palette organic vitamin repair mask "
         "shampoo conditioner volume lash curl liner waterproof nail polish gloss spf sun daily night "
         "oil free fragrance rose vanilla citrus travel size set kit professional salon skin hair face").split()


def texts(n, seed=0):
    rng = random.Random(seed)
    return [f"The item has the following attributes:\ntitle: {' '.join(rng.choices(WORDS, k=rng.randint(6, 14)))}; "
            f"brand: {rng.choice(WORDS).title()}; categories: {', '.join(rng.choices(WORDS, k=rng.randint(3, 8)))}"
            for _ in range(n)]


def run(rank, nproc, items, port, out):
    from recbole_llmemb.generator.backbone import load_backbone
    from recbole_llmemb.generator.extract import extract
    from recbole_llmemb.pipeline.config import Config

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    if nproc > 1:
        torch.distributed.init_process_group("gloo", init_method=f"tcp://localhost:{port}", rank=rank, world_size=nproc)
    config = Config("LLMEmbSASRec", "ml-100k", config_dict={"llm_device": "cpu"})
    tokenizer, model, info = load_backbone(config)
    corpus = texts(items)
    t0 = time.perf_counter()
    vectors = extract(model, tokenizer, corpus, info, batch_size=64, sharded=nproc > 1)
    seconds = time.perf_counter() - t0
    if rank == 0:
        np.save(out, vectors)
        with open(out + ".json", "w") as f:
            json.dump({"seconds": seconds}, f)
    if nproc > 1:
        torch.distributed.destroy_process_group()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--nprocs", default="1,2")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "extract-shards.json"))
    args = parser.parse_args()
    import tempfile

    import torch.multiprocessing as mp

    rows, first = [], None
    scratch = tempfile.mkdtemp(prefix="bench-shards-")
    for nproc in (int(x) for x in args.nprocs.split(",")):
        out = os.path.join(scratch, f"n{nproc}.npy")
        with socket.socket() as s:
            s.bind(("localhost", 0))
            port = s.getsockname()[1]
        mp.spawn(run, args=(nproc, args.items, port, out), nprocs=nproc, join=True)
        vectors = np.load(out)
        with open(out + ".json") as f:
            seconds = json.load(f)["seconds"]
        first = vectors if first is None else first
        row = {"processes": nproc, "threads_each": max(1, (os.cpu_count() or 1) // nproc), "items": args.items,
               "seconds": round(seconds, 1), "items_per_s": round(args.items / seconds, 1),
               "equal_to_first_row": bool(np.array_equal(vectors, first))}
        print(json.dumps(row), flush=True)
        rows.append(row)
    record = {"command": " ".join([os.path.relpath(sys.executable, ROOT)] + sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"),
              "machine": f"{platform.machine()} {os.cpu_count()} CPUs, AMX {torch.cpu._is_amx_tile_supported()}",
              "model": "all-MiniLM-L6-v2 (packaged), float32, mean pooling, batches of 64", "rows": rows}
    with open(args.out, "w") as f:
        json.dump(record, f, indent=2)
    print(f"[bench] {args.out}")


if __name__ == "__main__":
    main()
