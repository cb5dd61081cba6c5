"""`profuser bench area.option=value`: options reach the benchmark function, bad ones are one line."""

from __future__ import annotations

import json

import pytest

from profuser.bench import registry
from profuser.cli import main


@pytest.fixture
def fake_bench(monkeypatch):
    seen: dict = {}

    def fake(rounds: int = 3, label: str = "x") -> dict:
        seen.update(rounds=rounds, label=label)
        return {"fake.rounds": rounds}

    registry.available()  # import the real areas first, then add ours beside them
    monkeypatch.setitem(registry._BENCHES, "fake", fake)
    return seen


def test_options_reach_the_function(fake_bench, capsys) -> None:
    assert main(["bench", "fake", "fake.rounds=1", "fake.label=y", "--json"]) == 0
    assert fake_bench == {"rounds": 1, "label": "y"}
    assert json.loads(capsys.readouterr().out) == {"fake.rounds": 1}


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["fake", "fake.nope=1"], "fake takes rounds, label"),
        (["fake", "other.rounds=1"], "'other' is not one of the benchmarks run (fake)"),
    ],
)
def test_bad_option_is_one_line(fake_bench, capsys, args: list[str], named: str) -> None:
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert named in err and len(err.splitlines()) == 1 and "Traceback" not in err
