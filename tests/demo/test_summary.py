"""The demo's transfer summary over seeds and the intervals pooled over seeds."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from profuser.demo.runs import aggregate, summary_markdown
from profuser.demo.summary import (
    aggregate_transfer,
    interval_text,
    mean_std,
    pooled_intervals,
    study_intervals,
)
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


def test_study_intervals_pair_each_seed_with_the_main_run_of_that_seed() -> None:
    def profuser(add: int, nxt: int) -> dict:
        return next(r for r in _records(add, nxt) if r["kind"] == "variant")

    main = {0: profuser(10, 10), 1: profuser(12, 12)}
    # the study: +2 right items on each skill in seed 0, +4 in seed 1; seed 2 has no main run
    study = {0: profuser(12, 12), 1: profuser(16, 16), 2: profuser(20, 20)}
    got = study_intervals(study, main, resamples=300)
    assert got["seeds"] == [0, 1]
    assert got["estimate"] == pytest.approx((2 / 20 + 4 / 20) / 2)
    # the means over the paired seeds only (seed 2 of the study has no main run)
    assert got["means"]["study"] - got["means"]["main"] == pytest.approx(got["estimate"])
    assert 0 < got["low"] <= got["estimate"] <= got["high"]
    assert got["verdict"] == "held"
    assert interval_text(got).endswith(": held") and interval_text(got).startswith("+15.00 [")
    assert study_intervals({5: profuser(1, 1)}, main) is None
    assert interval_text(None) == "not measured"


# A study's interval against the main runs, +5 points and held.
HELD = {"estimate": 0.05, "low": 0.01, "high": 0.09, "verdict": "held"}


def _profuser_run(avg: float) -> dict:
    """A run's results.json with ProFuser alone at average ``avg``."""
    return {"models": [{"kind": "variant", "name": "profuser", "scores": {"average": avg}}]}


def test_demo_summary_lists_the_studies_with_their_paired_intervals() -> None:
    run = _profuser_run
    results = {"main": [run(0.7)], "rule:single_rm": [run(0.75)], "sources:FuseX": [run(0.6)]}
    summary = aggregate(results)
    summary["rule:single_rm"]["vs_main"] = dict(HELD)
    md = summary_markdown(summary, quick=False)
    assert "- rm_vote (the main runs): 70.0 ± 0.0" in md
    assert (
        "- single_rm: 75.0 ± 0.0; − rm_vote, paired over items and seeds: +5.00 [+1.00, +9.00]: held"
        in md
    )
    assert "- FuseX: 60.0 ± 0.0; − all sources, paired over items and seeds: not measured" in md


def test_a_study_on_fewer_seeds_is_shown_beside_the_main_run_of_those_seeds() -> None:
    run = _profuser_run
    summary = aggregate({"main": [run(0.7), run(0.8)], "rule:single_rm": [run(0.75)]})
    summary["rule:single_rm"]["vs_main"] = {
        "seeds": [0],
        "means": {"study": 0.75, "main": 0.7},
        **HELD,
    }
    md = summary_markdown(summary, quick=False)
    assert "- rm_vote (the main runs): 75.0 ± 7.1" in md
    assert "- single_rm: 75.0 (seed 0; the main run's ProFuser there 70.0); − rm_vote" in md


def test_demo_summary_shows_the_lora_study_against_full_fine_tuning() -> None:
    summary = aggregate({"main": [_profuser_run(0.7)], "train:lora": [_profuser_run(0.65)]})
    summary["train:lora"]["vs_main"] = {**HELD, "estimate": -0.05, "low": -0.09, "high": -0.01}
    md = summary_markdown(summary, quick=False)
    assert "## LoRA fusion" in md
    assert "train.lr=3e-3): 65.0 ± 0.0; − full fine-tuning, paired" in md
    assert "- ProFuser, full fine-tuning: 70.0 ± 0.0" in md
