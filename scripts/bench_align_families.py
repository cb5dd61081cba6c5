#!/usr/bin/env python
"""Batched alignment time per pair of the real tokenizer families' test fixtures.

For each ordered pair, 64 windows of about 2048 target tokens from the fixtures' corpus are
aligned as the align stage does it: each side encoded in one batch call
(`TokenAligner.encode`), then `TokenAligner.align_batch`. Prints wall milliseconds per pair
(the median over ``--repeats`` batches, after one warm-up batch from which the aligner learns
which sides need offsets) and the two encode calls' share. Run from the repository root::

    .venv/bin/python scripts/bench_align_families.py --repeats 15
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from profuser.align import TokenAligner  # noqa: E402
from profuser.bench.align import text_windows  # noqa: E402
from tests.align.families import corpus, family_tokenizer  # noqa: E402

PAIRS = [
    ("llama3", "llama2"),
    ("gemma", "llama3"),
    ("bert", "llama2"),
    ("llama2", "bert"),
    ("qwen2", "t5"),
    ("t5", "qwen2"),
    ("neox", "gemma"),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args(argv)
    # The tokenizers' batch calls encode on every core unless TOKENIZERS_PARALLELISM is false
    # (the demo sets it so); say which, since it moves the figures.
    print(f"TOKENIZERS_PARALLELISM={os.environ.get('TOKENIZERS_PARALLELISM', '(unset: true)')}")
    text = "\n\n".join(corpus(3000, seed=5))
    toks = {f: family_tokenizer(f) for f in {f for pair in PAIRS for f in pair}}
    for s, t in PAIRS:
        aligner = TokenAligner(toks[s], toks[t], cache=False)
        batch = text_windows(toks[t], text, 2048, args.batch)
        aligner.align_batch(batch)
        walls, encodes = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            src = aligner.encode(batch, "source")
            tgt = aligner.encode(batch, "target")
            t1 = time.perf_counter()
            aligner.align_batch(batch, src, tgt)
            t2 = time.perf_counter()
            walls.append((t2 - t0) * 1000 / len(batch))
            encodes.append((t1 - t0) * 1000 / len(batch))
        print(
            f"{s}->{t}: {statistics.median(walls):.2f} ms per pair "
            f"(tokenizers {statistics.median(encodes):.2f}, fastest batch {min(walls):.2f})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
