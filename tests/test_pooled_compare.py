"""scripts/pooled_compare.py: paired differences over run directories, with verdicts."""

import importlib.util
from pathlib import Path

import pytest

from profuser.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("pc", ROOT / "scripts" / "pooled_compare.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(path: Path, a: list[float], b: list[float]) -> Path:
    rows = []
    for name, vals in (("a", a), ("b", b)):
        items = {"t": {"s": {str(i): v for i, v in enumerate(vals)}}}
        avg = sum(vals) / len(vals)
        rows.append({"kind": "variant", "name": name, "scores": {"t": avg}, "average": avg})
        atomic_write_json(path / "eval" / "models" / f"variant-{name}.json", {"items": items})
    atomic_write_json(path / "eval" / "scores.json", rows)
    return path


def test_pooled_compare_prints_held_and_not_distinguishable(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    better = [1.0] * 90 + [0.0] * 10
    worse = [1.0] * 40 + [0.0] * 60
    runs = [_run(tmp_path / f"s{i}", better, worse) for i in range(2)]
    assert _script().main([*map(str, runs), "--pair", "variant-a:variant-b"]) == 0
    out = capsys.readouterr().out
    assert "variant-a − variant-b (average, 2 runs): +50.0" in out and "held" in out
    same = [_run(tmp_path / "same", better, better)]
    _script().main([str(same[0]), "--pair", "variant-a:variant-b", "--task", "t"])
    assert capsys.readouterr().out.count("not distinguishable") == 2
    assert _script().main([str(same[0]), "--pair", "variant-a:variant-zz"]) == 1
