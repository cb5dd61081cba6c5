import json
from pathlib import Path

import datasets
import pytest

from profuser.config import DatasetConfig
from profuser.data import load_instructions
from profuser.errors import UserError


def _write(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_openorca_preset(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "o.jsonl",
        [{"id": "a", "system_prompt": "S", "question": "Q", "response": "R", "skill": "k"}],
    )
    rows, rep = load_instructions(DatasetConfig(path=str(p), id_field="id"))
    assert rows == [{"id": "a", "system": "S", "instruction": "Q", "response": "R", "skill": "k"}]
    assert rep.kept == 1


def test_alpaca_sharegpt_messages_fields(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.jsonl", [{"instruction": "Do", "input": "this", "output": "done"}])
    (row,), _ = load_instructions(DatasetConfig(path=str(a), preset="alpaca"))
    assert row["instruction"] == "Do\n\nthis" and row["response"] == "done" and row["system"] == ""
    s = _write(
        tmp_path / "s.jsonl",
        [
            {
                "conversations": [
                    {"from": "system", "value": "sys"},
                    {"from": "human", "value": "hi"},
                    {"from": "gpt", "value": "yo"},
                ]
            }
        ],
    )
    (row,), _ = load_instructions(DatasetConfig(path=str(s), preset="sharegpt"))
    assert (row["system"], row["instruction"], row["response"]) == ("sys", "hi", "yo")
    m = _write(
        tmp_path / "m.jsonl",
        [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}],
    )
    (row,), _ = load_instructions(DatasetConfig(path=str(m), preset="messages"))
    assert (row["instruction"], row["response"]) == ("hi", "yo")
    f = _write(tmp_path / "f.jsonl", [{"prompt": "p", "answer": "x"}])
    (row,), _ = load_instructions(
        DatasetConfig(
            path=str(f), preset="fields", fields={"instruction": "prompt", "response": "answer"}
        )
    )
    assert (row["instruction"], row["response"]) == ("p", "x")


def test_parquet_and_arrow(tmp_path: Path) -> None:
    ds = datasets.Dataset.from_list([{"system_prompt": "", "question": "q", "response": "r"}])
    ds.to_parquet(str(tmp_path / "d.parquet"))
    rows, _ = load_instructions(DatasetConfig(path=str(tmp_path / "d.parquet")))
    assert rows[0]["instruction"] == "q"
    ds.save_to_disk(str(tmp_path / "arrowdir"))
    rows, _ = load_instructions(DatasetConfig(path=str(tmp_path / "arrowdir")))
    assert rows[0]["response"] == "r"


def test_limit_and_seeded_shuffle(tmp_path: Path) -> None:
    p = _write(tmp_path / "o.jsonl", [{"question": f"q{i}", "response": "r"} for i in range(50)])
    a, _ = load_instructions(DatasetConfig(path=str(p), limit=10, seed=3))
    b, _ = load_instructions(DatasetConfig(path=str(p), limit=10, seed=3))
    c, _ = load_instructions(DatasetConfig(path=str(p), limit=10, seed=4))
    assert a == b and a != c and len(a) == 10


def test_empty_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "o.jsonl",
        [
            {"question": "q", "response": ""},
            {"question": " ", "response": "r"},
            {"question": "q", "response": "r"},
        ],
    )
    rows, rep = load_instructions(DatasetConfig(path=str(p)))
    assert len(rows) == 1 and rep.skipped == {"empty response": 1, "empty instruction": 1}


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b'{"question": "q", "response": "r"}\n{oops\n', "row 2 is not valid JSON"),
        (b'{"question": "q"}\n', "row 1: missing field 'response'"),
        (b'{"question": 3, "response": "r"}\n', "row 1: field 'question' is int"),
        (
            b'{"id": "a", "question": "q", "response": "r"}\n{"id": "a", "question": "q", "response": "r"}\n',
            "duplicate id 'a'",
        ),
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (b"", "has no rows"),
        (b"[1, 2]", "expected an object"),
    ],
)
def test_bad_input_names_file_and_row(tmp_path: Path, content: bytes, needle: str) -> None:
    p = tmp_path / ("d.json" if content.startswith(b"[") else "d.jsonl")
    p.write_bytes(content)
    with pytest.raises(UserError) as err:
        load_instructions(DatasetConfig(path=str(p), id_field="id" if b'"id"' in content else None))
    assert needle in str(err.value) and str(p) in str(err.value)


def test_missing_file_and_wrong_format(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="file not found"):
        load_instructions(DatasetConfig(path=str(tmp_path / "nope.jsonl")))
    bad = tmp_path / "x.parquet"
    bad.write_text("not parquet")
    with pytest.raises(UserError, match="cannot read"):
        load_instructions(DatasetConfig(path=str(bad)))
    csv = tmp_path / "x.csv"
    csv.write_text("a,b")
    with pytest.raises(UserError, match="unsupported file type"):
        load_instructions(DatasetConfig(path=str(csv)))


def test_preset_that_does_not_match_the_data(tmp_path: Path) -> None:
    p = _write(tmp_path / "a.jsonl", [{"instruction": "i", "output": "o"}])
    with pytest.raises(UserError, match="missing field 'question'.*dataset.preset"):
        load_instructions(DatasetConfig(path=str(p), preset="openorca"))
