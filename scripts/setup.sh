#!/usr/bin/env bash
# Create .venv and install profuser (its base dependencies run the demo) with the extras
# the tests use (test, merge, tensorboard), or with the extras given as the first argument
# (scripts/demo.sh passes "" for the quick demo and "merge" for the full one).
# On a machine without a GPU, the pinned CPU build of PyTorch is installed first
# (an unpinned torch would pull gigabytes of CUDA wheels); with a GPU, your own
# torch is kept, or the default build is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# --no-compile: byte-compiling every installed module (torch's thousands above all) took
# half of the install's time here; Python compiles what it imports on first use instead.
# pip warns about every package the local index mirrors lack; those lines go.
pip() {
  .venv/bin/python -m pip install -q --no-compile "$@" 2> >(grep -v -i "^warning: location" >&2)
}
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    pip torch
  else
    pip torch==2.13.0
  fi
fi
extras=${1-test,merge,tensorboard}
# profuser and its dependencies go in through uv where it can be had from the package index:
# it resolved and installed them in 10 s here against pip's 68 s. torch is already in place
# and satisfies the loose requirement, so uv keeps it. Without uv, pip does the same work.
project=".${extras:+[$extras]}"
if ! { pip uv >/dev/null 2>&1 &&
  .venv/bin/python -m uv pip install -q --python .venv/bin/python -e "$project"; }; then
  pip -e "$project"
fi
.venv/bin/python -c "import profuser, torch, transformers" 
