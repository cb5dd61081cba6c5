"""Stage `score`: inference-mode advantage. Every reward model scores every answer; a rule picks one.

All scores are kept (``score/scores.parquet``, one row per example and source,
one column per reward model); ``score/chosen.parquet`` holds the chosen answer
and the source that generated it, or an empty winner where no answer was valid
(that example then trains in training mode only). Empty answers are not scored
(NaN), and a reward model's failure on a row is a NaN for that row alone; both
are counted in the summary.
"""

from __future__ import annotations

import logging

import numpy as np

from profuser.advantage.selection import get_inference_rule, win_share
from profuser.errors import UserError
from profuser.io.shards import read_rows, run_shards, write_rows
from profuser.pipeline import StageContext, stage
from profuser.reward import load_reward_model
from profuser.stages.common import read_data
from profuser.stages.contracts import ANSWERS, CHOSEN, FUSION_ROWS, RM_SCORES, SCORES

log = logging.getLogger("profuser")


def rule_column(cfg) -> int:
    """Which reward model the inference rule leans on: the reference scorer for the
    `reference` rule, else the strongest RM (the first if none is marked)."""
    rms = cfg.reward_models
    if cfg.advantage.inference_rule == "reference":
        for i, r in enumerate(rms):
            if r.kind == "reference":
                return i
        raise UserError("advantage.inference_rule=reference needs a reward model of kind reference")
    return next((i for i, r in enumerate(rms) if r.strongest), 0)


def score_answers(rm, items: list[tuple[dict, dict]]) -> list[float]:
    """``rm``'s score of each (data row, answer row) pair, NaN for an empty answer (never
    scored); the non-empty ones go to the reward model in one call."""
    keep = [(r, a) for r, a in items if not a["empty"]]
    vals = (
        rm.score(
            [(r["system"] or None, r["instruction"]) for r, _ in keep],
            [a["answer"] for _, a in keep],
            [r for r, _ in keep],
        )
        if keep
        else []
    )
    scored = iter([float(v) for v in vals])
    return [float("nan") if a["empty"] else next(scored) for _, a in items]


@stage(
    "score",
    reads=(
        "reward_models",
        "advantage.inference_rule",
        "advantage.shard_size",
        "sources",
        "target",
    ),
    upstream=("select", "generate"),
    inputs=(FUSION_ROWS, ANSWERS),
    outputs=(RM_SCORES, SCORES, CHOSEN),
)
def run(ctx: StageContext) -> dict:
    cfg = ctx.cfg
    if not cfg.reward_models:
        log.info("score: no reward models configured; inference mode is off")
        return {"reward_models": 0}
    ctx.upstream("generate")
    rows = read_data(ctx)
    names = [s.name for s in cfg.sources]
    answers = {n: {g["id"]: g for g in read_rows(ctx.path(ANSWERS, source=n))} for n in names}
    jobs = [(r, n) for r in rows for n in names]  # one (example, source) pair per job
    done, failures = True, {}
    for rm_cfg in cfg.reward_models:
        rm = load_reward_model(rm_cfg)

        def work(chunk, rm=rm) -> list[dict]:
            scores = score_answers(rm, [(r, answers[n][r["id"]]) for r, n in chunk])
            return [
                {"id": r["id"], "source": n, "score": v}
                for (r, n), v in zip(chunk, scores, strict=True)
            ]

        done &= run_shards(
            ctx.path(RM_SCORES, reward_model=rm_cfg.name),
            jobs,
            cfg.advantage.shard_size * len(names),
            work,
            ctx.shard,
        )
        failures[rm_cfg.name] = int(getattr(rm, "failures", 0))
        del rm
    if not done:
        return {"partial": True}
    N, K, R = len(rows), len(names), len(cfg.reward_models)
    scores = np.full((N, K, R), np.nan)
    pos = {r["id"]: i for i, r in enumerate(rows)}
    for j, rm_cfg in enumerate(cfg.reward_models):
        for s in read_rows(ctx.path(RM_SCORES, reward_model=rm_cfg.name)):
            scores[pos[s["id"]], names.index(s["source"]), j] = s["score"]
    column = rule_column(cfg)
    sel = get_inference_rule(cfg.advantage.inference_rule)(scores, column)
    long_rows = [
        {
            "id": r["id"],
            "source": n,
            **{rm.name: float(scores[i, k, j]) for j, rm in enumerate(cfg.reward_models)},
        }
        for i, r in enumerate(rows)
        for k, n in enumerate(names)
    ]
    write_rows(ctx.path(SCORES), long_rows)
    t = names.index(cfg.target) if cfg.target in names else None
    chosen = []
    for i, r in enumerate(rows):
        w = int(sel.winner[i])
        chosen.append(
            {
                "id": r["id"],
                "winner": names[w] if w >= 0 else "",
                "answer": answers[names[w]][r["id"]]["answer"] if w >= 0 else "",
                "target_score": float(scores[i, t, column]) if t is not None else float("nan"),
            }
        )
    write_rows(ctx.path(CHOSEN), chosen)
    share = win_share(sel.winner, K)
    no_valid = int((sel.winner < 0).sum())
    if no_valid:
        log.warning(
            "score: %d examples have no valid answer; they train in training mode only", no_valid
        )
    return {
        "rule": cfg.advantage.inference_rule,
        "win_share": {n: round(float(s), 4) for n, s in zip(names, share, strict=True)},
        "no_valid_answer": no_valid,
        "unscored": int(np.isnan(scores).sum()),
        "rm_failures": failures,
    }
