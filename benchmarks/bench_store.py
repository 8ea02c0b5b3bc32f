"""The embedding store at catalogue scale: peak memory of saving and loading a synthetic table of
N items x d against the table's own size, and the seconds each takes.

    .venv/bin/python benchmarks/bench_store.py [--items=1000000] [--dims=384,4096] [--dtypes=float32,float16]
        [--dir=FOLDER] [--out=benchmarks/results/store.json]

The table is random (standard normal) and lives in a memory-mapped scratch file, so that the
process never holds it whole: what each step allocates is measured by ``tracemalloc`` (NumPy
reports its buffers to it) as the peak above the step's start, and compared with the table's size
in the stored dtype. A mapped load is also touched: one row in 1,000 read, and all rows summed in
blocks (the pages come from the file, not from allocations). The goal (issue: a store that holds a
million items): a full load at most 1.2x the table, a mapped load below 0.1x until touched.
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


def one(n, d, dtype, folder):
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
    shutil.rmtree(entry)
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dims", default="384,4096")
    parser.add_argument("--dtypes", default="float32,float16")
    parser.add_argument("--dir", default=None, help="scratch folder (needs twice the largest table on disk)")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "store.json"))
    args = parser.parse_args()
    rows = []
    for d in (int(x) for x in args.dims.split(",")):
        for dtype in args.dtypes.split(","):
            folder = tempfile.mkdtemp(prefix="bench-store-", dir=args.dir)
            try:
                row = one(args.items, d, dtype, folder)
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
