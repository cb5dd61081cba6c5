"""The demo's implicit-fusion study: preference-optimisation variants beside ProFuser.

One run per study seed trains, on the same fusion rows, ProFuser (explicit fusion: the
sources' token distributions) and the implicit variants (preferences over the sources'
sampled answers): ``implicit`` (FuseChat-3.0's recipe: SFT on the voted answers, then DPO on
pairs of one source's best and worst answer), ``profuser_po`` (ProFuser, then that DPO phase)
and ``infifpo`` (the SFT, then DPO against the sources' fused reference). Each source
samples two answers per prompt for the pairs (its first is the one inference mode votes on,
unchanged). Per skill, each implicit variant − ProFuser is paired item by item within a seed
and pooled over seeds: the report says where implicit fusion beats explicit fusion, where it
loses and where the two are not distinguishable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from profuser.report.stats import LEVEL, RESAMPLES, SEED, bootstrap, verdict
from profuser.report.transfer import model_key

LABEL = "implicit"
VARIANTS = ("implicit", "profuser_po", "infifpo")
EXPLICIT = "variant-profuser"
WORDS = {"held": "beats", "did not hold": "loses", "not distinguishable": "n.d."}


def implicit_overrides() -> list[str]:
    """The study run's overrides: two answers per source and prompt, the three variants."""
    return ["advantage.sampling.n=2", f"variants=[{', '.join(VARIANTS)}]", "merges=[]"]


def implicit_comparison(
    records_by_seed: Sequence[Sequence[Mapping[str, Any]]],
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = SEED,
) -> dict[str, Any] | None:
    """Per implicit variant, per (task, skill) and for the average: its mean − ProFuser's
    over seeds, the paired interval and its verdict (``held``: the variant beats ProFuser).

    ``records_by_seed``: each seed's eval records of the study run."""
    runs = [{model_key(r): r for r in recs} for recs in records_by_seed]
    runs = [r for r in runs if EXPLICIT in r]
    if not runs:
        return None
    explicit = [r[EXPLICIT] for r in runs]
    cells = sorted(
        {
            (t, s)
            for rec in explicit
            for t, strata in (rec.get("items") or {}).items()
            for s in strata
        }
    )
    out: dict[str, Any] = {"seeds": len(runs), "level": level, "variants": {}}
    for name in VARIANTS:
        key = f"variant-{name}"
        if not all(key in r for r in runs):
            continue
        mine = [r[key] for r in runs]
        a, b = [m.get("items") or {} for m in mine], [e.get("items") or {} for e in explicit]
        rows: dict[str, Any] = {}
        for task, skill in cells:
            iv = bootstrap(
                a, b, tasks=[task], stratum=skill, resamples=resamples, level=level, seed=seed
            )
            rows[f"{task}/{skill}"] = {**(iv.as_dict() if iv else {}), "verdict": verdict(iv)}
        tasks = sorted({t for t, _ in cells})
        iv = bootstrap(a, b, tasks=tasks, resamples=resamples, level=level, seed=seed)
        out["variants"][name] = {
            "skills": rows,
            "average": {**(iv.as_dict() if iv else {}), "verdict": verdict(iv)},
        }
    return out


def implicit_markdown(comparison: Mapping[str, Any] | None) -> list[str]:
    """The study's section of ``summary.md``: one row per skill, one column per variant."""
    if not comparison or not comparison.get("variants"):
        return []
    variants = comparison["variants"]
    names = list(variants)
    lines = [
        f"## Implicit fusion beside explicit: each variant − ProFuser, paired over items and "
        f"{comparison['seeds']} seed(s) (points, 95% interval)",
        "",
        "| skill | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    skills = list(next(iter(variants.values()))["skills"])
    for cell in [*skills, "average"]:
        row = [
            variants[n]["average"] if cell == "average" else variants[n]["skills"].get(cell)
            for n in names
        ]
        lines.append(f"| {cell} | " + " | ".join(_cell(r) for r in row) + " |")
    lines.append("")
    for n in names:
        counts = {w: 0 for w in WORDS.values()}
        for r in variants[n]["skills"].values():
            counts[WORDS.get(r.get("verdict"), "n.d.")] += 1
        lines.append(
            f"- {n}: beats ProFuser on {counts['beats']} skill(s), loses on {counts['loses']}, "
            f"not distinguishable on {counts['n.d.']}"
        )
    return [*lines, ""]


def implicit_figure(comparison: Mapping[str, Any] | None, path: Path) -> None:
    """Each variant − ProFuser per skill, with its interval."""
    if not comparison or not comparison.get("variants"):
        return
    from profuser.report.figures import difference_figure

    series = {
        name: {
            cell: (r.get("estimate"), r.get("low"), r.get("high"))
            for cell, r in v["skills"].items()
        }
        for name, v in comparison["variants"].items()
    }
    difference_figure(series, "− ProFuser (points)", path)


def _cell(r: Mapping[str, Any] | None) -> str:
    if not r or r.get("estimate") is None or math.isnan(r["estimate"]):
        return "–"
    word = WORDS.get(r["verdict"], "n.d.")
    return f"{100 * r['estimate']:+.1f} [{100 * r['low']:+.1f}, {100 * r['high']:+.1f}] {word}"
