"""The demo's transfer summary over seeds and the intervals pooled over seeds."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from profuser.demo.runs import aggregate, summary_markdown
from profuser.demo.summary import aggregate_transfer, mean_std, pooled_intervals
from profuser.report.transfer import transfer_table

N = 20


def _right(k: int) -> dict[str, float]:
    return {str(i): 1.0 if i < k else 0.0 for i in range(N)}


def _records(pf_add: int, pf_next: int) -> list[dict]:
    """t leads `add` (18 vs 2), source b leads `next` (18 vs 2); ProFuser as given."""
    right = {
        ("source", "t"): (18, 2),
        ("source", "b"): (2, 18),
        ("variant", "profuser"): (pf_add, pf_next),
    }
    out = []
    for (kind, name), (add, nxt) in right.items():
        items = {"world_gen": {"add": _right(add), "next": _right(nxt)}}
        scores = {"world_gen": (add + nxt) / (2 * N)}
        out.append({"kind": kind, "name": name, "scores": scores, "items": items})
    return out


SEEDS = [(14, 10), (10, 14)]  # ProFuser's items right (add, next) in two seeds


def test_aggregate_transfer_is_mean_and_std_of_the_seeds() -> None:
    tables = [transfer_table(_records(*s), "t", resamples=200) for s in SEEDS]
    agg = aggregate_transfer([*tables, None])
    assert agg["seeds"] == 2 and agg["target"] == "source-t"
    add = agg["tasks"]["world_gen"]["add"]
    pf = "variant-profuser"
    assert add["kinds"] == ["target-led"]
    assert add["scores"][pf] == pytest.approx([0.6, statistics.stdev([0.7, 0.5])])
    assert add["scores"]["source-t"] == [0.9, 0.0]
    assert add["retained"][pf] == pytest.approx(mean_std([14 / 18, 10 / 18]))
    takeovers = [(10 - 2) / 16, (14 - 2) / 16]
    assert agg["tasks"]["world_gen"]["next"]["takeover"][pf] == pytest.approx(mean_std(takeovers))
    summary = agg["variants"][pf]
    assert summary["median_takeover"] == pytest.approx(mean_std(takeovers))
    gaps = [t["variants"][pf]["oracle_gap_closed"] for t in tables]
    assert summary["oracle_gap_closed"] == pytest.approx(mean_std(gaps))
    assert agg["oracle"]["average"] == pytest.approx([0.9, 0.0])
    assert aggregate_transfer([None, {}]) is None


def test_mean_std_skips_missing_values() -> None:
    assert mean_std([0.2, None, 0.4]) == pytest.approx([0.3, statistics.stdev([0.2, 0.4])])
    assert mean_std([0.5]) == [0.5, 0.0]
    assert all(math.isnan(v) for v in mean_std([None]))


def test_pooled_intervals_average_the_seeds_differences() -> None:
    # seed 1: ProFuser = target on every item; seed 2: +2 items on each skill
    seeds = [_records(18, 2), _records(20, 4)]
    got = pooled_intervals(seeds, "t", resamples=300)
    d = got["profuser_vs_target"]
    assert (d["a"], d["b"]) == ("variant-profuser", "source-t")
    assert d["estimate"] == pytest.approx((0 + 4 / 40) / 2)
    assert d["low"] <= d["estimate"] <= d["high"]
    assert d["verdict"] in {"held", "not distinguishable"}
    # t and b average the same (0.5): the first of equals is the best source
    assert got["profuser_vs_best_source"]["b"] == "source-t"
    assert got["seeds"] == 2 and got["level"] == 0.95


def test_pooled_intervals_without_items_or_profuser() -> None:
    seeds = [_records(18, 2)]
    for r in seeds[0]:
        r["items"] = {}
    got = pooled_intervals(seeds, "t")
    assert got["profuser_vs_target"]["verdict"] == "no interval"
    assert "estimate" not in got["profuser_vs_target"]
    no_pf = [[r for r in _records(18, 2) if r["kind"] == "source"]]
    assert pooled_intervals(no_pf, "t")["profuser_vs_target"] is None


def test_demo_summary_carries_the_transfer_and_pooled_intervals() -> None:
    def as_written(obj: dict) -> dict:  # results.json is written with sorted keys
        return json.loads(json.dumps(obj, sort_keys=True))

    results = {
        "main": [
            as_written({"models": [], "transfer": transfer_table(_records(*s), "t", resamples=200)})
            for s in SEEDS
        ]
    }
    summary = aggregate(results)
    summary["main"]["pooled_intervals"] = pooled_intervals(
        [_records(*s) for s in SEEDS], "t", resamples=200
    )
    md = summary_markdown(summary, quick=False)
    assert "## Per-skill transfer (mean ± std over 2 seed(s), %)" in md
    table = md.split("### world_gen")[1].strip().splitlines()
    assert table[2] == "| target: t | 90.0 ± 0.0 | 10.0 ± 0.0 |"  # the target first
    assert [r.split(" |")[0] for r in table[3:5]] == ["| source: b", "| variant: profuser"]
    assert "| *kind* | target-led | source-led |" in md
    assert "## Pooled 95% intervals over 2 seed(s)" in md
    assert "profuser − target (source-t): +10.00" in md
    assert "profuser − best source (source-t)" in md
    old = aggregate({"main": [{"models": []}]})  # an old results.json: no transfer section
    assert old["main"]["transfer"] is None
    assert "Per-skill transfer" not in summary_markdown(old, quick=True)
