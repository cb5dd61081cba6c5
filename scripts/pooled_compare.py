#!/usr/bin/env python
"""Paired differences between models of the same runs, pooled over seeds, with 95% intervals.

Each run directory is one training seed of one config; a pair (A, B) is compared item by
item within each run and the difference averaged over the runs (`profuser.report.stats.bootstrap`)::

    python scripts/pooled_compare.py runs/demo/seed-0 runs/demo/seed-1 runs/demo/seed-2 \\
        --pair variant-profuser:variant-csft --pair variant-profuser:variant-simulfuse

Without ``--task`` the difference is of the average over the runs' tasks; ``--task world_mc``
(repeatable) prints that task alone as well. A verdict says "held" only when the interval
excludes 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from profuser.report.stats import bootstrap, verdict
from profuser.stages.eval import load_eval_records


def _key(record: dict) -> str:
    return f"{record['kind']}-{record['name']}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+", help="run directories, one per seed")
    ap.add_argument(
        "--pair", action="append", required=True, help="A:B, e.g. variant-profuser:source-x"
    )
    ap.add_argument("--task", action="append", default=[], help="also this task alone")
    args = ap.parse_args(argv)
    by_run = [{_key(r): r for r in load_eval_records(run)} for run in args.runs]
    for pair in args.pair:
        a_key, _, b_key = pair.partition(":")
        missing = [
            str(run)
            for run, recs in zip(args.runs, by_run, strict=True)
            if a_key not in recs or b_key not in recs
        ]
        if missing:
            print(f"{pair}: not evaluated in {', '.join(missing)}", file=sys.stderr)
            return 1
        a = [recs[a_key] for recs in by_run]
        b = [recs[b_key] for recs in by_run]
        tasks = sorted({t for r in a for t in r["scores"] if t != "average"})
        for label, chosen in [("average", tasks), *((t, [t]) for t in args.task)]:
            iv = bootstrap([r["items"] for r in a], [r["items"] for r in b], tasks=chosen)
            if iv is None:
                print(f"{a_key} − {b_key} ({label}): no per-item scores")
                continue
            print(
                f"{a_key} − {b_key} ({label}, {len(a)} runs): {100 * iv.estimate:+.1f} "
                f"[{100 * iv.low:+.1f}, {100 * iv.high:+.1f}]: {verdict(iv)}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
