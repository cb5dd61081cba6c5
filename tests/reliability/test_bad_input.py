"""Bad input through the command line: one line naming what is wrong, exit 2, no traceback."""

import errno
import json
from pathlib import Path

import pytest
import yaml

from profuser.cli import main
from profuser.errors import UserError
from profuser.io import read_json
from tests.stages.test_end_to_end import _config


def _err(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "an error message is printed"
    assert not any("Traceback" in line for line in err)
    return err[-1]


def _edit(cfg: Path, fn) -> None:
    tree = yaml.safe_load(cfg.read_text())
    fn(tree)
    cfg.write_text(yaml.safe_dump(tree))


def test_config_typo(tmp_path: Path, mini_world: Path, capsys) -> None:
    cfg = _config(mini_world, tmp_path)
    assert main(["run", str(cfg), "advantage.topk=3", "--out", str(tmp_path / "r")]) == 2
    assert "did you mean `advantage.top_k`" in _err(capsys)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (
            b'{"id": "a", "question": "q", "response": "r"}\n{"id": "a", "question": "q2", "response": "r"}\n',
            "duplicate id 'a'",
        ),
        (b'{"id": "a", "question": 5, "response": "r"}\n', "row 1: field 'question' is int"),
        (b"\xff\xfe\xfd", "not UTF-8"),
        (b'{"id": "a", "instruction": "q", "output": "r"}\n', "missing field 'question'"),
    ],
)
def test_bad_dataset_rows(
    tmp_path: Path, mini_world: Path, capsys, content: bytes, needle: str
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_bytes(content)
    cfg = _config(mini_world, tmp_path)
    _edit(cfg, lambda t: t["dataset"].update(path=str(data)))
    assert main(["run", str(cfg), "--out", str(tmp_path / "r")]) == 2
    msg = _err(capsys)
    assert needle in msg and "bad.jsonl" in msg


def test_dataset_file_missing(tmp_path: Path, mini_world: Path, capsys) -> None:
    cfg = _config(mini_world, tmp_path)
    _edit(cfg, lambda t: t["dataset"].update(path=str(tmp_path / "gone.jsonl")))
    assert main(["run", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert "gone.jsonl" in _err(capsys)


def test_tokenizer_without_chat_template(tmp_path: Path, mini_world: Path, capsys) -> None:
    import shutil

    model = tmp_path / "plain"
    shutil.copytree(mini_world / "models" / "neox-like", model)
    tc = json.loads((model / "tokenizer_config.json").read_text())
    tc.pop("chat_template", None)
    (model / "tokenizer_config.json").write_text(json.dumps(tc))
    (model / "chat_template.jinja").unlink(missing_ok=True)
    cfg = _config(mini_world, tmp_path)
    _edit(cfg, lambda t: t["sources"][3].update(path=str(model)))
    # refused before any work, naming the field to set
    assert main(["run", str(cfg), "--out", str(tmp_path / "r"), "--stage", "data"]) == 2
    msg = _err(capsys)
    assert "sources.3.chat_template" in msg and not (tmp_path / "r").exists()
    # a stage that opens the tokenizer says so too (the files can change after the check)
    from profuser.config import load_config
    from profuser.pipeline import run_pipeline

    run_pipeline(load_config(cfg), tmp_path / "r2", only="data")
    run_pipeline(load_config(cfg), tmp_path / "r2", only="select")
    with pytest.raises(UserError, match="chat template"):
        run_pipeline(load_config(cfg), tmp_path / "r2", only="generate")


def test_stage_out_of_order(tmp_path: Path, mini_world: Path, capsys) -> None:
    cfg = _config(mini_world, tmp_path)
    assert main(["run", str(cfg), "--out", str(tmp_path / "r"), "--stage", "teacher"]) == 2
    assert "needs stage 'select'" in _err(capsys)


def test_disk_full_mid_stage_keeps_what_was_done(
    tmp_path: Path, mini_world: Path, capsys, monkeypatch
) -> None:
    import profuser.io.shards as shards

    cfg = _config(mini_world, tmp_path)
    _edit(cfg, lambda t: t["advantage"].update(shard_size=10))
    out = tmp_path / "r"
    assert main(["run", str(cfg), "--out", str(out), "--stage", "data"]) == 0
    assert main(["run", str(cfg), "--out", str(out), "--stage", "select"]) == 0
    real = shards.write_rows
    calls = {"n": 0}

    def flaky(path, rows):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, rows)

    monkeypatch.setattr(shards, "write_rows", flaky)
    assert main(["run", str(cfg), "--out", str(out), "--stage", "generate"]) == 2
    assert "disk full" in _err(capsys)
    kept = sorted(p.name for p in (out / "generate").rglob("shard-*.parquet"))
    assert len(kept) == 2
    monkeypatch.setattr(shards, "write_rows", real)
    assert main(["run", str(cfg), "--out", str(out), "--stage", "generate"]) == 0
    assert read_json(out / "generate" / "manifest.json")["complete"]


def test_row_with_every_answer_empty_falls_back_to_training_mode(
    tmp_path: Path, mini_world: Path
) -> None:
    from profuser.io.shards import read_rows, read_rows_file, write_rows

    cfg = _config(mini_world, tmp_path)
    out = tmp_path / "r"
    assert main(["run", str(cfg), "--out", str(out), "--stage", "data"]) == 0
    assert main(["run", str(cfg), "--out", str(out), "--stage", "select"]) == 0
    assert main(["run", str(cfg), "--out", str(out), "--stage", "generate"]) == 0
    victim = None
    for shard in sorted((out / "generate").glob("*/shard-*.parquet")):
        rows = read_rows(shard.parent)
        victim = victim or rows[0]["id"]
        for r in rows:
            if r["id"] == victim:
                r.update(answer="", empty=True, num_tokens=0)
        for f in shard.parent.glob("shard-*.parquet"):
            f.unlink()
        write_rows(shard.parent / "shard-00000.parquet", rows)
    assert main(["run", str(cfg), "--out", str(out), "--stage", "score"]) == 0
    summary = read_json(out / "score" / "manifest.json")["summary"]
    assert summary["no_valid_answer"] == 1
    chosen = {r["id"]: r for r in read_rows_file(out / "score" / "chosen.parquet")}
    assert chosen[victim]["winner"] == ""
    # the rest of the pipeline runs; that example trains in training mode only
    assert main(["run", str(cfg), "--out", str(out)]) == 0
    assert read_json(out / "train" / "manifest.json")["summary"]["with_inference_answer"] == 39


def test_unreadable_dataset_file(tmp_path: Path, mini_world: Path, capsys) -> None:
    unreadable = tmp_path / "data.jsonl"
    unreadable.mkdir()  # a directory where a file is expected: reading it fails
    cfg = _config(mini_world, tmp_path)
    _edit(cfg, lambda t: t["dataset"].update(path=str(unreadable)))
    assert main(["run", str(cfg), "--out", str(tmp_path / "r")]) == 2
    msg = _err(capsys)  # refused before any work by the config check
    assert "`dataset.path`" in msg and "data.jsonl" in msg and "is a directory" in msg
    # and the data stage, reading it, says it cannot (the file may change after the check)
    from profuser.config import load_config
    from profuser.pipeline import run_pipeline

    with pytest.raises(UserError, match="cannot read"):
        run_pipeline(load_config(cfg), tmp_path / "r2", only="data")
