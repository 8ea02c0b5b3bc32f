"""Baselines against LLMEmb models on Amazon Beauty, same seed, split and budget (issue 4).

    .venv/bin/python benchmarks/bench_recommenders.py [--data_path=../shared/datasets] [--config=benchmarks/beauty.yaml]

Each stage runs as its own process through the project's command lines, so that wall time and
peak memory (``ru_maxrss`` of that process) belong to it alone:

1. ``python -m recbole_llmemb.generate --method=scft``    item embeddings (SCFT + extraction)
2. ``python -m recbole_llmemb.collaborative``             the alignment SASRec = the SASRec baseline
   (stages 1 and 2 are reused from the cache when present: their figures then come from the
   run that built them, and the stage line says "reused")
3. ``run_recbole_llmemb.py --model=LLMEmbSASRec``         reuses 1 and 2
4. ``run_recbole_llmemb.py --model=GRU4Rec``
5. ``run_recbole_llmemb.py --model=LLMEmbGRU4Rec``        reuses 1 and 2 (same table size)

Writes ``benchmarks/results/recommenders-<dataset>.json`` and ``.md`` (test Hit@10 and NDCG@10
overall, on tail items and on short-history users, seconds per epoch, peak memory, ratios
against the baseline), and the comparison report beside them.
"""
import argparse
import glob
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
PAIRS = [("SASRec", "LLMEmbSASRec"), ("GRU4Rec", "LLMEmbGRU4Rec")]
METRICS = ["hit@10", "ndcg@10"]


