"""Stage `pairs`: preference pairs from the sources' sampled answers (implicit fusion).

For every pairing rule a preference phase of the run names (`profuser.advantage.pairing`),
each row's candidates (every source's inference-mode answer and its ``advantage.sampling.n
- 1`` extra samples), scored by the strongest reward model, give at most one
(chosen, rejected) pair, written to ``pairs/<rule>.parquet``. "Strongest" is the reward
model the inference rule leans on (`profuser.stages.score.rule_column`: the one marked
``strongest``, or the reference scorer under the ``reference`` rule). The inference-mode answers'
scores come from the score stage; the extra samples are scored here, by that reward model
alone, in resumable shards. Rows without a valid pair are dropped and counted; the summary
counts pairs per chosen source and, where the rows carry a ``skill``, per skill. A run
without a preference phase computes nothing.
"""

from __future__ import annotations

import logging
import math
from collections import Counter

from profuser.advantage.pairing import Candidate, get_pairing_rule, needs_samples
from profuser.errors import UserError
from profuser.io.shards import read_rows, read_rows_file, run_shards, write_rows
from profuser.pipeline import StageContext, stage
from profuser.reward import load_reward_model
from profuser.stages.common import read_data
from profuser.stages.contracts import ANSWERS, FUSION_ROWS, PAIRS, SAMPLE_SCORES, SAMPLES, SCORES
from profuser.stages.score import rule_column, score_answers
from profuser.train.schedules import preference_phase, resolve_schedule

log = logging.getLogger("profuser")


def pairing_rules(cfg) -> list[str]:
    """The pairing rules of the preference phases of the main schedule and every variant."""
    rules: list[str] = []
    for spec in [cfg.schedule, *cfg.variants]:
        phase = preference_phase(resolve_schedule(spec))
        if phase is not None and phase.preference.pairing not in rules:
            rules.append(phase.preference.pairing)
    return rules


def _sample_scores(ctx: StageContext, rows: list[dict], names: list[str]) -> bool:
    """Score every extra sample with the strongest reward model; True when all are scored."""
    cfg = ctx.cfg
    rm_cfg = cfg.reward_models[rule_column(cfg)]
    rm = None
    done = True
    for name in names:
        for k in range(1, cfg.advantage.sampling.n):
            answers = {a["id"]: a for a in read_rows(ctx.path(SAMPLES, source=name, k=str(k)))}

            def work(chunk, answers=answers) -> list[dict]:
                nonlocal rm
                rm = rm or load_reward_model(rm_cfg)
                scores = score_answers(rm, [(r, answers[r["id"]]) for r in chunk])
                return [{"id": r["id"], "score": v} for r, v in zip(chunk, scores, strict=True)]

            done &= run_shards(
                ctx.path(SAMPLE_SCORES, source=name, k=str(k)),
                rows,
                cfg.advantage.shard_size,
                work,
                ctx.shard,
            )
    return done


def _candidates(ctx: StageContext, rows: list[dict], names: list[str]) -> dict[str, list]:
    """Each row's candidates: every source's every answer with the strongest RM's score."""
    cfg = ctx.cfg
    column = cfg.reward_models[rule_column(cfg)].name
    first = {(s["id"], s["source"]): s[column] for s in read_rows_file(ctx.path(SCORES))}
    out: dict[str, list[Candidate]] = {r["id"]: [] for r in rows}
    for name in names:
        for k in range(cfg.advantage.sampling.n):
            if k == 0:
                answers = read_rows(ctx.path(ANSWERS, source=name))
                scores = {a["id"]: first.get((a["id"], name), math.nan) for a in answers}
            else:
                answers = read_rows(ctx.path(SAMPLES, source=name, k=str(k)))
                scored = read_rows(ctx.path(SAMPLE_SCORES, source=name, k=str(k)))
                scores = {s["id"]: s["score"] for s in scored}
            for a in answers:
                if a["id"] in out:
                    score = scores.get(a["id"], math.nan)
                    score = math.nan if score is None else float(score)
                    out[a["id"]].append(Candidate(name, k, a["answer"], score))
    return out


@stage(
    "pairs",
    reads=(
        "schedule",
        "variants",
        "sources",
        "reward_models",
        "advantage.inference_rule",
        "advantage.sampling.n",
        "advantage.pair_margin",
        "advantage.shard_size",
    ),
    upstream=("select", "generate", "score"),
    inputs=(FUSION_ROWS, ANSWERS, SAMPLES, SCORES),
    outputs=(PAIRS, SAMPLE_SCORES),
    # the schedules matter only through their pairing rules: adding a variant without a
    # preference phase keeps the pairs (and the preference variants trained on them)
    keyed=("schedule", "variants"),
    key_of=lambda cfg: sorted(pairing_rules(cfg)),
)
def run(ctx: StageContext) -> dict:
    cfg = ctx.cfg
    rules = pairing_rules(cfg)
    if not rules:
        return {"rules": []}
    if not cfg.reward_models:
        raise UserError("a preference phase pairs answers by reward; add reward_models")
    for rule in rules:
        if cfg.advantage.sampling.n < needs_samples(rule):
            raise UserError(
                f"pairing rule {rule} needs advantage.sampling.n >= {needs_samples(rule)} "
                f"(got {cfg.advantage.sampling.n}); raise it"
            )
    ctx.upstream("score")
    rows = read_data(ctx)
    names = [s.name for s in cfg.sources]
    if not _sample_scores(ctx, rows, names):
        return {"partial": True}
    cands = _candidates(ctx, rows, names)
    summary: dict = {"rules": rules, "rows": len(rows)}
    for rule in rules:
        fn = get_pairing_rule(rule)
        out, by_source, by_skill = [], Counter(), Counter()
        for r in rows:
            pair = fn(cands[r["id"]], cfg.advantage.pair_margin)
            if pair is None:
                continue
            skill = r.get("skill")
            out.append(
                {
                    "id": r["id"],
                    "system": r["system"],
                    "instruction": r["instruction"],
                    "chosen": pair.chosen.answer,
                    "rejected": pair.rejected.answer,
                    "chosen_source": pair.chosen.source,
                    "rejected_source": pair.rejected.source,
                    "chosen_score": pair.chosen.score,
                    "rejected_score": pair.rejected.score,
                    "skill": skill or "",
                }
            )
            by_source[pair.chosen.source] += 1
            if skill:
                by_skill[skill] += 1
        if not out:
            raise UserError(
                f"pairs: rule {rule} found no valid pair in {len(rows)} rows; lower "
                "advantage.pair_margin or raise advantage.sampling.n"
            )
        write_rows(ctx.path(PAIRS, rule=rule), out)
        summary[rule] = {
            "pairs": len(out),
            "dropped": len(rows) - len(out),
            "by_chosen_source": dict(sorted(by_source.items())),
            "by_skill": dict(sorted(by_skill.items())),
        }
        log.info("pairs: %s kept %d of %d rows", rule, len(out), len(rows))
    return summary
