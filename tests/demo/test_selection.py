"""The demo's selection study: its facts per run, its summary and its section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from profuser.demo.runs import aggregate, summary_markdown, write_summary
from profuser.demo.selection import selection_facts, selection_summary, with_random_arm

N = 20


def _record(right: int) -> dict:
    """ProFuser's eval record with ``right`` of N items right on one skill."""
    items = {"world_gen": {"add": {str(i): float(i < right) for i in range(N)}}}
    return {
        "kind": "variant",
        "name": "profuser",
        "scores": {"world_gen": right / N},
        "items": items,
    }


def _result(avg: float, takeover: float, steps: int, forwards: int) -> dict:
    return {
        "models": [{"kind": "variant", "name": "profuser", "scores": {"average": avg}}],
        "transfer": {"variants": {"variant-profuser": {"median_takeover": takeover}}},
        "selection": {"pool": 80, "rows": 20, "teacher_forwards": forwards, "steps": steps},
    }


def test_selection_facts_read_the_select_summary_and_the_training_log(tmp_path: Path) -> None:
    (tmp_path / "select").mkdir()
    summary = {"rule": "advantage_gap", "pool": 80, "rows": 20, "teacher_forwards": 320}
    (tmp_path / "select" / "manifest.json").write_text(json.dumps({"summary": summary}))
    log = tmp_path / "train" / "profuser" / "log.csv"
    log.parent.mkdir(parents=True)
    log.write_text("step,loss\n" + "".join(f"{i},0.1\n" for i in range(7)))
    facts = selection_facts(tmp_path)
    assert facts["teacher_forwards"] == 320 and facts["pool"] == 80 and facts["steps"] == 7
    assert selection_facts(tmp_path / "missing")["steps"] is None


def test_each_rule_is_paired_with_random_on_the_same_seeds() -> None:
    results = {
        "main": [_result(0.7, 0.5, 10, 0)],
        "select:random": [_result(0.6, 0.4, 10, 0), _result(0.62, 0.6, 10, 0)],
        "select:advantage_gap": [_result(0.7, 0.6, 10, 320), _result(0.72, 0.8, 10, 320)],
    }
    profuser = {
        "select:random": {0: _record(10), 1: _record(10)},
        "select:advantage_gap": {0: _record(14), 1: _record(16)},
    }
    got = selection_summary(results, profuser)
    assert set(got) == {"select:random", "select:advantage_gap"}
    gap = got["select:advantage_gap"]
    assert gap["median_takeover"][0] == pytest.approx(0.7)
    assert gap["takeover_per_step"][0] == pytest.approx(0.07)
    assert gap["teacher_forwards"] == [320, 0.0]
    assert gap["vs_random"]["estimate"] == pytest.approx((4 + 6) / 2 / N)
    assert gap["vs_random"]["verdict"] == "held"
    assert "vs_random" not in got["select:random"]


def test_the_summary_shows_the_study_and_draws_its_figures(tmp_path: Path) -> None:
    results = {
        "select:random": [_result(0.6, 0.4, 10, 0)],
        "select:advantage_gap": [_result(0.7, 0.6, 10, 320)],
    }
    profuser = {"select:random": {0: _record(10)}, "select:advantage_gap": {0: _record(10)}}
    summary = write_summary(tmp_path, results, [], None, False, profuser)
    md = (tmp_path / "summary.md").read_text()
    assert "## Advantage-aware selection: 20 fusion rows from a pool of 80 (ProFuser;" in md
    assert "| random | 60.0 ± 0.0 | 40.0 ± 0.0 | 400.00 ± 0.00 | 10 ± 0 | 0 ± 0 | – |" in md
    row = next(line for line in md.splitlines() if line.startswith("| advantage_gap |"))
    assert row.endswith("+0.00 [+0.00, +0.00]: not distinguishable |")
    assert (tmp_path / "fig_select_average.png").is_file()
    assert (tmp_path / "fig_select_takeover.png").is_file()
    assert summary["selection"]["select:advantage_gap"]["rows"] == 20
    assert "Advantage-aware" not in summary_markdown(aggregate({"main": []}), quick=True)
    assert "Table 1 shape" not in md  # --only select: no main run, no empty table


def test_the_random_arm_is_the_main_run_of_the_arms_seeds(tmp_path: Path) -> None:
    main = [_result(0.6, 0.4, 10, 0), _result(0.61, 0.5, 10, 0)]
    results = {"main": main, "select:advantage_gap": [_result(0.7, 0.6, 10, 320)]}
    profuser = {"main": {0: _record(10), 1: _record(11)}, "select:advantage_gap": {0: _record(14)}}
    mains = [
        (0, tmp_path / "seed-0", main[0], _record(10)),
        (1, tmp_path / "seed-1", main[1], _record(11)),
    ]
    got = with_random_arm(results, profuser, mains)
    assert list(got) == ["main", "select:random", "select:advantage_gap"]
    assert len(got["select:random"]) == 1  # seed 0 only: the arm ran for seed 0
    assert got["select:random"][0]["selection"]["teacher_forwards"] == 0
    assert profuser["select:random"] == {0: _record(10)}
    gap = selection_summary(got, profuser)["select:advantage_gap"]
    assert gap["vs_random"]["estimate"] == pytest.approx(4 / N)
    # before an arm has run, no random arm
    assert with_random_arm({"main": main}, {"main": {0: _record(10)}}, mains) == {"main": main}