def run_stage(name, argv, log_dir):
    """Run one command; return wall seconds, peak RSS (MiB) and its log path. Fails loudly."""
    log = os.path.join(log_dir, f"{name}.log")
    print(f"[bench] {name}: {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"[bench] {name} failed (exit {code}); see {log}")
    print(f"[bench] {name}: {seconds:.0f}s, peak {usage.ru_maxrss / 1024:.0f} MiB", flush=True)
    return {"command": " ".join(os.path.relpath(a, ROOT) if a == PY else a for a in argv),
            "wall_seconds": round(seconds, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def newest_results(results_dir, model, dataset, since):
    files = [f for f in glob.glob(os.path.join(results_dir, f"{model}-{dataset}-*.json")) if os.path.getmtime(f) >= since]
    if not files:
        sys.exit(f"[bench] no results file for {model} in {results_dir}")
    return max(files, key=os.path.getmtime)


def baseline_results(log):
    """The SASRec results file that the alignment-table stage printed (built now or earlier)."""
    with open(log) as f:
        found = [line.split("SASRec results: ", 1)[1].strip() for line in f if line.startswith("SASRec results: ")]
    if not found or not os.path.isfile(found[-1]):
        sys.exit(f"[bench] the alignment stage named no SASRec results file; see {log}")
    return found[-1]


def summary(path, stage):
    with open(path) as f:
        r = json.load(f)
    test = r["test"]
    groups = test["groups"]
    row = {
        "model": r["model"],
        "results_file": os.path.relpath(path, ROOT),
        "epochs_run": len(r["history"]),
        "best_valid_epoch": r["best_valid_epoch"],
        "epoch_seconds": r["timing"]["epoch_seconds_mean"],
        "peak_rss_mb": r["peak_rss_mb"],  # measured in the process that trained it, at its end
        "stage_wall_seconds": stage["wall_seconds"] if stage else None,
        "sizes": {"test_users": test["n_rows"], "tail_items": groups["item_tail"]["size"], "short_users": groups["user_short"]["size"]},
        "definition": test["definition"],
    }
    for m in METRICS:
        row[f"overall {m}"] = test["overall"][m]
        row[f"tail-item {m}"] = groups["item_tail"]["metrics"][m]
        row[f"short-user {m}"] = groups["user_short"]["metrics"][m]
    return row


def markdown(payload):
    cols = [f"{g} {m}" for g in ("overall", "tail-item", "short-user") for m in METRICS]
    lines = [f"# Recommenders on {payload['dataset']}: baselines vs LLMEmb", "",
             f"Produced by `{payload['command']}` on {payload['machine']} ({payload['date']}).", "",
             f"Configuration: {payload['configuration']}", "",
             "| model | " + " | ".join(cols) + " | s/epoch | peak MiB | epochs (best) |",
             "|---" * (len(cols) + 4) + "|"]
    for row in payload["rows"]:
        cells = " | ".join(f"{row[c]:.4f}" for c in cols)
        lines.append(f"| {row['model']} | {cells} | {row['epoch_seconds']:.1f} | {row['peak_rss_mb']:.0f} | {row['epochs_run']} ({row['best_valid_epoch']}) |")
    lines += ["", "Ratios, LLMEmb model / its baseline (targets for LLMEmbSASRec: NDCG@10 >= 1.10 overall, "
              ">= 1.5 on tail items; epoch time <= 1.15):", "",
              "| pair | overall ndcg@10 | tail-item ndcg@10 | short-user ndcg@10 | overall hit@10 | s/epoch | peak memory |",
              "|---|---|---|---|---|---|---|"]
    for name, ratio in payload["ratios"].items():
        lines.append(f"| {name} | " + " | ".join(f"{ratio[k]:.2f}x" for k in (
            "overall ndcg@10", "tail-item ndcg@10", "short-user ndcg@10", "overall hit@10", "epoch_seconds", "peak_rss_mb")) + " |")
    first = payload["rows"][0]
    lines += ["", f"Test users: {first['sizes']['test_users']}; tail-item rows: {first['sizes']['tail_items']} "
              f"(tail = items outside the top {int(first['definition']['head_ratio'] * 100)}% by training count, "
              f"{first['definition']['n_tail_items']} items); short-history users: {first['sizes']['short_users']} "
              f"(at most {first['definition']['user_short_threshold']} training interactions).", "",
              "Stages (own process each): " + "; ".join(f"{k} {v['wall_seconds']:.0f}s / {v['peak_rss_mb']:.0f} MiB"
                                                        for k, v in payload["stages"].items()) + "."]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="amazon-beauty")
    ap.add_argument("--data_path", default=os.path.join(os.path.dirname(ROOT), "shared", "datasets"))
    ap.add_argument("--config", default="benchmarks/beauty.yaml")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--pairs", default="SASRec,GRU4Rec", help="baselines to run, each with its LLMEmb model")
    ap.add_argument("--variant", action="append", default=[],
                    help="LABEL:MODEL:key=value[,key=value] an extra run compared with SASRec, e.g. "
                         "'LLMEmbSASRec-unfrozen:LLMEmbSASRec:freeze_emb=False'")
    args = ap.parse_args()
    import yaml

    with open(os.path.join(ROOT, args.config)) as f:
        cfg = yaml.safe_load(f)
    results_dir = os.path.join(ROOT, cfg.get("results_dir", "results/"))
    log_dir = os.path.join(ROOT, args.out, "logs")
    os.makedirs(log_dir, exist_ok=True)
    common = [f"--dataset={args.dataset}", f"--data_path={args.data_path}", f"--config_files={args.config}"]
    since = time.time() - 1
    pairs = [p for p in PAIRS if p[0] in args.pairs.split(",")]
    stages = {"scft_embeddings": run_stage("scft_embeddings", [PY, "-m", "recbole_llmemb.generate", "--method=scft"] + common, log_dir),
              "SASRec (alignment table)": run_stage("collaborative_sasrec", [PY, "-m", "recbole_llmemb.collaborative", "--model=LLMEmbSASRec"] + common, log_dir)}
    files = {"SASRec": baseline_results(os.path.join(log_dir, "collaborative_sasrec.log"))}
    stage_of = {"SASRec": stages["SASRec (alignment table)"]}
    for base, plugin in pairs:
        for model in (base, plugin):
            if model in files:
                continue
            stages[model] = stage_of[model] = run_stage(model, [PY, "run_recbole_llmemb.py", f"--model={model}"] + common, log_dir)
            files[model] = newest_results(results_dir, model, args.dataset, since)
    labels = {m: m for pair in pairs for m in pair}
    for spec in args.variant:
        label, model, overrides = spec.split(":", 2)
        extra = [f"--{kv}" for kv in overrides.split(",") if kv]
        stages[label] = stage_of[label] = run_stage(label, [PY, "run_recbole_llmemb.py", f"--model={model}"] + common + extra, log_dir)
        files[label] = newest_results(results_dir, model, args.dataset, since)
        labels[label] = label
        pairs.append(("SASRec", label))
    rows = []
    for label in labels:
        rows.append(dict(summary(files[label], stage_of.get(label)), model=label))
    by_model = {r["model"]: r for r in rows}
    ratios = {}
    for base, plugin in pairs:
        b, p = by_model[base], by_model[plugin]
        ratios[f"{plugin} / {base}"] = {k: (p[k] / b[k] if b[k] else float("nan")) for k in (
            "overall ndcg@10", "tail-item ndcg@10", "short-user ndcg@10", "overall hit@10", "epoch_seconds", "peak_rss_mb")}
    payload = {
        "command": "python benchmarks/bench_recommenders.py " + " ".join(sys.argv[1:]),
        "dataset": args.dataset,
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "configuration": ", ".join(f"{k}={v}" for k, v in cfg.items()) + " (other settings: props/)",
        "stages": stages,
        "rows": rows,
        "ratios": ratios,
    }
    out = os.path.join(ROOT, args.out, f"recommenders-{args.dataset}")
    with open(out + ".json", "w") as f:
        json.dump(payload, f, indent=2)
    with open(out + ".md", "w") as f:
        f.write(markdown(payload))
    print(markdown(payload))
    from recbole_llmemb.report import write_report

    index = write_report([files[label] for label in labels], os.path.join(ROOT, args.out, f"report-{args.dataset}"), baseline=files["SASRec"])
    print(f"[bench] report: {index}")


if __name__ == "__main__":
    main()
