#!/usr/bin/env bash
# Create .venv and install profuser (its base dependencies run the demo) with the extras
# the tests use (test, merge, tensorboard).
# On a machine without a GPU, the pinned CPU build of PyTorch is installed first
# (an unpinned torch would pull gigabytes of CUDA wheels); with a GPU, your own
# torch is kept, or the default build is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    .venv/bin/pip install -q torch
  else
    .venv/bin/pip install -q torch==2.13.0
  fi
fi
.venv/bin/pip install -q -e '.[test,merge,tensorboard]' 2>&1 | grep -v -i "^warning: location" || true
.venv/bin/python -c "import profuser, torch, transformers" 
