"""95% intervals for the report: each model's average and the paired differences the
paper's claims are about (ProFuser vs its target, vs the best single source, vs
each baseline, and the Table 1 order ProFuser ≥ SimulFuse ≥ ReverseFuse ≥ Fuse ≥ CSFT).

Records are the eval stage's (see `profuser.stages.eval.load_eval_records`);
one without per-item scores gets no interval (None), never an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from profuser.report.stats import LEVEL, RESAMPLES, SEED, Interval, bootstrap, verdict
from profuser.report.transfer import model_key

# The paper's Table 1 order, best first: each should beat the next.
ORDER = ("profuser", "simulfuse", "reversefuse", "fuse", "csft")
# Baselines ProFuser is compared with (Table 1 and the Table 2 curricula).
BASELINES = ("csft", "fuse", "simulfuse", "reversefuse", "gtlen_fuse", "rmscore_fuse")


def _average(record: Mapping[str, Any]) -> float | None:
    vals = [v for k, v in record["scores"].items() if k != "average" and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else None


def best_source(records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The source with the highest average (the first of equals); None without sources."""
    rated = [r for r in records if r["kind"] == "source" and _average(r) is not None]
    return max(rated, key=_average, default=None)


def claim_pairs(records: Sequence[Mapping[str, Any]], target: str) -> list[tuple[str, str]]:
    """(claimed better, other) model keys of every claim the records can measure."""
    keys = {model_key(r) for r in records}
    pf = "variant-profuser"
    pairs = [(pf, f"source-{target}")]
    best = best_source(records)
    if best is not None:
        pairs.append((pf, model_key(best)))
    pairs += [(pf, f"variant-{b}") for b in BASELINES]
    pairs += [(f"variant-{a}", f"variant-{b}") for a, b in zip(ORDER[1:], ORDER[2:], strict=False)]
    return [p for p in dict.fromkeys(pairs) if p[0] in keys and p[1] in keys and p[0] != p[1]]


def _tasks(*records: Mapping[str, Any]) -> list[str]:
    return sorted({t for r in records for t in r["scores"] if t != "average"})


def average_intervals(
    records: Sequence[Mapping[str, Any]], **opts: Any
) -> dict[str, Interval | None]:
    """Model key -> interval of its average over its tasks (None without items for all)."""
    return {
        model_key(r): bootstrap([r.get("items") or {}], tasks=_tasks(r), **opts) for r in records
    }


def difference_intervals(
    records: Sequence[Mapping[str, Any]], pairs: Sequence[tuple[str, str]], **opts: Any
) -> dict[tuple[str, str], Interval | None]:
    """(a, b) -> paired interval of average(a) - average(b) over both's tasks."""
    by_key = {model_key(r): r for r in records}
    out = {}
    for a, b in pairs:
        ra, rb = by_key[a], by_key[b]
        out[(a, b)] = bootstrap(
            [ra.get("items") or {}], [rb.get("items") or {}], tasks=_tasks(ra, rb), **opts
        )
    return out


def intervals_section(
    records: Sequence[Mapping[str, Any]],
    target: str,
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = SEED,
) -> tuple[dict[str, Any], dict[tuple[str, str], Interval | None]]:
    """results.json's ``intervals`` and the claims' paired intervals.

    ``intervals`` is ``{"level", "resamples", "models": {key: interval or None},
    "differences": [{"a", "b", "estimate", "low", "high", "level", "verdict"}]}``.
    """
    opts = {"resamples": resamples, "level": level, "seed": seed}
    diffs = difference_intervals(records, claim_pairs(records, target), **opts)
    section = {
        "level": level,
        "resamples": resamples,
        "models": {
            k: iv.as_dict() if iv else None for k, iv in average_intervals(records, **opts).items()
        },
        "differences": [
            {"a": a, "b": b, **(iv.as_dict() if iv else {}), "verdict": verdict(iv)}
            for (a, b), iv in diffs.items()
        ],
    }
    return section, diffs


__all__ = [
    "BASELINES",
    "ORDER",
    "average_intervals",
    "best_source",
    "claim_pairs",
    "difference_intervals",
    "intervals_section",
]
