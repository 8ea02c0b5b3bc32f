"""The embedding store at catalogue scale: peak memory of saving and loading a synthetic table of
N items x d against the table's own size, and the seconds each takes.

    .venv/bin/python benchmarks/bench_store.py [--items=1000000] [--dims=384,4096] [--dtypes=float32,float16]
        [--dir=FOLDER] [--out=benchmarks/results/store.json] [--model]

The table is random (standard normal) and lives in a memory-mapped scratch file, so that the
process never holds it whole: what each step allocates is measured by ``tracemalloc`` (NumPy
reports its buffers to it) as the peak above the step's start, and compared with the table's size
in the stored dtype. A mapped load is also touched: one row in 1,000 read, and all rows summed in
blocks (the pages come from the file, not from allocations). The goal (issue: a store that holds a
million items): a full load at most 1.2x the table, a mapped load below 0.1x until touched.

``--model`` adds what building a plugin model's item table from the entry holds, in a fresh process
(its resident-memory peak above its start after each step, against the float32 table): the rows
aligned to the dataset's ids, the frozen adapter table over them, one evaluation pass, one training
step.
"""
import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import tracemalloc

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from recbole_llmemb.data import store  # noqa: E402


def measured(step):
    """``(result, peak bytes allocated above the start, seconds)`` of ``step()``."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    start_bytes, _ = tracemalloc.get_traced_memory()
    t0 = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, peak - start_bytes, seconds


def synthetic_table(path, n, d, block=65536, seed=0):
    """A float32 ``(n, d)`` standard-normal table written block by block to a mapped file."""
    table = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    rng = np.random.default_rng(seed)
    for i in range(0, n, block):
        table[i:i + block] = rng.standard_normal((min(block, n - i), d), dtype=np.float32)
    table.flush()
    return np.load(path, mmap_mode="r")


def one(n, d, dtype, folder, model=False):
    scratch = os.path.join(folder, "table.npy")
    table = synthetic_table(scratch, n, d)
    size = n * d * np.dtype(dtype).itemsize
    tokens = [str(i) for i in range(n)]
    entry = os.path.join(folder, "entry")
    row = {"items": n, "dim": d, "dtype": dtype, "table_mb": round(size / 2**20, 1)}
    _, peak, seconds = measured(lambda: store.save(entry, tokens, table, {"key": "bench"}, dtype=dtype))
    row.update(save_peak_mb=round(peak / 2**20, 1), save_peak_x=round(peak / size, 3), save_s=round(seconds, 1))
    del table
    os.unlink(scratch)
    es, peak, seconds = measured(lambda: store.load(entry, expect_key="bench"))
    row.update(load_peak_mb=round(peak / 2**20, 1), load_peak_x=round(peak / size, 3), load_s=round(seconds, 1))
    del es
    es, peak, seconds = measured(lambda: store.load(entry, expect_key="bench", mmap=True))
    row.update(mmap_peak_mb=round(peak / 2**20, 1), mmap_peak_x=round(peak / size, 4), mmap_s=round(seconds, 1))
    vectors = es.vectors

    def touch():
        sample = np.asarray(vectors[::1000], dtype=np.float32)
        total = sum(float(vectors[i:i + 65536].sum(dtype=np.float64)) for i in range(0, n, 65536))
        return sample.shape, total

    _, peak, seconds = measured(touch)
    row.update(mmap_touched_peak_mb=round(peak / 2**20, 1), mmap_touched_s=round(seconds, 1))
    del es, vectors
    if model:
        row.update(model_memory(entry, n, d))
    shutil.rmtree(entry)
    return row


def rss_mb(field):
    """This process's resident memory (``VmRSS``) or its peak (``VmHWM``), MiB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def model_steps(entry, d):
    """In a fresh process (``--model-steps``): a plugin model's item table built from the mapped entry
    as the pipeline builds it (rows aligned to the dataset's ids, the frozen adapter table over them),
    then one evaluation pass and one training step of the table; the peak resident memory above the
    start after each, MiB."""
    from types import SimpleNamespace

    import torch

    from recbole_llmemb.data.dataset import align_item_embeddings
    from recbole_llmemb.model.adapter import AdaptedItemEmbedding

    base = rss_mb("VmRSS")
    out = {}
    es = store.load(entry, expect_key="bench", mmap=True)
    dataset = SimpleNamespace(field2id_token={"item_id": np.array(["[PAD]"] + es.tokens, dtype=object)},
                              item_num=len(es.tokens) + 1, iid_field="item_id", dataset_name="synthetic")
    aligned = align_item_embeddings(dataset, es.tokens, es.vectors)
    out["aligned_peak_mb"] = round(rss_mb("VmHWM") - base, 1)
    table = AdaptedItemEmbedding(aligned, 64, freeze=True, input_norm="center")
    out["model_peak_mb"] = round(rss_mb("VmHWM") - base, 1)
    with torch.no_grad():
        table.table()
    out["eval_table_peak_mb"] = round(rss_mb("VmHWM") - base, 1)
    table_mb = (len(es.tokens) * d * 4) / 2**20
    if 3 * table_mb > available_mb():  # a training step keeps about 2.5x the table more: not on this machine
        out["train_step"] = f"skipped: about 3x the float32 table ({3 * table_mb:.0f} MiB) is more than is free"
        return out
    table.table().square().mean().backward()
    out["train_step_peak_mb"] = round(rss_mb("VmHWM") - base, 1)
    return out


def available_mb():
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:")) / 1024


def model_memory(entry, n, d):
    """:func:`model_steps` in a fresh process (its peak is its own), each also against the float32 table."""
    import subprocess

    done = subprocess.run([sys.executable, os.path.abspath(__file__), f"--model-steps={entry}", f"--dims={d}"],
                          capture_output=True, text=True, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    table_mb = n * d * 4 / 2**20
    return {**out, **{k.replace("_mb", "_x"): round(v / table_mb, 3) for k, v in out.items() if k.endswith("_mb")}}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dims", default="384,4096")
    parser.add_argument("--dtypes", default="float32,float16")
    parser.add_argument("--dir", default=None, help="scratch folder (needs twice the largest table on disk)")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "store.json"))
    parser.add_argument("--model", action="store_true", help="also the peak memory of building a model's table")
    parser.add_argument("--model-steps", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model_steps:
        print(json.dumps(model_steps(args.model_steps, int(args.dims))))
        return
    rows = []
    for d in (int(x) for x in args.dims.split(",")):
        for dtype in args.dtypes.split(","):
            folder = tempfile.mkdtemp(prefix="bench-store-", dir=args.dir)
            try:
                row = one(args.items, d, dtype, folder, model=args.model)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            print(json.dumps(row), flush=True)
            rows.append(row)
    record = {"command": " ".join([os.path.relpath(sys.executable, ROOT)] + sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"),
              "machine": f"{platform.machine()} {os.cpu_count()} CPUs", "rows": rows}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(record, f, indent=2)
    print(f"[bench] {args.out}")


if __name__ == "__main__":
    main()
