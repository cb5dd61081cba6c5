"""The demo's selection study: one budget of fusion rows, curated from a larger pool by
each selection rule (`profuser.curate.rules`), ProFuser trained on each.

Every advantage arm draws from the world's candidate pool (`profuser.world.pool`, four times
the fusion set) the fusion set's number of rows, so the arms differ only in which rows they
fuse on. The ``random`` arm is the main run of the seed: the world's fusion set is the
pool's first rows, a random draw from the same questions, so it is what random selection
gives (today's behaviour) without training it twice. Each advantage rule is compared with
``random`` item by item within a seed and pooled over seeds; beside the average, the study
reports ProFuser's median takeover, the takeover per optimizer step and what the selection
cost (teacher forwards on the pool).
"""

from __future__ import annotations

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
from profuser.world.pool import POOL_FILE

SELECT_STUDY = ("random", "advantage_gap", "advantage_stratified")  # the table's rows
RANDOM_RULE = "random"
SELECT_ARMS = tuple(r for r in SELECT_STUDY if r != RANDOM_RULE)  # the runs it plans
PREFIX = "select:"
BASELINE = f"{PREFIX}{RANDOM_RULE}"


def select_overrides(rule: str, rows: int) -> list[str]:
    """The overrides of the study's arm for ``rule``: the pool as the data, ``rows`` kept."""
    return [f"dataset.path=world:{POOL_FILE}", f"select.rule={rule}", f"select.rows={rows}"]


def selection_facts(run_dir: Path) -> dict[str, Any]:
    """What one arm's run cost and trained: the select stage's summary (pool, rows,
    teacher forwards, mean gap) and ProFuser's optimizer steps (its training log's rows)."""
    select = (read_json(run_dir / "select" / "manifest.json") or {}).get("summary", {})
    log_csv = run_dir / "train" / "profuser" / "log.csv"
    steps = None
    if log_csv.is_file():
        with log_csv.open(encoding="utf-8") as f:
            steps = max(sum(1 for _ in f) - 1, 0)
    return {
        "pool": select.get("pool"),
        "rows": select.get("rows"),
        "teacher_forwards": select.get("teacher_forwards"),
        "mean_gap": select.get("mean_gap"),
        "steps": steps,
    }


def with_random_arm(
    results: dict[str, list[dict]],
    profuser: dict[str, dict[int, dict]],
    mains: list[tuple[int, Path, dict, dict | None]],
) -> dict[str, list[dict]]:
    """``results`` with the ``random`` arm put before the advantage arms: the main runs
    ``(seed, run_dir, results, ProFuser's eval record)`` of the seeds an advantage arm ran
    for (its ProFuser is added to ``profuser``). Nothing is added before an arm has run."""
    arm_seeds = {
        s for label, by_seed in profuser.items() if label.startswith(PREFIX) for s in by_seed
    }
    picked = [m for m in mains if m[0] in arm_seeds]
    if not picked:
        return results
    out: dict[str, list[dict]] = {}
    for label, runs in results.items():
        if label.startswith(PREFIX) and BASELINE not in out:
            out[BASELINE] = []
            for seed, run_dir, res, rec in picked:
                facts = {**selection_facts(run_dir), "teacher_forwards": 0, "pool": None}
                out[BASELINE].append({**res, "selection": facts})
                if rec is not None:
                    profuser.setdefault(BASELINE, {})[seed] = rec
        out[label] = runs
    return out


def selection_summary(
    results: dict[str, list[dict]], profuser: dict[str, dict[int, dict]]
) -> dict[str, dict[str, Any]]:
    """Per arm: mean ± std over its seeds of median takeover, takeover per step, steps and
    teacher forwards; and, beside ``random``, the paired interval of ProFuser's average.

    ``results``: each label's ``results.json`` per seed, with ``selection``
    (`selection_facts`) added; ``profuser``: each label's ProFuser eval record per seed."""
    out: dict[str, dict[str, Any]] = {}
    for label, runs in results.items():
        if not label.startswith(PREFIX):
            continue
        takeover = [profuser_transfer(r, "median_takeover") for r in runs]
        facts = [r.get("selection") or {} for r in runs]
        steps = [f.get("steps") for f in facts]
        per_step = [
            t / s if t is not None and s else None for t, s in zip(takeover, steps, strict=True)
        ]
        arm: dict[str, Any] = {
            "seeds": len(runs),
            "median_takeover": mean_std(takeover),
            "takeover_per_step": mean_std(per_step),
            "steps": mean_std(steps),
            "teacher_forwards": mean_std([f.get("teacher_forwards") for f in facts]),
            "pool": facts[0].get("pool") if facts else None,
            "rows": facts[0].get("rows") if facts else None,
        }
        if label != BASELINE and label in profuser and BASELINE in profuser:
            arm["vs_random"] = study_intervals(profuser[label], profuser[BASELINE])
        out[label] = arm
    return out


def selection_markdown(summary: dict) -> list[str]:
    """The study's section of ``summary.md`` (nothing before its first arm has run)."""
    arms = summary.get("selection") or {}
    if not arms:
        return []
    rows = next((a["rows"] for a in arms.values() if a.get("rows")), None)
    pool = next((a["pool"] for a in arms.values() if a.get("pool")), None)
    lines = [
        f"## Advantage-aware selection: {rows} fusion rows from a pool of {pool} (ProFuser; "
        "random: the main run, whose fusion set is a random draw of the pool's questions)",
        "",
        "| rule | average | median takeover | takeover per 100 steps (points) | steps "
        "| selection cost (teacher forwards) | − random, paired over items and seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, arm in arms.items():
        avg = study_average(summary.get(label, {}))
        per_step = arm["takeover_per_step"]
        lines.append(
            f"| {label[len(PREFIX) :]} | {ms_text(avg, 100, 1)} | {ms_text(arm['median_takeover'], 100, 1)} "
            f"| {ms_text(per_step, 100 * 100, 2)} | {ms_text(arm['steps'], 1, 0)} "
            f"| {ms_text(arm['teacher_forwards'], 1, 0)} "
            f"| {interval_text(arm.get('vs_random')) if label != BASELINE else '–'} |"
        )
    return [*lines, ""]


def selection_figures(summary: dict, out: Path) -> None:
    """ProFuser's average and median takeover per rule, one bar chart each."""
    from profuser.report.figures import bar_figure

    arms = summary.get("selection") or {}
    if len(arms) < 2:
        return
    names = [label[len(PREFIX) :] for label in arms]
    averages = [100 * study_average(summary.get(label, {}))[0] for label in arms]
    takeovers = [100 * a["median_takeover"][0] for a in arms.values()]
    bar_figure(
        dict(zip(names, averages, strict=True)), "ProFuser average", out / "fig_select_average.png"
    )
    bar_figure(
        dict(zip(names, takeovers, strict=True)),
        "median takeover (%)",
        out / "fig_select_takeover.png",
    )
