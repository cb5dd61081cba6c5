"""The demo's source-scaling study: ProFuser fusing 1, 2, 4 and 6 models (the target
included) of the extended world, whose six sources are each strong at skills of their own.

The study runs in a world of its own (``world: {roster: six}``, `profuser.world.build`):
the demo world's four sources and a Qwen2-like and a Gemma-like one, twelve skills, and a
fusion set of the same 150 rows a skill as the demo world's. Its runs add sources in the
roster's order: the target alone (ProFuser then distils the target into itself on the
fusion set), the target and llama-chat-like, the paper's four, then all six. Each run is
evaluated on the twelve skills' benchmark (``worldx_mc``, ``worldx_gen``), so the sizes are
compared with one another item by item, never with the main runs (another world and
another benchmark). Beside ProFuser's average, median takeover and retained, the study
reports what each size cost: the stages' seconds and the bytes its answers, scores,
teacher outputs and alignments take on disk.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from profuser.demo.summary import (
    interval_text,
    mean_std,
    ms_text,
    profuser_transfer,
    study_average,
    study_intervals,
)
from profuser.io import read_json

PREFIX = "scale:"
SIZES = (1, 2, 4, 6)  # models fused, the target included
ROSTER = ("vicuna-like", "llama-chat-like", "mpt-like", "neox-like", "qwen2-like", "gemma-like")
# The extended world at the demo world's fusion rows per skill (1,200 rows over eight skills;
# these overrides come after the user's, so a `world.n_train=` of theirs does not reach it).
WORLD = ["world.roster=six", "world.n_train=1800", "eval.tasks=[worldx_mc,worldx_gen]"]
# The stages whose outputs grow with the number of sources (what the storage column counts).
STORED_STAGES = ("generate", "score", "teacher", "align")
# What fusing costs: every stage up to the trained model. Not eval, whose time depends on
# whether the sources' records were cached by an earlier run, nor the report.
FUSION_STAGES = ("data", "select", "generate", "score", "teacher", "align", "pairs", "logprobs")
GEN_TASK = "worldx_gen"  # the per-skill table's task


def scaling_sources(n: int) -> list[str]:
    """The first ``n`` models of the roster, the target (vicuna-like) first."""
    if not 1 <= n <= len(ROSTER):
        raise ValueError(f"the extended world has {len(ROSTER)} models; {n} asked")
    return list(ROSTER[:n])


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def scaling_facts(run_dir: Path) -> dict[str, Any]:
    """One size's costs: the seconds of the fusion stages (up to and with training) and of
    training alone, and the bytes the answers, scores, teacher outputs and alignments take."""
    seconds: dict[str, float] = {}
    for stage in (*FUSION_STAGES, "train"):
        s = (read_json(run_dir / stage / "manifest.json") or {}).get("seconds")
        if isinstance(s, int | float):
            seconds[stage] = float(s)
    stored = {stage: _dir_bytes(run_dir / stage) for stage in STORED_STAGES}
    return {
        "seconds": round(sum(seconds.values()), 1) if seconds else None,
        "train_seconds": seconds.get("train"),
        "teacher_seconds": seconds.get("teacher"),
        "stored_bytes": sum(stored.values()),
        "teacher_bytes": stored["teacher"] + stored["align"],
    }


def scaling_summary(
    results: dict[str, list[dict]], profuser: dict[str, dict[int, dict]]
) -> dict[str, dict[str, Any]]:
    """Per size (``scale:<n>``, in ``SIZES`` order): mean ± std over its seeds of ProFuser's
    median takeover and retained and of the costs (`scaling_facts`, added to each result as
    ``scaling``); and the paired interval of ProFuser's average against the next smaller
    size that ran (``vs_smaller``)."""
    out: dict[str, dict[str, Any]] = {}
    previous = None
    for n in SIZES:
        label = f"{PREFIX}{n}"
        runs = results.get(label)
        if not runs:
            continue
        facts = [r.get("scaling") or {} for r in runs]
        row: dict[str, Any] = {
            "models": n,
            "seeds": len(runs),
            "median_takeover": mean_std([profuser_transfer(r, "median_takeover") for r in runs]),
            "median_retained": mean_std([profuser_transfer(r, "median_retained") for r in runs]),
            **{
                k: mean_std([f.get(k) for f in facts])
                for k in ("seconds", "train_seconds", "teacher_seconds", "stored_bytes")
            },
        }
        if previous is not None and label in profuser:
            # ``study`` is this size, ``main`` the smaller one, in the result's ``means``
            paired = study_intervals(profuser[label], profuser[previous])
            if paired is not None:  # None: the two sizes ran no seed in common
                row["vs_smaller"] = {"than": previous, **paired}
        out[label] = row
        if label in profuser:  # the next size is compared with the last one that has a record
            previous = label
    return out


def scaling_markdown(summary: dict) -> list[str]:
    """The study's section of ``summary.md`` (nothing before its first size has run)."""
    sizes = summary.get("scaling") or {}
    if not sizes:
        return []
    lines = [
        "## Scaling the number of sources: ProFuser in the extended world (six sources, "
        "twelve skills; `worldx_*`, not comparable with the main runs)",
        "",
        "| models fused | sources | average | median takeover | median retained "
        "| fusion seconds (stages to the trained model) | train seconds "
        "| stored MB (answers, scores, teacher, align) "
        "| − the next smaller size, paired over items and seeds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, row in sizes.items():
        n = row["models"]
        others = ", ".join(scaling_sources(n)[1:]) or "none (the target alone)"
        vs = row.get("vs_smaller")
        vs_text = f"{interval_text(vs)} (vs {vs['than'][len(PREFIX) :]})" if vs else "–"
        lines.append(
            f"| {n} | {others} | {ms_text(study_average(summary.get(label, {})), 100, 1)} "
            f"| {ms_text(row['median_takeover'], 100, 1)} | {ms_text(row['median_retained'], 100, 1)} "
            f"| {ms_text(row['seconds'], 1, 0)} | {ms_text(row['train_seconds'], 1, 0)} "
            f"| {ms_text(row['stored_bytes'], 1e-6, 1)} | {vs_text} |"
        )
    return [*lines, "", *_per_skill(summary, sizes), ""]


def _per_skill(summary: dict, sizes: dict[str, dict]) -> list[str]:
    """ProFuser's exact match per skill at each size, under the target and the best source."""
    tasks = [((summary.get(label) or {}).get("transfer") or {}).get("tasks", {}) for label in sizes]
    skills = sorted({k for t in tasks for k in t.get(GEN_TASK, {})})
    if not skills:
        return []

    def score(cell: dict, model: str) -> float | None:
        v = (cell.get("scores") or {}).get(model)
        return None if not v or v[0] is None or math.isnan(v[0]) else v[0]

    largest = tasks[-1].get(GEN_TASK, {})  # the largest size that ran: its sources' scores
    target = f"source-{ROSTER[0]}"
    best = [
        max(
            (
                v[0]
                for m, v in (largest.get(k, {}).get("scores") or {}).items()
                if m.startswith("source-")
            ),
            default=None,
        )
        for k in skills
    ]
    rows = [
        (f"target ({ROSTER[0]})", [score(largest.get(k, {}), target) for k in skills]),
        (f"best of the sources fused at {list(sizes.values())[-1]['models']}", best),
    ]
    for row, t in zip(sizes.values(), tasks, strict=True):
        n = row["models"]
        cells = [score(t.get(GEN_TASK, {}).get(k, {}), "variant-profuser") for k in skills]
        rows.append((f"ProFuser, {n} model{'s' if n > 1 else ''}", cells))
    lines = [
        f"ProFuser's `{GEN_TASK}` exact match per skill (mean over seeds):",
        "",
        "| model | " + " | ".join(skills) + " |",
        "|---|" + "---|" * len(skills),
    ]
    for name, values in rows:
        cells = ["–" if v is None else f"{100 * v:.0f}" for v in values]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def scaling_figure(summary: dict, path: Path) -> None:
    """ProFuser's average and median takeover against the number of models fused."""
    sizes = summary.get("scaling") or {}
    if len(sizes) < 2:
        return
    from profuser.report.figures import line_figure

    xs = [row["models"] for row in sizes.values()]
    series = {
        "average": [100 * study_average(summary.get(label, {}))[0] for label in sizes],
        "median takeover (%)": [100 * row["median_takeover"][0] for row in sizes.values()],
    }
    line_figure(xs, series, "models fused (the target included)", path)
