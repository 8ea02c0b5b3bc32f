"""The README's main job, end to end from an empty cache, timed and kept.

    .venv/bin/python benchmarks/main_job.py

Runs the README's command (LLMEmbSASRec on ml-100k with props/quickstart.yaml) with its caches,
checkpoints and results in a fresh temporary folder, then keeps in benchmarks/results/main-job/ its
two results files (LLMEmbSASRec's and its alignment SASRec's), what it printed after training
(the like-for-like comparison) and a record: the command, wall time, peak memory, the machine
(cores, AMX) and the commit.
"""
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "benchmarks", "results", "main-job")
COMMAND = ["run_recbole_llmemb.py", "--model=LLMEmbSASRec", "--dataset=ml-100k", "--config_files=props/quickstart.yaml"]


def forget_previous_run():
    """Remove the last run's results files, output and record; other records in OUT (re-runs kept by hand) stay."""
    record = os.path.join(OUT, "record.json")
    names = []
    if os.path.exists(record):
        with open(record) as f:
            names = json.load(f).get("results_files", [])
    for name in names + ["output.txt", "record.json"]:
        if os.path.exists(os.path.join(OUT, name)):
            os.remove(os.path.join(OUT, name))


def main():
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        places = [f"--results_dir={tmp}/results", f"--embedding_cache_dir={tmp}/cache", f"--checkpoint_dir={tmp}/saved"]
        start = time.perf_counter()
        out = subprocess.run([sys.executable, *COMMAND, *places], cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if out.returncode:
            sys.exit(out.stderr[-3000:])
        forget_previous_run()
        os.makedirs(OUT, exist_ok=True)
        kept = []
        for name in sorted(os.listdir(f"{tmp}/results")):
            shutil.copy(f"{tmp}/results/{name}", OUT)
            kept.append(name)
    tail = out.stdout[out.stdout.index("ndcg@10 on the test set"):] if "ndcg@10 on the test set" in out.stdout else out.stdout
    with open(os.path.join(OUT, "output.txt"), "w") as f:
        f.write(tail)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    record = {"command": ".venv/bin/python " + " ".join(COMMAND), "wall_seconds": round(seconds, 1),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
              "machine": f"{platform.machine()} {os.cpu_count()} CPUs, AMX {torch.cpu._is_amx_tile_supported()}",
              "threads": os.environ.get("OMP_NUM_THREADS", "default"), "commit": commit,
              "date": time.strftime("%Y-%m-%d %H:%M"), "results_files": kept}
    with open(os.path.join(OUT, "record.json"), "w") as f:
        json.dump(record, f, indent=2)
    print(tail)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
