#!/usr/bin/env bash
# The tiny-world demo, end to end and offline: builds the world (cached), then runs
# every pipeline stage. Extra arguments go to `profuser demo` (e.g. --quick, --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
# The quick demo needs no extra; the full one merges weights (MergeKit, the merge extra).
extras=merge
for arg in "$@"; do
  if [ "$arg" = --quick ]; then extras=""; fi
done
bash scripts/setup.sh "$extras"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/profuser demo "$@"
