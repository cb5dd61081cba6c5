"""The whole pipeline on the mini world, through the CLI, as a user runs it."""

from pathlib import Path

import pytest
import yaml

from profuser.cli import main
from profuser.configs import config_path
from profuser.io import read_json
from profuser.io.shards import read_rows_file
from profuser.pipeline import STAGE_ORDER


def _config(world: Path, tmp: Path, **extra) -> Path:
    base = yaml.safe_load(config_path("demo").read_text())
    for s in base["sources"]:
        s["path"] = str(world / s["path"].removeprefix("world:"))
    base["dataset"]["path"] = str(world / "data" / "train.jsonl")
    base["reward_models"] = [
        r for r in base["reward_models"] if not str(r.get("path", "")).startswith("world:")
    ]
    base.pop("world", None)
    base["variants"] = ["csft"]
    base["advantage"]["sampling"]["max_new_tokens"] = 16
    base["train"].update(effective_batch=8, micro_batch=8, epoch_scale=1)
    base["eval"]["limit"] = 2
    base.update(extra)
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def test_pipeline_end_to_end_then_skips_everything(
    mini_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    cfg = _config(mini_world, tmp_path)
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out)]) == 0
    for stage in STAGE_ORDER:
        m = read_json(out / stage / "manifest.json")
        assert m and m["complete"], stage
    results = read_json(out / "report" / "results.json")
    kinds = {(m["kind"], m["name"]) for m in results["models"]}
    assert ("variant", "profuser") in kinds and ("variant", "csft") in kinds
    assert {("merge", "slerp"), ("merge", "ties"), ("merge", "dare")} <= kinds
    assert {
        ("source", n) for n in ["vicuna-like", "llama-chat-like", "mpt-like", "neox-like"]
    } <= kinds
    assert (out / "report" / "report.md").read_text().count("|") > 10
    for fig in ("fig1a_win_share.png", "fig1b_answer_length.png", "train_loss.png"):
        assert (out / "report" / fig).stat().st_size > 1000
    # per-item scores give every model an interval; the transfer section reads the real files
    assert all(iv is not None for iv in results["intervals"]["models"].values())
    transfer = results["transfer"]
    assert set(transfer["tasks"]) == {"world_mc", "world_gen"}
    assert set(transfer["variants"]) == {"variant-profuser", "variant-csft"}
    accuracy = transfer["selection_accuracy"]
    assert accuracy["judge"] == "verifier"
    skills = {r["skill"] for r in read_rows_file(out / "data" / "train.parquet")}
    assert set(accuracy["skills"]) == skills | {"all"}
    assert accuracy["skills"]["all"]["rows"] == sum(accuracy["skills"][s]["rows"] for s in skills)
    assert set(accuracy["skills"]["all"]) == {"rows", "min_ce", "rm_vote", "any_right"}
    assert "## Per-skill transfer" in (out / "report" / "report.md").read_text()
    assert (out / "report" / "fig_transfer.png").stat().st_size > 1000
    # a second run skips every stage: no manifest is rewritten
    before = {s: (out / s / "manifest.json").stat().st_mtime_ns for s in STAGE_ORDER}
    assert main(["run", str(cfg), "--out", str(out)]) == 0
    after = {s: (out / s / "manifest.json").stat().st_mtime_ns for s in STAGE_ORDER}
    assert before == after


def test_bad_config_on_the_command_line_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("sources: []\ntarget: x\ndataset: {path: d.jsonl}\ntrain: {lrr: 1}\n")
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "train.lrr" in err and "did you mean `train.lr`" in err


def test_missing_model_directory_is_a_user_error(
    mini_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    cfg = _config(mini_world, tmp_path)
    assert main(["run", str(cfg), "--out", str(tmp_path / "r"), "--stage", "data"]) == 0
    tree = yaml.safe_load(cfg.read_text())
    tree["sources"][1]["path"] = str(tmp_path / "nope")
    cfg.write_text(yaml.safe_dump(tree))
    assert main(["run", str(cfg), "--out", str(tmp_path / "r"), "--force"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "sources.1.path" in err and "nope" in err and "not found" in err
    # refused before any stage: what was done stays complete
    assert read_json(tmp_path / "r" / "data" / "manifest.json")["complete"]
