#!/usr/bin/env bash
# Make .venv and install recbole-llmemb with its tests' needs. Idempotent; offline after the first run.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
PIP=".venv/bin/python -m pip"
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    $PIP install -q torch
  else
    # a CPU build (a plain 'torch' pulls several GB of CUDA libraries)
    $PIP install -q torch==2.13.0
  fi
fi
$PIP install -q -e ".[plots,test]"
