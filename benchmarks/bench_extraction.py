"""Embedding-generator throughput against this machine's own matrix-multiply peak (issue 3).

    .venv/bin/python benchmarks/bench_extraction.py [--data_path=../shared/datasets] [--skip_cli]

Measured in one run, on one machine:

* peak GEMM FLOP/s of torch.matmul (float32 and bfloat16), best over shapes like the model's;
* extraction of every amazon-beauty item text with the packaged all-MiniLM-L6-v2, through the
  project's own ``generator.extract.extract`` (length-sorted batches, inference mode): items/s,
  and model FLOPs over the real, unpadded tokens per second as a fraction of that peak;
* SCFT optimiser steps per second (batch 32 items, two views each, LoRA);
* the stage-1 command on ml-100k with the defaults, built, then again from the store.

Writes ``benchmarks/results/extraction.json`` and ``.md``. ``--llm_path=SmolLM2-135M`` measures another
model (``extraction-SmolLM2-135M.json``); ``--items``, ``--dtypes`` and ``--repeats`` keep a large one
within minutes.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from recbole_llmemb.pipeline.config import Config  # noqa: E402
from recbole_llmemb.data.item_text import instruction, item_attributes, render  # noqa: E402
from recbole_llmemb.generator.backbone import load_backbone  # noqa: E402
from recbole_llmemb.generator.extract import encode, extract  # noqa: E402
from recbole_llmemb.generator.scft import SCFTTrainer  # noqa: E402
from recbole_llmemb.pipeline.quick_start import load_dataset  # noqa: E402


def gemm_peak(dtype, seconds=2.0):
    """Best sustained torch.matmul FLOP/s over a few shapes (the model's and a large square)."""
    best = {}
    for m, k, n in [(8192, 384, 1536), (8192, 1536, 384), (8192, 384, 384), (2048, 2048, 2048)]:
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        for _ in range(3):
            a @ b
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            a @ b
            reps += 1
        best[f"{m}x{k}x{n}"] = 2 * m * k * n * reps / (time.perf_counter() - start)
    return max(best.values()), best


def model_flops(hf_config, lengths):
    """Forward FLOPs of a transformer over sequences of the given (unpadded) lengths: a BERT-style
    encoder (two MLP matrices) or a LLaMA-style decoder (grouped K/V heads, three MLP matrices)."""
    h, f, n_layers = hf_config.hidden_size, hf_config.intermediate_size, hf_config.num_hidden_layers
    heads = hf_config.num_attention_heads
    kv = h * getattr(hf_config, "num_key_value_heads", heads) // heads
    gated = getattr(hf_config, "hidden_act", "") == "silu"  # LLaMA's SwiGLU: gate, up and down
    per_token = 2 * (2 * h * h + 2 * h * kv + (3 if gated else 2) * h * f)
    total = 0
    for length in lengths:
        total += n_layers * (per_token * length + 2 * 2 * h * length * length)  # + QK^T and AV
    return total


def time_extraction(config, texts, batch_size, repeats=2):
    tokenizer, model, info = load_backbone(config)
    extract(model, tokenizer, texts[:256], info, batch_size=batch_size)  # warm-up
    best = None
    for _ in range(repeats):
        start = time.perf_counter()
        vectors = extract(model, tokenizer, texts, info, batch_size=batch_size, max_length=int(config["llm_max_length"]))
        seconds = time.perf_counter() - start
        best = seconds if best is None else min(best, seconds)
    return best, vectors, model, tokenizer


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data_path", default=os.path.join(os.path.dirname(ROOT), "shared", "datasets"))
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    ap.add_argument("--batch_sizes", default="64,256")
    ap.add_argument("--scft_steps", type=int, default=10)
    ap.add_argument("--skip_cli", action="store_true", help="skip the ml-100k stage-1 command")
    ap.add_argument("--llm_path", default=None, help="a packaged model's name or a folder (default: the package's)")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--items", type=int, default=0, help="time the first N texts of a seeded shuffle (0: all)")
    ap.add_argument("--repeats", type=int, default=2, help="timed extractions per dtype and batch (the best counts)")
    args = ap.parse_args()
    model_settings = {"llm_path": args.llm_path} if args.llm_path else {}

    def config_for(**extra):
        return Config("SASRec", "amazon-beauty", config_dict={"data_path": args.data_path, **model_settings, **extra})

    torch.manual_seed(0)
    out = {"command": "python benchmarks/bench_extraction.py " + " ".join(sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d %H:%M"),
           "machine": f"{platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__} "
                      f"({torch.get_num_threads()} threads), Python {platform.python_version()}"}

    peaks = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        peak, shapes = gemm_peak(dtype)
        peaks[name] = peak
        out[f"gemm_peak_{name}"] = {"gflops": round(peak / 1e9, 1), "by_shape_gflops": {k: round(v / 1e9, 1) for k, v in shapes.items()}}
        print(f"peak GEMM {name}: {peak / 1e9:.1f} GFLOP/s", flush=True)

    config = config_for()
    dataset = load_dataset(config)
    instr = instruction(config)
    attributes = item_attributes(config, dataset)
    if args.items:
        attributes = [attributes[i] for i in torch.randperm(len(attributes))[:args.items].tolist()]
    texts = [render(instr, a) for a in attributes]
    tokenizer, _, info = load_backbone(config)
    from transformers import AutoConfig

    hf_config = AutoConfig.from_pretrained(info["path"], local_files_only=True)
    lengths = [len(x) for x in encode(tokenizer, texts, int(config["llm_max_length"]))]
    flops = model_flops(hf_config, lengths)
    out["items"] = len(texts)
    out["tokens"] = int(sum(lengths))
    out["mean_tokens_per_item"] = round(sum(lengths) / len(lengths), 1)
    out["model"] = {"name": info["name"], "hidden": hf_config.hidden_size, "layers": hf_config.num_hidden_layers}
    out["model_gflops_over_real_tokens"] = round(flops / 1e9, 1)

    runs = []
    reference = None
    for dtype in args.dtypes.split(","):
        for bs in [int(b) for b in args.batch_sizes.split(",")]:
            cfg = config_for(llm_dtype=dtype)
            seconds, vectors, _, _ = time_extraction(cfg, texts, bs, args.repeats)
            if reference is None:
                reference = vectors
            cos = torch.nn.functional.cosine_similarity(torch.from_numpy(vectors).float(), torch.from_numpy(reference).float()).min()
            run = {"dtype": dtype, "batch_size": bs, "seconds": round(seconds, 2), "items_per_second": round(len(texts) / seconds, 1),
                   "achieved_gflops": round(flops / seconds / 1e9, 1), "fraction_of_peak": round(flops / seconds / peaks[dtype], 3),
                   "min_cosine_to_float32": round(float(cos), 4)}
            runs.append(run)
            print(run, flush=True)
    out["extraction"] = runs

    cfg = config_for()
    tokenizer, model, info = load_backbone(cfg, lora=True)
    trainer = SCFTTrainer(cfg, tokenizer, model, info, attributes, instr)
    trainer.step()  # warm-up
    stats = trainer.train(args.scft_steps, progress=False)
    out["scft"] = {"batch_items": int(cfg["scft_batch_size"]), "steps": args.scft_steps, "steps_per_second": stats["steps_per_second"],
                   "dtype": info["dtype"]}
    print("SCFT", out["scft"], flush=True)

    if not args.skip_cli:
        cache = os.path.join(ROOT, "llmemb_cache", "bench-extraction")
        subprocess.run(["rm", "-rf", cache], check=True)
        cli = []
        for attempt in ("built", "reused"):
            argv = [sys.executable, "-m", "recbole_llmemb.pipeline.generate", "--method=scft", "--dataset=ml-100k", f"--embedding_cache_dir={cache}"]
            start = time.perf_counter()
            proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if proc.returncode != 0:
                sys.exit(proc.stderr[-2000:])
            cli.append({"expected": attempt, "wall_seconds": round(seconds, 1), "said": proc.stdout.strip().splitlines()[-1]})
            print(cli[-1], flush=True)
        out["ml100k_generate_cli"] = {"command": "python -m recbole_llmemb.pipeline.generate --method=scft --dataset=ml-100k", "runs": cli}

    os.makedirs(args.out, exist_ok=True)
    name = "extraction" + (f"-{os.path.basename(args.llm_path.rstrip('/'))}" if args.llm_path else "")
    with open(os.path.join(args.out, name + ".json"), "w") as f:
        json.dump(out, f, indent=2)
    with open(os.path.join(args.out, name + ".md"), "w") as f:
        f.write(markdown(out))
    print(markdown(out))


def markdown(o):
    lines = ["# Embedding generator throughput", "",
             f"Produced by `{o['command']}` on {o['machine']}, {o['date']}.", "",
             f"{o['items']} amazon-beauty item texts, {o['tokens']} real tokens ({o['mean_tokens_per_item']} per item), "
             f"{o['model']['name']} ({o['model']['layers']} layers, hidden {o['model']['hidden']}): "
             f"{o['model_gflops_over_real_tokens']} GFLOP of model work over the unpadded tokens.", "",
             f"Peak GEMM measured in the same run: float32 {o['gemm_peak_float32']['gflops']} GFLOP/s, "
             f"bfloat16 {o['gemm_peak_bfloat16']['gflops']} GFLOP/s.", "",
             "| dtype | batch | seconds | items/s | GFLOP/s | fraction of peak (same dtype) | min cosine to float32 |",
             "|---|---|---|---|---|---|---|"]
    for r in o["extraction"]:
        lines.append(f"| {r['dtype']} | {r['batch_size']} | {r['seconds']} | {r['items_per_second']} | {r['achieved_gflops']} | "
                     f"{r['fraction_of_peak']:.0%} | {r['min_cosine_to_float32']} |")
    s = o["scft"]
    lines += ["", f"SCFT: {s['steps_per_second']} steps/s ({s['batch_items']} items x 2 views per step, LoRA, {s['dtype']})."]
    if "ml100k_generate_cli" in o:
        runs = o["ml100k_generate_cli"]["runs"]
        lines += ["", f"`{o['ml100k_generate_cli']['command']}` (defaults: 150 SCFT steps): "
                  f"{runs[0]['wall_seconds']} s to build, {runs[1]['wall_seconds']} s again from the store "
                  f"(process start and dataset loading included)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
