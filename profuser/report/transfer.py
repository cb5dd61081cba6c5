"""Per-skill transfer: how much of each source's lead the fused target took over.

Pure functions on eval records (``{kind, name, scores, per_skill?, items?}`` as
the eval stage writes them). A record's *key* is ``<kind>-<name>``
(``source-mpt-like``, ``variant-profuser``), its file name under ``eval/models``.

For each task and skill (a stratum of a group task, or ``all``):

* *source-led*: the best source other than the target beats the target by at
  least ``min_lead`` and the paired interval of (best source - target) lies above
  0; there a variant's *takeover* is (variant - target) / (best source - target);
* *target-led*: the target is at least as good as every source; there a
  variant's *retained* is variant / target;
* else *neither* (a small or uncertain lead).

Per variant: the median takeover and retained over those skills, and the share of
the gap between the target and the *oracle* (the best source on every skill)
that the variant closes.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from profuser.evaluate.harness import headline_metric
from profuser.evaluate.items import ALL
from profuser.report.stats import LEVEL, RESAMPLES, SEED, Interval, bootstrap, mean_score

MIN_LEAD = 0.10  # a source must lead the target by this much for a skill to be source-led
_TOL = 1e-9  # float slack when comparing scores with min_lead and with each other

SOURCE_LED, TARGET_LED, NEITHER = "source-led", "target-led", "neither"


def model_key(record: Mapping[str, Any]) -> str:
    """``<kind>-<name>``, the eval stage's file name for the record."""
    return f"{record['kind']}-{record['name']}"


def skills_of(records: Sequence[Mapping[str, Any]], task: str) -> list[str]:
    """The skills of ``task`` over all records: item strata, per-skill entries, else ``all``."""
    names: set[str] = set()
    for r in records:
        names |= set((r.get("items") or {}).get(task) or {})
        names |= set((r.get("per_skill") or {}).get(task) or {})
    return sorted(names) or [ALL]


def skill_score(record: Mapping[str, Any], task: str, skill: str) -> float | None:
    """A record's score on one skill: its items' mean, else the per-skill headline value,
    else (skill ``all``) the task score; None when the record has none."""
    items = record.get("items") or {}
    if skill in (items.get(task) or {}):
        return mean_score(items, task, skill)
    metrics = ((record.get("per_skill") or {}).get(task) or {}).get(skill)
    if metrics:
        value = metrics.get(headline_metric(task, metrics))
        return None if value is None else float(value)
    if skill == ALL and task in record.get("scores", {}):
        return float(record["scores"][task])
    return None


def _size(record: Mapping[str, Any], task: str, skill: str) -> int:
    return len(((record.get("items") or {}).get(task) or {}).get(skill) or {})


def _iv(interval: Interval | None) -> dict[str, float] | None:
    return interval.as_dict() if interval else None


def _paired(
    a: Mapping[str, Any], b: Mapping[str, Any] | None, task: str, skill: str, opts: dict
) -> Interval | None:
    return bootstrap(
        [a.get("items") or {}],
        None if b is None else [b.get("items") or {}],
        tasks=[task],
        stratum=skill,
        **opts,
    )


def _skill_entry(
    task: str,
    skill: str,
    target: Mapping[str, Any],
    others: Sequence[Mapping[str, Any]],
    variants: Sequence[Mapping[str, Any]],
    min_lead: float,
    opts: dict,
) -> dict[str, Any]:
    """One (task, skill) row: every model's score and interval, the leader and the transfer."""
    scores = {}
    for r in [target, *others, *variants]:
        iv = _paired(r, None, task, skill, opts)
        score = skill_score(r, task, skill)
        scores[model_key(r)] = {
            "score": score,
            "low": iv.low if iv else None,
            "high": iv.high if iv else None,
        }
    t = scores[model_key(target)]["score"]
    rated = [r for r in others if scores[model_key(r)]["score"] is not None]
    best = max(rated, key=lambda r: scores[model_key(r)]["score"], default=None)
    entry: dict[str, Any] = {
        "n": _size(target, task, skill),
        "scores": scores,
        "best_source": model_key(best) if best else None,
        "lead": None,
        "kind": NEITHER,
        "takeover": {},
        "retained": {},
        "vs_target": {},
    }
    if t is None or best is None:
        return entry
    b = scores[model_key(best)]["score"]
    lead_iv = _paired(best, target, task, skill, opts)
    entry["lead"] = _iv(lead_iv) or {"estimate": b - t, "low": None, "high": None}
    if b - t >= min_lead - _TOL and lead_iv is not None and lead_iv.low > 0:
        entry["kind"] = SOURCE_LED
    elif len(rated) == len(others) and b <= t + _TOL:
        entry["kind"] = TARGET_LED
    for v in variants:
        key, after = model_key(v), scores[model_key(v)]["score"]
        entry["vs_target"][key] = _iv(_paired(v, target, task, skill, opts))
        if after is None:
            continue
        if entry["kind"] == SOURCE_LED:
            entry["takeover"][key] = (after - t) / (b - t)
        elif entry["kind"] == TARGET_LED and t > 0:
            entry["retained"][key] = after / t
    return entry


