#!/usr/bin/env bash
# Lint and the test suite. By default the representative CI subset (tests marked
# `slow` are left out); `scripts/test.sh --all` runs everything. Other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check profuser tests scripts
marker=()
if [ "${1:-}" = "--all" ]; then
  shift
  marker=(-m "")
fi
exec .venv/bin/python -m pytest -q "${marker[@]}" "$@"
