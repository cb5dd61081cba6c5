"""Stage `data`: load and normalise the instruction set into ``data/train.parquet``."""

from __future__ import annotations

import logging

import datasets

from profuser.data import load_instructions
from profuser.io import atomic_write_bytes
from profuser.pipeline import StageContext, stage

log = logging.getLogger("profuser")


@stage("data", reads=("dataset",))
def run(ctx: StageContext) -> dict:
    rows, report = load_instructions(ctx.cfg.dataset)
    tmp = ctx.dir / ".train.parquet.tmp"
    datasets.Dataset.from_list(rows).to_parquet(str(tmp))
    atomic_write_bytes(ctx.dir / "train.parquet", tmp.read_bytes())
    tmp.unlink()
    if report.skipped:
        log.warning("data: skipped rows %s", dict(report.skipped))
    return {
        "rows_read": report.rows_read,
        "rows": report.kept,
        "rows_skipped": dict(report.skipped),
    }
