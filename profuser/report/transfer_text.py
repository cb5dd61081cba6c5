"""The report's "Per-skill transfer" section in Markdown, from results.json's ``transfer``.

Scores are percentages with their 95% interval in brackets (``–`` where a record
has no per-item scores); takeover and retained are percentages of the lead kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from profuser.report.transfer import SOURCE_LED, TARGET_LED


def _pct(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "–"
    return f"{100 * v:+.0f}%" if signed else f"{100 * v:.0f}%"


def _score_cell(cell: Mapping[str, Any] | None) -> str:
    if not cell or cell.get("score") is None:
        return "–"
    s = f"{100 * cell['score']:.1f}"
    if cell.get("low") is None:
        return f"{s} [–]"
    return f"{s} [{100 * cell['low']:.1f}, {100 * cell['high']:.1f}]"


def _label(key: str, target: str) -> str:
    kind, _, name = key.partition("-")
    return f"target: {name}" if key == target else f"{kind}: {name}"


def _leader(entry: Mapping[str, Any]) -> str:
    if entry["kind"] == SOURCE_LED:
        lead = entry["lead"]["estimate"]
        return f"{entry['best_source'].partition('-')[2]} +{100 * lead:.1f}"
    return "target" if entry["kind"] == TARGET_LED else "–"


def task_table(task: str, skills: Mapping[str, Mapping[str, Any]], target: str) -> list[str]:
    """One group task's table: rows = target, sources, variants; columns = skills; then who
    leads each skill and each variant's takeover (source-led) or retained (target-led)."""
    names = list(skills)
    keys = list(next(iter(skills.values()))["scores"])
    lines = [f"### {task}", "", "| model | " + " | ".join(names) + " |"]
    lines.append("|---|" + "---|" * len(names))
    for key in keys:
        cells = [_score_cell(skills[s]["scores"].get(key)) for s in names]
        lines.append(f"| {_label(key, target)} | " + " | ".join(cells) + " |")
    lines.append("| *leader (lead)* | " + " | ".join(_leader(skills[s]) for s in names) + " |")
    variants = [k for k in keys if k.startswith("variant-")]
    for what in ("takeover", "retained"):
        for v in variants:
            cells = [_pct(skills[s][what].get(v), signed=what == "takeover") for s in names]
            if any(c != "–" for c in cells):
                lines.append(f"| *{what}: {v.partition('-')[2]}* | " + " | ".join(cells) + " |")
    return [*lines, ""]


def summary_table(transfer: Mapping[str, Any]) -> list[str]:
    """Per variant: median takeover, median retained, oracle gap closed, average."""
    oracle = transfer.get("oracle") or {}
    lines = [
        "| variant | median takeover (skills) | median retained (skills) | oracle gap closed "
        "| average |",
        "|---|---|---|---|---|",
    ]
    for key, s in transfer.get("variants", {}).items():
        lines.append(
            f"| {key.partition('-')[2]} | {_pct(s['median_takeover'], True)} ({s['source_led']}) "
            f"| {_pct(s['median_retained'])} ({s['target_led']}) "
            f"| {_pct(s['oracle_gap_closed'], True)} | {_pct(s['average'])} |"
        )
    lines += [
        "",
        f"Oracle (the best source on every skill): average {_pct(oracle.get('average'))}; "
        f"target before fusion {_pct(oracle.get('target_average'))}.",
        "",
    ]
    return lines


def selection_table(acc: Mapping[str, Any]) -> list[str]:
    """Per skill: rows, and the share of rows where each rule chose a right answer."""
    skills = acc.get("skills") or {}
    rules = [k for k in next(iter(skills.values()), {}) if k not in ("rows", "any_right")]
    lines = [
        f"Selection accuracy: share of fusion rows where the choice's sampled answer is right "
        f"(judged by `{acc['judge']}`: {acc['right_means']}).",
        "",
        "| skill | rows | " + " | ".join(rules) + " | any source right |",
        "|---|---|" + "---|" * (len(rules) + 1),
    ]
    for skill, row in skills.items():
        cells = [_pct(row.get(r)) for r in [*rules, "any_right"]]
        lines.append(f"| {skill} | {row['rows']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def transfer_markdown(transfer: Mapping[str, Any] | None) -> list[str]:
    """The whole section's lines (a note when the run has nothing to show)."""
    lines = ["## Per-skill transfer", ""]
    if not transfer or not transfer.get("tasks"):
        lines += ["The target was not evaluated as a source; no transfer to show.", ""]
    else:
        pct = f"{100 * transfer['level']:.0f}%"
        lines += [
            f"Scores in % with {pct} bootstrap intervals. A skill is source-led when a source "
            f"leads the target by at least {100 * transfer['min_lead']:.0f} points with its "
            f"paired interval above 0; takeover = (variant − target) / (best source − target). "
            "Target-led: the target is at least as good as every source; retained = "
            "variant / target.",
            "",
        ]
        for task, skills in transfer["tasks"].items():
            lines += task_table(task, skills, transfer["target"])
        lines += summary_table(transfer)
    if transfer and transfer.get("selection_accuracy"):
        lines += selection_table(transfer["selection_accuracy"])
    return lines


__all__ = ["selection_table", "summary_table", "task_table", "transfer_markdown"]
