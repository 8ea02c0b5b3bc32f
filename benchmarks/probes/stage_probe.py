"""What the stage probes share: their command line, the run's config on Beauty's benchmark file, and
appending a record to a JSON list."""
import json
import os

import torch

from recbole_llmemb.pipeline.config import Config, parse_args

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def add_arguments(parser, record_name):
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--data_path", default=os.path.join(ROOT, "..", "shared", "datasets"))
    parser.add_argument("--set", default="", help="settings as key=value,key=value")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "probes", record_name))


def config_for(model, args):
    """``model``'s config over benchmarks/beauty.yaml with ``--set``'s settings, torch on ``--threads``."""
    torch.set_num_threads(args.threads)
    extra = parse_args([f"--{kv}" for kv in args.set.split(",") if kv])
    return Config(model, args.dataset, [os.path.join(ROOT, "benchmarks", "beauty.yaml")],
                  {"data_path": os.path.abspath(args.data_path), **extra})


def append_record(path, record):
    """Print ``record`` and add it to the list in ``path``."""
    print(json.dumps(record, indent=1))
    runs = []
    if os.path.isfile(path):
        with open(path) as f:
            runs = json.load(f)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(runs + [record], f, indent=1)
