"""Is the main job's SASRec sized fairly? SASRec on ml-100k at the main job's settings, with RecBole's
own feed-forward (GELU, inner size 256) and with smaller ones, each the same epochs and seed; each
sizing's test NDCG@10 against RecBole's with a 95% paired bootstrap interval, and its seconds per epoch.

    .venv/bin/python benchmarks/quickstart_sizing.py [--epochs=8] [--threads=2]

Writes benchmarks/results/quickstart/sizing.json and .md (the runs' results files beside them).
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
OUT = os.path.join(ROOT, "benchmarks", "results", "quickstart")
#: label -> overrides on top of props/quickstart.yaml (which sets the main job's sizing)
SIZINGS = {"RecBole's feed-forward (GELU, inner 256)": "hidden_act=gelu,inner_size=256",
           "ReLU, inner 256": "hidden_act=relu,inner_size=256",
           "ReLU, inner 64 (the main job until 2026-12-01)": "hidden_act=relu,inner_size=64"}


def run(label, overrides, args):
    argv = [sys.executable, "run_recbole_llmemb.py", "--model=SASRec", "--dataset=ml-100k",
            "--config_files=props/quickstart.yaml", f"--epochs={args.epochs}", f"--results_dir={OUT}/runs"]
    argv += [f"--{kv}" for kv in overrides.split(",")]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    start = time.perf_counter()
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env)
    if out.returncode:
        sys.exit(f"{label} failed:\n{out.stderr[-2000:]}")
    path = [line.split(": ", 1)[1] for line in out.stdout.splitlines() if line.startswith("results file: ")][-1]
    with open(path) as f:
        results = json.load(f)
    return {"label": label, "overrides": overrides, "command": " ".join(["python"] + argv[1:]),
            "wall_seconds": round(time.perf_counter() - start, 1),
            "epoch_seconds": results["timing"]["epoch_seconds_mean"], "results_file": os.path.relpath(path, ROOT),
            "test": {k: results["test"]["overall"][k] for k in ("ndcg@10", "hit@10")},
            "tail_ndcg@10": results["test"]["groups"]["item_tail"]["metrics"]["ndcg@10"]}


def main():
    from recbole_llmemb.evaluation.paired import compare_blocks, format_ratio

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    rows = [run(label, overrides, args) for label, overrides in SIZINGS.items()]
    blocks = []
    for r in rows:
        with open(os.path.join(ROOT, r["results_file"])) as f:
            blocks.append(json.load(f)["test"])
    lines = ["# The main job's SASRec sizing on ml-100k", "", f"`python benchmarks/quickstart_sizing.py --epochs={args.epochs} "
             f"--threads={args.threads}`: SASRec at props/quickstart.yaml's settings, {args.epochs} epochs, seed 2020; "
             "ratios against RecBole's own feed-forward with 95% paired bootstrap intervals over the 943 test users.", "",
             "| sizing | NDCG@10 | tail NDCG@10 | Hit@10 | vs RecBole's: NDCG@10 | tail | s/epoch |", "|---" * 7 + "|"]
    for r, block in zip(rows, blocks):
        cmp = compare_blocks(block, blocks[0])
        r["vs_recbole"] = cmp
        lines.append(f"| {r['label']} | {r['test']['ndcg@10']:.4f} | {r['tail_ndcg@10']:.4f} | {r['test']['hit@10']:.4f} | "
                     f"{format_ratio(cmp['overall'])} | {format_ratio(cmp['item_tail'])} | {r['epoch_seconds']:.1f} |")
    with open(os.path.join(OUT, "sizing.json"), "w") as f:
        json.dump({"epochs": args.epochs, "threads": args.threads, "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}, f, indent=2)
    with open(os.path.join(OUT, "sizing.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
