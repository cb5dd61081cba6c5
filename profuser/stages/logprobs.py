"""Stage `logprobs`: reference log-probabilities of the preference pairs, computed once.

For each pairing rule's pairs (``pairs/<rule>.parquet``): the target's starting model's
sequence log-probability of the chosen and the rejected response (standard DPO's reference
where the preference phase comes first; after fusion phases the train stage takes it from
the model those phases made, `profuser.stages.train`),
and, where a preference phase uses the fused reference, every source's, each in its own
tokenizer and chat template (`profuser.train.preference_data.response_logprobs`). Training
then holds no second model. Each model's values are kept as they finish
(``logprobs/parts/<rule>/<model>.parquet``), so an interrupted stage resumes; they are joined
into ``logprobs/<rule>.parquet``: ``id``, ``target/chosen``, ``target/rejected`` and
``<source>/chosen``, ``<source>/rejected``.
"""

from __future__ import annotations

import logging

from profuser.io.shards import read_rows_file, write_rows
from profuser.pipeline import StageContext, stage
from profuser.stages.common import open_source, target_source
from profuser.stages.contracts import LOGPROB_PARTS, PAIR_LOGPROBS, PAIRS
from profuser.stages.pairs import pairing_rules
from profuser.train.preference_data import response_logprobs
from profuser.train.schedules import preference_phase, resolve_schedule

log = logging.getLogger("profuser")


def needs_sources(cfg) -> bool:
    """Whether a preference phase of the run uses the sources' fused reference."""
    for spec in [cfg.schedule, *cfg.variants]:
        phase = preference_phase(resolve_schedule(spec))
        if phase is not None and phase.preference.reference == "fused":
            return True
    return False


@stage(
    "logprobs",
    reads=(
        "schedule",
        "variants",
        "sources",
        "target",
        "target_path",
        "train.max_length",
        "advantage.batch_tokens",
    ),
    upstream=("pairs",),
    inputs=(PAIRS,),
    outputs=(LOGPROB_PARTS, PAIR_LOGPROBS),
    keyed=("schedule", "variants"),  # through the pairing rules and the references only
    key_of=lambda cfg: [sorted(pairing_rules(cfg)), needs_sources(cfg)],
)
def run(ctx: StageContext) -> dict:
    cfg = ctx.cfg
    rules = pairing_rules(cfg)
    if not rules:
        return {"rules": []}
    ctx.upstream("pairs")
    models = [("target", target_source(cfg))]
    if needs_sources(cfg):
        models += [(s.name, s) for s in cfg.sources]
    pairs = {rule: read_rows_file(ctx.path(PAIRS, rule=rule)) for rule in rules}
    forwards = 0
    for name, src in models:
        todo = [r for r in rules if not ctx.path(LOGPROB_PARTS, rule=r, model=name).is_file()]
        if not todo:
            continue
        tok, model = open_source(src)
        for rule in todo:
            rows = pairs[rule]
            items = [
                (p["system"], p["instruction"], p[side])
                for p in rows
                for side in ("chosen", "rejected")
            ]
            vals = response_logprobs(
                model,
                tok,
                items,
                cfg.train.max_length,
                cfg.advantage.batch_tokens,
                cut_is_nan=name != "target",
            )
            forwards += len(items)
            write_rows(
                ctx.path(LOGPROB_PARTS, rule=rule, model=name),
                [
                    {"id": p["id"], "chosen": vals[2 * i], "rejected": vals[2 * i + 1]}
                    for i, p in enumerate(rows)
                ],
            )
        del model
    summary: dict = {"rules": rules, "models": [n for n, _ in models], "forwards": forwards}
    for rule in rules:
        joined = {p["id"]: {"id": p["id"]} for p in pairs[rule]}
        for name, _ in models:
            for r in read_rows_file(ctx.path(LOGPROB_PARTS, rule=rule, model=name)):
                joined[r["id"]][f"{name}/chosen"] = r["chosen"]
                joined[r["id"]][f"{name}/rejected"] = r["rejected"]
        write_rows(ctx.path(PAIR_LOGPROBS, rule=rule), list(joined.values()))
        summary[rule] = {"pairs": len(joined)}
    return summary
