"""Bad configs through `profuser validate`: exit 2, one line naming the field, no traceback.

Each case is a config the loader's types accept but whose values are wrong: names not in
their registries, phases naming unknown sources, reward models the inference rule cannot
use, paths and files that are not there or lack what the config reads from them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from profuser.cli import main
from tests.test_config_checks import ROW, make_model, shipped, write_rows

ROOT = Path(__file__).resolve().parents[2]
PHASE = "{name: p, epochs: 1, w1: 1, w2: 0, lam: 0.1, beta: 0"


@pytest.fixture
def demo() -> str:
    return str(shipped("demo.yaml"))


@pytest.fixture
def local(tmp_path: Path) -> Path:
    """A config of local files only (two tiny model directories, a JSONL dataset) that is right."""
    tree = {
        "sources": [
            {"name": "a", "path": str(make_model(tmp_path / "a"))},
            {"name": "b", "path": str(make_model(tmp_path / "b"))},
        ],
        "target": "a",
        "reward_models": [{"name": "ref", "kind": "reference"}],
        "dataset": {"path": str(write_rows(tmp_path / "d.jsonl", [ROW, ROW])), "id_field": "id"},
    }
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def _error_line(capsys: pytest.CaptureFixture) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def _bad(capsys, config, *overrides: str, field: str, needle: str = "") -> str:
    assert main(["validate", str(config), *overrides]) == 2
    line = _error_line(capsys)
    assert line.startswith("error: ") and f"`{field}`" in line, line
    assert needle in line, line
    return line


def test_the_right_configs_validate(demo: str, local: Path, capsys) -> None:
    assert main(["validate", demo]) == 0
    assert main(["validate", str(local)]) == 0
    assert main(["validate", str(shipped("paper.yaml"))]) == 0  # hub ids
    assert capsys.readouterr().err == ""


# (overrides of the demo config, field named, text the line holds)
DEMO_CASES = [
    (["advantage.training_rule=foo"], "advantage.training_rule", "avg_ce, min_ce, min_ce_per_byte"),
    (["advantage.inference_rule=bar"], "advantage.inference_rule", "reference, rm_vote, single_rm"),
    (["sources.0.path=/nonexistent"], "sources.0.path", "org/name"),
    (["sources.2.path=not/a/hub-id"], "sources.2.path", "not found"),
    (["reward_models.1.kind=oracle"], "reward_models.1.kind", "seq_cls"),
    (["reward_models.1.chat_template=vicuna"], "reward_models.1.chat_template", "vicuna_v1.1"),
    (["sources.3.chat_template=chatlm"], "sources.3.chat_template", "chatml"),
    (["reward_models.0.strongest=false"], "advantage.inference_rule", "strongest"),
    (
        ["advantage.inference_rule=single_rm", "reward_models.0.strongest=false"],
        "advantage.inference_rule",
        "mark one of verifier, tiny-rm, reference",
    ),
    (
        ["advantage.inference_rule=reference", "reward_models=[{name: v, kind: verifier}]"],
        "advantage.inference_rule",
        "kind reference",
    ),
    ([f"schedule=[{PHASE}, sources: [ghost-like]}}]"], "schedule.0.sources", "vicuna-like"),
    (
        [f"schedule=[{PHASE}, subset: easy_half, order: rm_score}}]", "reward_models=[]"],
        "schedule.0.order",
        "gt_length",
    ),
    (["reward_models=[]", "variants=[csft, rmscore_fuse]"], "variants.1", "rm_score"),
    (["schedule=[]"], "schedule", "at least one phase"),
    (["dataset.path=/nonexistent/train.jsonl"], "dataset.path", "file not found"),
    (["dataset.path=orca-best"], "dataset.path", "org/name"),
    (
        ["reward_models.2.name=verifier"],
        "reward_models.2.name",
        "names must be unique",
    ),
]


@pytest.mark.parametrize(("overrides", "field", "needle"), DEMO_CASES, ids=lambda v: str(v)[:40])
def test_bad_demo_override(demo: str, capsys, overrides, field: str, needle: str) -> None:
    line = _bad(capsys, demo, *overrides, field=field, needle=needle)
    assert "demo.yaml" in line


def test_no_chat_template_in_a_local_source(local: Path, tmp_path: Path, capsys) -> None:
    plain = make_model(tmp_path / "plain", template=False)
    line = _bad(
        capsys, local, f"sources.1.path={plain}", field="sources.1.chat_template", needle="chatml"
    )
    assert "no chat template" in line


def test_no_chat_template_in_a_local_reward_model(local: Path, tmp_path: Path, capsys) -> None:
    plain = make_model(tmp_path / "rm", template=False)
    rm = f"reward_models=[{{name: rm, kind: seq_cls, path: {plain}}}]"
    _bad(capsys, local, rm, field="reward_models.0.chat_template", needle="no chat template")


def test_value_head_file_missing(local: Path, tmp_path: Path, capsys) -> None:
    body = make_model(tmp_path / "body")
    rm = f"reward_models=[{{name: s, kind: value_head, path: {body}, value_head_file: h.bin}}]"
    _bad(capsys, local, rm, field="reward_models.0.value_head_file", needle="not found")


def test_target_path_missing(local: Path, tmp_path: Path, capsys) -> None:
    _bad(capsys, local, f"target_path={tmp_path / 'nope'}", field="target_path", needle="nope")


def test_dataset_of_another_preset(local: Path, tmp_path: Path, capsys) -> None:
    data = write_rows(tmp_path / "alpaca.jsonl", [{"id": "1", "instruction": "i", "output": "o"}])
    line = _bad(
        capsys,
        local,
        f"dataset.path={data}",
        field="dataset.preset",
        needle="missing field 'question'",
    )
    assert "alpaca.jsonl row 1" in line and "fields present: id, instruction, output" in line


def test_dataset_fields_map_names_a_missing_column(local: Path, capsys) -> None:
    _bad(
        capsys,
        local,
        "dataset.preset=fields",
        "dataset.fields={instruction: prompt, response: response}",
        field="dataset.fields.instruction",
        needle="missing field 'prompt'",
    )


def test_dataset_id_field_missing(local: Path, capsys) -> None:
    _bad(capsys, local, "dataset.id_field=uid", field="dataset.id_field", needle="'uid'")


def test_dataset_of_an_unsupported_type(local: Path, tmp_path: Path, capsys) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("question,response\nq,a\n")
    _bad(capsys, local, f"dataset.path={csv}", field="dataset.path", needle=".jsonl, .parquet")


def test_run_checks_values_before_any_work(demo: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "r"
    assert main(["run", demo, "advantage.training_rule=foo", "--out", str(out)]) == 2
    assert "`advantage.training_rule`" in _error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["advantage.training_rule=foo"], "advantage.training_rule"),
        (["sources.0.path=/nonexistent"], "sources.0.path"),
        (["reward_models.1.kind=oracle"], "reward_models.1.kind"),
    ],
)
def test_through_the_command(demo: str, overrides: list[str], field: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "profuser.cli", "validate", demo, *overrides],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"`{field}`" in lines[0], proc.stderr
