"""Stage `data`: load and normalise the instruction set into ``data/train.parquet``."""

from __future__ import annotations

import logging

from profuser.data import load_instructions
from profuser.io.shards import write_rows
from profuser.pipeline import StageContext, stage
from profuser.stages.contracts import DATA_ROWS

log = logging.getLogger("profuser")


@stage("data", reads=("dataset",), outputs=(DATA_ROWS,))
def run(ctx: StageContext) -> dict:
    rows, report = load_instructions(ctx.cfg.dataset)
    write_rows(ctx.path(DATA_ROWS), rows)
    if report.skipped:
        log.warning("data: skipped rows %s", dict(report.skipped))
    return {
        "rows_read": report.rows_read,
        "rows": report.kept,
        "rows_skipped": dict(report.skipped),
    }
