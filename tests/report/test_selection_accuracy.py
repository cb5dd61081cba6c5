"""Selection accuracy: hand-made score rows, both judging rules, and from run files."""

from __future__ import annotations

import math
from pathlib import Path

import datasets
import pytest

from profuser.config import load_config
from profuser.io.shards import write_rows
from profuser.pipeline import StageContext, load_stages
from profuser.report.selection_accuracy import right_answers, selection_accuracy
from profuser.stages.contracts import ConfigView
from profuser.stages.report import load_selection_accuracy

SOURCES = ["t", "a", "b"]
# id -> (skill, verifier score per source, other RM score per source, MinCE winner, vote winner)
ROWS = {
    "x0": ("add", (1, 0, 0), (0.9, 0.1, 0.2), "t", "t"),
    "x1": ("add", (0, 1, math.nan), (0.3, 0.5, math.nan), "t", "a"),
    "x2": ("next", (0, 0, 1), (0.1, 0.7, 0.7), "b", "b"),
    "x3": ("next", (0, 0, 0), (0.2, 0.2, 0.1), "a", ""),
}


def _score_rows() -> list[dict]:
    return [
        {"id": eid, "source": s, "verifier": float(v[k]), "rm": float(o[k])}
        for eid, (_, v, o, _, _) in ROWS.items()
        for k, s in enumerate(SOURCES)
    ]


def _winners() -> dict[str, dict[str, str]]:
    return {
        "min_ce": {eid: r[3] for eid, r in ROWS.items()},
        "rm_vote": {eid: r[4] for eid, r in ROWS.items()},
    }


def _data() -> list[dict]:
    return [{"id": eid, "skill": r[0]} for eid, r in ROWS.items()]


def test_verifier_judges_by_threshold() -> None:
    right = right_answers(_score_rows(), "verifier", verifier=True)
    assert right[("x0", "t")] and not right[("x0", "a")]
    assert not right[("x1", "b")]  # NaN: cannot be right
    acc = selection_accuracy(_data(), _winners(), right)
    assert list(acc) == ["add", "next", "all"]
    assert acc["add"] == {"rows": 2, "min_ce": 0.5, "rm_vote": 1.0, "any_right": 1.0}
    # x3 has no vote (empty winner) and no right answer at all
    assert acc["next"] == {"rows": 2, "min_ce": 0.5, "rm_vote": 0.5, "any_right": 0.5}
    assert acc["all"] == {"rows": 4, "min_ce": 0.5, "rm_vote": 0.75, "any_right": 0.75}


def test_other_rm_judges_by_agreement_with_its_best_answer() -> None:
    right = right_answers(_score_rows(), "rm", verifier=False)
    assert right[("x0", "t")] and not right[("x0", "b")]
    assert right[("x1", "a")] and not right[("x1", "t")]
    assert right[("x2", "a")] and right[("x2", "b")]  # a tie: both agree
    acc = selection_accuracy(_data(), _winners(), right)
    assert acc["all"]["min_ce"] == pytest.approx(3 / 4)  # x0, x2, x3 (a ties t at the top)
    assert acc["all"]["rm_vote"] == pytest.approx(3 / 4)  # x0, x1, x2; x3 has no vote


def test_without_a_skill_column_one_bucket() -> None:
    right = right_answers(_score_rows(), "verifier", verifier=True)
    acc = selection_accuracy([{"id": eid} for eid in ROWS], _winners(), right)
    assert list(acc) == ["all"] and acc["all"]["rows"] == 4


def test_from_run_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "select").mkdir(parents=True)
    rows = [
        {"id": eid, "system": "", "instruction": "q", "response": "r", "skill": r[0]}
        for eid, r in ROWS.items()
    ]
    datasets.Dataset.from_list(rows).to_parquet(str(run / "select" / "rows.parquet"))
    write_rows(run / "score" / "scores.parquet", _score_rows())
    write_rows(
        run / "score" / "chosen.parquet",
        [{"id": eid, "winner": w, "answer": ""} for eid, w in _winners()["rm_vote"].items()],
    )
    write_rows(
        run / "teacher" / "selection.parquet",
        [{"id": eid, "winner": w} for eid, w in _winners()["min_ce"].items()],
    )
    cfg = load_config(
        base={
            "sources": [{"name": s, "path": f"/m/{s}"} for s in SOURCES],
            "target": "t",
            "dataset": {"path": "d.jsonl"},
            "reward_models": [
                {"name": "rm", "kind": "reference"},
                {"name": "verifier", "kind": "verifier", "strongest": True},
            ],
        }
    )
    report = load_stages()["report"]

    def ctx(run_dir: Path) -> StageContext:
        return StageContext(
            ConfigView(cfg, report.reads, "report"), run_dir, "report", "fp", stage=report
        )

    got = load_selection_accuracy(ctx(run))
    assert got["judge"] == "verifier" and "0.5" in got["right_means"]
    assert got["skills"]["all"] == {"rows": 4, "min_ce": 0.5, "rm_vote": 0.75, "any_right": 0.75}
    assert load_selection_accuracy(ctx(tmp_path / "empty")) is None
