"""Stage `select`: the fusion set, a budget of rows curated from the data stage's pool.

With ``select.rows`` unset the whole pool is the fusion set (the paper's setting) and nothing
is computed. Otherwise the ``select.rule`` (:mod:`profuser.curate.rules`) keeps ``rows`` of
them; a rule that reads the advantage gap first teacher-forces every model (the target and
each source, each in its own tokenizer and chat format) on every pool row's GT answer, CE only.
Each model's CE is written as soon as it is done (``select/probe/<model>.parquet``, with its
key), so an interrupted probe resumes with the next model, and another rule or budget on the
same pool takes the probes back from the earlier outputs (``.stale/select-*``) instead of
computing them again. The manifest counts what the selection cost.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil

import numpy as np

from profuser.curate.rules import PoolGaps, get_select_rule
from profuser.errors import UserError
from profuser.io import atomic_write_json, read_json
from profuser.io.shards import read_rows_file, write_rows
from profuser.models.loading import usable_vocab
from profuser.pipeline import StageContext, stage
from profuser.stages.common import open_source, target_source
from profuser.stages.contracts import DATA_ROWS, FUSION_ROWS, POOL_GAPS, PROBE_CE, STALE
from profuser.teacher.forcing import teacher_force, turn_items

log = logging.getLogger("profuser")


def _probe(ctx: StageContext, src, rows: list[dict]) -> list[dict]:
    """One model's CE per byte on every pool row's GT answer (NaN where it cannot score it)."""
    tok, model = open_source(src)
    gt = {r["id"]: r["response"] for r in rows}
    counts = {"truncated": 0, "too_long": 0}
    items, n_bytes = turn_items(tok, rows, gt, ctx.cfg.train.max_length, counts)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    got = {
        res.key: res.ce * res.n_tokens / max(n_bytes[res.key], 1)
        for res in teacher_force(
            model,
            items,
            pad_id=pad,
            valid_vocab=usable_vocab(model, tok),
            batch_tokens=ctx.cfg.advantage.batch_tokens,
            keep_distributions=False,
            progress=f"select: probe {src.name}",
        )
    }
    del model
    return [{"id": r["id"], "ce_per_byte": float(got.get(r["id"], np.nan))} for r in rows]


def probe_key(ctx: StageContext, src) -> str:
    """What one model's probe depends on: the model entry, the pool and the length limit (not
    the rule or the budget, so comparing rules on one pool probes it once)."""
    blob = json.dumps(
        [
            src.model_dump(mode="json"),
            ctx.manifest_of("data").get("fingerprint"),
            ctx.cfg.train.max_length,
        ],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _reuse_probe(ctx: StageContext, name: str, key: str) -> bool:
    """Copy back a probe of ``name`` under ``key`` from this stage's earlier outputs."""
    here = ctx.path(PROBE_CE, model=name)
    stale = ctx.path(STALE, stage="select", fingerprint="*").parent
    for old in sorted(stale.glob(f"select-*/probe/{name}.parquet")):
        if (read_json(old.with_suffix(".json")) or {}).get("key") == key:
            here.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(old, here)
            shutil.copy2(old.with_suffix(".json"), here.with_suffix(".json"))
            log.info("select: probe of %s reused from %s", name, old.parent.parent.name)
            return True
    return False


def pool_gaps(ctx: StageContext, rows: list[dict]) -> tuple[PoolGaps, list[str]]:
    """Every model's CE per byte on the pool (the target first), probing models not done yet."""
    tgt = target_source(ctx.cfg)
    models = [tgt, *(s for s in ctx.cfg.sources if s.name != tgt.name)]
    cols = []
    for src in models:
        path = ctx.path(PROBE_CE, model=src.name)
        key = probe_key(ctx, src)
        done = (read_json(path.with_suffix(".json")) or {}).get("key") == key and path.is_file()
        if not done and not _reuse_probe(ctx, src.name, key):
            write_rows(path, _probe(ctx, src, rows))
            atomic_write_json(path.with_suffix(".json"), {"key": key})
        by_id = {r["id"]: r["ce_per_byte"] for r in read_rows_file(path)}
        cols.append([by_id.get(r["id"], np.nan) for r in rows])
    return PoolGaps(np.asarray(cols, dtype=float).T), [m.name for m in models]


@stage(
    "select",
    reads=(
        "select",
        "sources",
        "target",
        "target_path",
        "advantage.batch_tokens",
        "train.max_length",
    ),
    upstream=("data",),
    inputs=(DATA_ROWS, STALE),
    outputs=(FUSION_ROWS, POOL_GAPS, PROBE_CE),
)
def run(ctx: StageContext) -> dict:
    opts = ctx.cfg.select
    ctx.upstream("data")
    pool = read_rows_file(ctx.path(DATA_ROWS))
    if opts.rows is None:
        if opts.rule != "random":
            log.warning(
                "select: rule %s has no budget (select.rows); the whole pool is used", opts.rule
            )
        write_rows(ctx.path(FUSION_ROWS), pool)
        return {"rule": "all", "pool": len(pool), "rows": len(pool), "teacher_forwards": 0}
    if opts.rows > len(pool):
        raise UserError(
            f"select.rows {opts.rows} exceeds the data stage's {len(pool)} rows; lower it, "
            "or leave it unset to fuse on the whole pool"
        )
    rule = get_select_rule(opts.rule)
    gaps, names = pool_gaps(ctx, pool) if rule.needs_gaps else (None, [])
    keep = rule.fn(len(pool), gaps, opts.rows, opts.seed)
    write_rows(ctx.path(FUSION_ROWS), [pool[i] for i in keep])
    summary: dict = {
        "rule": opts.rule,
        "pool": len(pool),
        "rows": len(keep),
        # the selection's cost: one GT teacher forward per model and pool row
        "teacher_forwards": len(pool) * len(names),
        "probed_models": names,
    }
    if gaps is not None:
        gap, leader = gaps.gap, gaps.leader
        kept = np.zeros(len(pool), dtype=bool)
        kept[keep] = True
        write_rows(
            ctx.path(POOL_GAPS),
            [
                {
                    "id": r["id"],
                    "gap": float(gap[i]),
                    "leader": names[leader[i]] if leader[i] >= 0 else "",
                    "kept": bool(kept[i]),
                    **{
                        f"ce_per_byte/{n}": float(gaps.ce_per_byte[i, k])
                        for k, n in enumerate(names)
                    },
                }
                for i, r in enumerate(pool)
            ],
        )
        summary["mean_gap"] = {"pool": _mean(gap), "kept": _mean(gap[keep])}
        summary["leader_share"] = {
            "pool": _shares(leader, names),
            "kept": _shares(leader[keep], names),
        }
    log.info("select: %s kept %d of %d pool rows", opts.rule, len(keep), len(pool))
    return summary


def _mean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return round(float(x.mean()), 4) if len(x) else float("nan")


def _shares(leader: np.ndarray, names: list[str]) -> dict[str, float]:
    n = max(len(leader), 1)
    return {name: round(float((leader == k).sum()) / n, 4) for k, name in enumerate(names)}