def _weighted_average(rows: dict[str, dict[str, dict]], pick) -> float | None:  # noqa: ANN001
    """Mean over tasks of each task's skill scores weighted by item count (1 where unknown)."""
    means = []
    for skills in rows.values():
        num = den = 0.0
        for entry in skills.values():
            value = pick(entry)
            if value is None:
                return None
            weight = entry["n"] or 1
            num += weight * value
            den += weight
        means.append(num / den)
    return statistics.fmean(means) if means else None


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def transfer_table(
    records: Sequence[Mapping[str, Any]],
    target: str,
    *,
    min_lead: float = MIN_LEAD,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = SEED,
) -> dict[str, Any] | None:
    """The per-skill transfer section of a run (see the module docstring).

    Args:
        records: eval records of the sources and variants (merges are ignored).
        target: the target's source name (``cfg.target``); its record before fusion
            is the source of that name.

    Returns:
        None when the target was not evaluated as a source, else ``{"target", "min_lead",
        "level", "tasks": {task: {skill: entry}}, "variants": {key: summary}, "oracle"}``.
    """
    sources = [r for r in records if r["kind"] == "source"]
    tgt = next((r for r in sources if r["name"] == target), None)
    if tgt is None:
        return None
    others = [r for r in sources if r is not tgt]
    variants = [r for r in records if r["kind"] == "variant"]
    opts = {"resamples": resamples, "level": level, "seed": seed}
    tasks = sorted({t for r in [*sources, *variants] for t in r.get("scores", {})})
    rows = {
        task: {
            skill: _skill_entry(task, skill, tgt, others, variants, min_lead, opts)
            for skill in skills_of([*sources, *variants], task)
        }
        for task in tasks
    }

    def best_of_sources(entry: dict) -> float | None:
        vals = [entry["scores"][model_key(r)]["score"] for r in sources]
        return None if any(v is None for v in vals) else max(vals)

    def score_of(key: str):  # noqa: ANN202
        return lambda entry: entry["scores"][key]["score"]

    target_avg = _weighted_average(rows, score_of(model_key(tgt)))
    oracle_avg = _weighted_average(rows, best_of_sources)
    summary = {}
    for v in variants:
        key = model_key(v)
        takeovers = [
            e["takeover"][key] for s in rows.values() for e in s.values() if key in e["takeover"]
        ]
        retained = [
            e["retained"][key] for s in rows.values() for e in s.values() if key in e["retained"]
        ]
        avg = _weighted_average(rows, score_of(key))
        gap = None
        if None not in (avg, target_avg, oracle_avg) and oracle_avg - target_avg > _TOL:
            gap = (avg - target_avg) / (oracle_avg - target_avg)
        summary[key] = {
            "median_takeover": _median(takeovers),
            "source_led": len(takeovers),
            "median_retained": _median(retained),
            "target_led": len(retained),
            "average": avg,
            "oracle_gap_closed": gap,
        }
    return {
        "target": model_key(tgt),
        "min_lead": min_lead,
        "level": level,
        "tasks": rows,
        "variants": summary,
        "oracle": {"average": oracle_avg, "target_average": target_avg},
    }


__all__ = [
    "MIN_LEAD",
    "NEITHER",
    "SOURCE_LED",
    "TARGET_LED",
    "model_key",
    "skill_score",
    "skills_of",
    "transfer_table",
]
