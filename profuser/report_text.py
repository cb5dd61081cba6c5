"""Plain-text summaries of a run directory, for the terminal."""

from __future__ import annotations

from pathlib import Path

from profuser.io import read_json
from profuser.pipeline import STAGE_ORDER


def print_run_summary(run_dir: Path) -> None:
    """One line per stage: done/incomplete/not run, its time and summary figures."""
    print(f"\nStages in {run_dir}:")
    for name in STAGE_ORDER:
        m = read_json(Path(run_dir) / name / "manifest.json")
        if m is None:
            print(f"  {name:<9} not run")
            continue
        state = "done" if m.get("complete") else "incomplete"
        summ = m.get("summary") or {}
        brief = ", ".join(f"{k}={v}" for k, v in summ.items() if not isinstance(v, dict | list))
        print(f"  {name:<9} {state:<10} {m.get('seconds', '-')!s:>7}s  {brief}")


def print_report(run_dir: Path) -> None:
    """The report's tables and claims, as written to report/report.md."""
    path = Path(run_dir) / "report" / "report.md"
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        print("\n" + text.split("## Figures")[0].rstrip())
