"""The demo's transfer summary over seeds: mean ± std of each run's ``transfer`` section, and
intervals pooled over seeds (the same eval items in every seed's run, resampled once).

Every ``[mean, std]`` pair is over the seeds that measured the value (std 0 for one seed).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from profuser.report.stats import LEVEL, RESAMPLES, SEED, bootstrap, verdict
from profuser.report.transfer import SOURCE_LED, TARGET_LED, model_key

SUMMARY_KEYS = ("median_takeover", "median_retained", "oracle_gap_closed", "average")


def mean_std(values: Sequence[float | None]) -> list[float]:
    """``[mean, std]`` of the values that are numbers; ``[nan, nan]`` when none is."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return [math.nan, math.nan]
    return [statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0]


def _collect(dicts: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for d in dicts:
        for k, v in d.items():
            out.setdefault(k, []).append(v)
    return out


def aggregate_transfer(transfers: Sequence[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """Mean ± std over seeds of the per-skill scores, takeover and retained, the per-variant
    summaries, the oracle and the selection accuracy; None when no run has a transfer table."""
    runs = [t for t in transfers if t and t.get("tasks")]
    if not runs:
        return None
    tasks: dict[str, dict[str, Any]] = {}
    for task in dict.fromkeys(t for r in runs for t in r["tasks"]):
        tasks[task] = {}
        for skill in dict.fromkeys(s for r in runs for s in r["tasks"].get(task, {})):
            entries = [r["tasks"][task][skill] for r in runs if skill in r["tasks"].get(task, {})]
            scores = _collect([{k: c["score"] for k, c in e["scores"].items()} for e in entries])
            tasks[task][skill] = {
                "scores": {k: mean_std(v) for k, v in scores.items()},
                "kinds": sorted({e["kind"] for e in entries}),
                "takeover": {
                    k: mean_std(v) for k, v in _collect([e["takeover"] for e in entries]).items()
                },
                "retained": {
                    k: mean_std(v) for k, v in _collect([e["retained"] for e in entries]).items()
                },
            }
    variants = {}
    for key in dict.fromkeys(k for r in runs for k in r["variants"]):
        rows = [r["variants"][key] for r in runs if key in r["variants"]]
        variants[key] = {s: mean_std([row[s] for row in rows]) for s in SUMMARY_KEYS}
    out: dict[str, Any] = {
        "seeds": len(runs),
        "target": runs[0]["target"],
        "tasks": tasks,
        "variants": variants,
        "oracle": {k: mean_std([r["oracle"][k] for r in runs]) for k in runs[0]["oracle"]},
    }
    accuracies = [r["selection_accuracy"]["skills"] for r in runs if r.get("selection_accuracy")]
    if accuracies:
        out["selection_accuracy"] = {
            skill: {
                k: mean_std([a[skill][k] for a in accuracies if skill in a])
                for k in accuracies[0].get(skill, {})
                if k != "rows"
            }
            for skill in dict.fromkeys(s for a in accuracies for s in a)
        }
    return out


def pooled_intervals(
    records_by_seed: Sequence[Sequence[Mapping[str, Any]]],
    target: str,
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = SEED,
) -> dict[str, Any]:
    """Intervals over seeds of ProFuser − target and ProFuser − best single source (average).

    ``records_by_seed``: each seed's eval records (`profuser.stages.eval.load_eval_records`).
    The best single source is the one with the highest mean average over seeds. A pair
    missing from some seed, or without per-item scores, gets None.
    """
    by_key = [{model_key(r): r for r in recs} for recs in records_by_seed]
    common = set.intersection(*(set(k) for k in by_key)) if by_key else set()
    order = [model_key(r) for r in (records_by_seed[0] if by_key else [])]
    averages = {
        k: statistics.fmean(_avg(s[k]) for s in by_key)
        for k in order
        if k in common and k.startswith("source-") and all(_avg(s[k]) is not None for s in by_key)
    }
    best = max(averages, key=lambda k: averages[k], default=None)
    out: dict[str, Any] = {"seeds": len(by_key), "level": level, "resamples": resamples}
    pairs = {
        "profuser_vs_target": f"source-{target}",
        "profuser_vs_best_source": best,
    }
    for label, other in pairs.items():
        a_key = "variant-profuser"
        if other is None or a_key not in common or other not in common:
            out[label] = None
            continue
        a = [s[a_key] for s in by_key]
        b = [s[other] for s in by_key]
        out[label] = {"a": a_key, "b": other, **_paired(a, b, resamples, level, seed)}
    return out


def _paired(
    a: list[Mapping[str, Any]],
    b: list[Mapping[str, Any]],
    resamples: int,
    level: float,
    seed: int,
) -> dict[str, Any]:
    """Eval records ``a[i]`` − ``b[i]`` (average over their tasks), paired item by item within
    each i and pooled over i: the bootstrap interval's fields and its verdict."""
    tasks = sorted({t for r in [*a, *b] for t in r["scores"] if t != "average"})
    iv = bootstrap(
        [r.get("items") or {} for r in a],
        [r.get("items") or {} for r in b],
        tasks=tasks,
        resamples=resamples,
        level=level,
        seed=seed,
    )
    return {**(iv.as_dict() if iv else {}), "verdict": verdict(iv)}


def study_intervals(
    study: Mapping[int, Mapping[str, Any]],
    main: Mapping[int, Mapping[str, Any]],
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = SEED,
) -> dict[str, Any] | None:
    """A study's ProFuser − the main runs' ProFuser (average), paired item by item within
    each seed that both ran and pooled over those seeds; None without a common seed.

    ``study``, ``main``: the ProFuser eval record of each seed's run.
    """
    seeds = sorted(set(study) & set(main))
    if not seeds:
        return None
    a, b = [study[s] for s in seeds], [main[s] for s in seeds]
    # The two means over the paired seeds only: the main runs' mean over every seed is not
    # what a study run on fewer seeds is compared with.
    means = {"study": _mean_avg(a), "main": _mean_avg(b)}
    return {"seeds": seeds, "level": level, "means": means, **_paired(a, b, resamples, level, seed)}


def study_average(study: Mapping[str, Any], name: str = "profuser") -> tuple[float, float]:
    """A variant's ``(mean, std)`` average in one label of `profuser.demo.runs.aggregate`'s
    result (NaN where the label has no such variant)."""
    for m in study.get("models", []):
        if m["kind"] == "variant" and m["name"] == name:
            return tuple(m["scores"].get("average", (math.nan, math.nan)))
    return (math.nan, math.nan)


def profuser_transfer(result: Mapping[str, Any], key: str) -> float | None:
    """ProFuser's ``key`` (``median_takeover``, ``median_retained``...) in one run's
    ``results.json`` transfer table; None where it is missing or NaN."""
    row = ((result.get("transfer") or {}).get("variants") or {}).get("variant-profuser") or {}
    v = row.get(key)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def ms_text(ms: Sequence[float | None] | None, scale: float, digits: int) -> str:
    """``78.8 ± 0.8`` for a ``[mean, std]`` times ``scale`` (``–`` where there is none)."""
    if not ms or ms[0] is None or math.isnan(ms[0]):
        return "–"
    return f"{scale * ms[0]:,.{digits}f} ± {scale * ms[1]:,.{digits}f}"


def interval_text(d: Mapping[str, Any] | None) -> str:
    """``+1.23 [+0.45, +2.01]: held`` (points) for a :func:`study_intervals` result."""
    if not d:
        return "not measured"
    if "estimate" not in d:
        return "no interval (no per-item scores)"
    return (
        f"{100 * d['estimate']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]: "
        f"{d['verdict']}"
    )


def _mean_avg(records: Sequence[Mapping[str, Any]]) -> float | None:
    """The mean over ``records`` of each one's average score (None if one has none)."""
    avgs = [_avg(r) for r in records]
    return None if None in avgs else statistics.fmean(avgs)


def _avg(record: Mapping[str, Any]) -> float | None:
    vals = [v for k, v in record["scores"].items() if k != "average" and not math.isnan(v)]
    return statistics.fmean(vals) if vals else None


def _ms(ms: Sequence[float] | None, signed: bool = False) -> str:
    if not ms or math.isnan(ms[0]):
        return "–"
    return f"{100 * ms[0]:{'+' if signed else ''}.1f} ± {100 * ms[1]:.1f}"


def _row_order(target: str, keys: Sequence[str]) -> list[str]:
    """Target first, then the other sources, then the variants (results.json sorts keys)."""
    unique = list(dict.fromkeys(keys))
    rank = {"source": 1, "variant": 2}
    return sorted(unique, key=lambda k: (k != target, rank.get(k.partition("-")[0], 3)))


def transfer_summary_markdown(
    transfer: Mapping[str, Any] | None, pooled: Mapping | None
) -> list[str]:
    """summary.md's transfer section: per-task tables, per-variant summary, pooled intervals."""
    lines: list[str] = []
    if transfer:
        target = transfer["target"]
        lines += [f"## Per-skill transfer (mean ± std over {transfer['seeds']} seed(s), %)", ""]
        for task, skills in transfer["tasks"].items():
            names = list(skills)
            keys = _row_order(target, [k for s in skills.values() for k in s["scores"]])
            lines += [f"### {task}", "", "| model | " + " | ".join(names) + " |"]
            lines.append("|---|" + "---|" * len(names))
            for key in keys:
                label = (
                    f"target: {key.partition('-')[2]}"
                    if key == target
                    else key.replace("-", ": ", 1)
                )
                cells = [_ms(skills[s]["scores"].get(key)) for s in names]
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
            kinds = [
                "/".join(k for k in skills[s]["kinds"] if k in (SOURCE_LED, TARGET_LED)) or "–"
                for s in names
            ]
            lines += ["| *kind* | " + " | ".join(kinds) + " |", ""]
        lines += [
            "| variant | median takeover | median retained | oracle gap closed | average |",
            "|---|---|---|---|---|",
        ]
        for key, s in transfer["variants"].items():
            lines.append(
                f"| {key.partition('-')[2]} | {_ms(s['median_takeover'], True)} "
                f"| {_ms(s['median_retained'])} | {_ms(s['oracle_gap_closed'], True)} "
                f"| {_ms(s['average'])} |"
            )
        oracle = transfer["oracle"]
        lines += [
            "",
            f"Oracle (best source per skill) average {_ms(oracle.get('average'))}; target "
            f"{_ms(oracle.get('target_average'))}.",
            "",
        ]
        if transfer.get("selection_accuracy"):
            acc = transfer["selection_accuracy"]
            rules = list(next(iter(acc.values())))
            lines += ["Selection accuracy (share of fusion rows whose chosen answer is right):", ""]
            lines += ["| skill | " + " | ".join(rules) + " |", "|---|" + "---|" * len(rules)]
            lines += [
                f"| {k} | " + " | ".join(_ms(v.get(r)) for r in rules) + " |"
                for k, v in sorted(acc.items(), key=lambda kv: (kv[0] == "all", kv[0]))
            ]
            lines.append("")
    if pooled:
        pct = f"{100 * pooled['level']:.0f}%"
        lines += [f"## Pooled {pct} intervals over {pooled['seeds']} seed(s) (average, points)", ""]
        for label in ("profuser_vs_target", "profuser_vs_best_source"):
            d = pooled.get(label)
            what = label.replace("_vs_", " − ").replace("_", " ")
            if d is None:
                lines.append(f"- {what}: not measured.")
            elif "estimate" not in d:
                lines.append(f"- {what} ({d['b']}): no interval (no per-item scores).")
            else:
                lines.append(
                    f"- {what} ({d['b']}): {100 * d['estimate']:+.2f}, {pct} interval "
                    f"[{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]: {d['verdict']}."
                )
        lines.append("")
    return lines


__all__ = [
    "aggregate_transfer",
    "interval_text",
    "mean_std",
    "pooled_intervals",
    "study_intervals",
    "transfer_summary_markdown",
]
