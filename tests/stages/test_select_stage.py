"""Stage `select`: the whole pool by default; a budget by a rule, with the probe it paid for."""

from pathlib import Path

import pytest

from profuser.curate.options import SelectOptions
from profuser.errors import UserError
from profuser.io import read_json
from profuser.io.shards import read_rows_file
from profuser.pipeline import run_pipeline
from tests.stages.conftest import small_config


def _select(cfg, out: Path) -> dict:
    run_pipeline(cfg, out, only="data")
    run_pipeline(cfg, out, only="select")
    return read_json(out / "select" / "manifest.json")["summary"]


def test_without_a_budget_the_pool_is_the_fusion_set_and_costs_nothing(
    mini_world: Path, tmp_path: Path
) -> None:
    cfg = small_config(mini_world)
    summary = _select(cfg, tmp_path / "r")
    pool = read_rows_file(tmp_path / "r" / "data" / "train.parquet")
    assert read_rows_file(tmp_path / "r" / "select" / "rows.parquet") == pool
    assert summary["teacher_forwards"] == 0 and not (tmp_path / "r" / "select" / "probe").exists()


def test_advantage_gap_keeps_the_widest_gaps_and_counts_its_forwards(
    mini_world: Path, tmp_path: Path, full_run, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = small_config(mini_world)
    cfg.select = SelectOptions(rule="advantage_gap", rows=10)
    out = tmp_path / "r"
    summary = _select(cfg, out)
    pool = read_rows_file(out / "data" / "train.parquet")
    gaps = read_rows_file(out / "select" / "gaps.parquet")
    kept = [g for g in gaps if g["kept"]]
    assert len(kept) == 10 and summary["rows"] == 10
    assert min(g["gap"] for g in kept) >= max(g["gap"] for g in gaps if not g["kept"])
    fused = read_rows_file(out / "select" / "rows.parquet")
    assert [r["id"] for r in fused] == [g["id"] for g in kept]  # in pool order
    assert (
        summary["teacher_forwards"] == 4 * len(pool) and summary["probed_models"][0] == cfg.target
    )
    # the probe's CE per byte is the teacher stage's, computed in its own batches
    _, run_dir, _, _ = full_run
    teacher = {r["id"]: r for r in read_rows_file(run_dir / "teacher" / "selection.parquet")}
    for g in gaps:
        for name in summary["probed_models"]:
            assert g[f"ce_per_byte/{name}"] == pytest.approx(
                teacher[g["id"]][f"ce_per_byte/{name}"], rel=1e-4
            )
    # another rule on the same pool takes the probes back instead of computing them again
    probes = {p.name: p.read_bytes() for p in (out / "select" / "probe").glob("*.parquet")}
    cfg.select = SelectOptions(rule="advantage_stratified", rows=12)
    import profuser.stages.select as select_stage

    monkeypatch.setattr(select_stage, "_probe", lambda *a: pytest.fail("probed again"))
    again = _select(cfg, out)
    assert again["rows"] == 12
    assert {p.name: p.read_bytes() for p in (out / "select" / "probe").glob("*.parquet")} == probes


def test_a_budget_above_the_pool_is_a_one_line_error(mini_world: Path, tmp_path: Path) -> None:
    cfg = small_config(mini_world)
    cfg.select = SelectOptions(rule="random", rows=10_000)
    run_pipeline(cfg, tmp_path / "r", only="data")
    with pytest.raises(UserError, match=r"select\.rows 10000 exceeds the data stage's \d+ rows"):
        run_pipeline(cfg, tmp_path / "r", only="select")
