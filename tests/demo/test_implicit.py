"""The implicit-fusion study's per-skill comparison with ProFuser."""

from __future__ import annotations

from pathlib import Path

import pytest

from profuser.demo.implicit import implicit_comparison, implicit_figure, implicit_markdown

N = 20


def _items(right: dict[str, int]) -> dict:
    return {"world_gen": {s: {str(i): float(i < k) for i in range(N)} for s, k in right.items()}}


def _rec(name: str, right: dict[str, int]) -> dict:
    scores = {"world_gen": sum(right.values()) / (N * len(right))}
    return {"kind": "variant", "name": name, "scores": scores, "items": _items(right)}


def test_each_variant_is_paired_with_profuser_per_skill(tmp_path: Path) -> None:
    seeds = [
        [
            _rec("profuser", {"add": 10, "next": 10, "parity": 10}),
            _rec("implicit", {"add": 19, "next": 1, "parity": 10}),
            _rec("infifpo", {"add": 10, "next": 10, "parity": 11}),
        ]
        for _ in range(2)
    ]
    got = implicit_comparison(seeds, resamples=300)
    assert got["seeds"] == 2 and set(got["variants"]) == {"implicit", "infifpo"}
    skills = got["variants"]["implicit"]["skills"]
    assert skills["world_gen/add"]["estimate"] == pytest.approx(9 / N)
    assert skills["world_gen/add"]["verdict"] == "held"
    assert skills["world_gen/next"]["verdict"] == "did not hold"
    assert skills["world_gen/parity"]["verdict"] == "not distinguishable"
    assert got["variants"]["implicit"]["average"]["estimate"] == pytest.approx(0.0)
    md = "\n".join(implicit_markdown(got))
    assert "| skill | implicit | infifpo |" in md
    assert (
        "| world_gen/add | +45.0 [" in md
        and "] beats |" in md.split("world_gen/add")[1].split("\n")[0]
    )
    assert "- implicit: beats ProFuser on 1 skill(s), loses on 1, not distinguishable on 1" in md
    implicit_figure(got, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000
    assert implicit_comparison([]) is None and implicit_markdown(None) == []
