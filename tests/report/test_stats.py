"""Bootstrap intervals: against plain references and exact hand-made cases."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from profuser.report.stats import (
    Interval,
    bootstrap,
    bootstrap_mean,
    common_cells,
    mean_score,
    verdict,
)


def _items(task_strata: dict[str, dict[str, list[float]]]) -> dict:
    """{task: {stratum: [scores]}} -> item dict with doc ids "0", "1", ..."""
    return {
        t: {s: {str(i): float(v) for i, v in enumerate(vals)} for s, vals in strata.items()}
        for t, strata in task_strata.items()
    }


def _wilson(p: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_binary_mean_interval_is_close_to_wilson() -> None:
    rng = random.Random(1)
    values = [1.0 if rng.random() < 0.3 else 0.0 for _ in range(400)]
    p = sum(values) / len(values)
    iv = bootstrap_mean(values, resamples=4000, seed=5)
    lo, hi = _wilson(p, len(values))
    assert iv.estimate == pytest.approx(p)
    assert iv.low == pytest.approx(lo, abs=0.015) and iv.high == pytest.approx(hi, abs=0.015)
    assert iv.low < p < iv.high


def test_bootstrap_of_one_run_matches_bootstrap_mean_on_one_stratum() -> None:
    values = [0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    a = bootstrap([_items({"t": {"all": values}})], seed=3)
    b = bootstrap_mean(values, seed=3)
    assert a == b


def test_seeded_and_reproducible() -> None:
    runs = [_items({"t": {"x": [0, 1, 1, 0, 1], "y": [1, 1, 0]}})]
    assert bootstrap(runs, seed=7) == bootstrap(runs, seed=7)
    assert bootstrap(runs, seed=7) != bootstrap(runs, seed=8)


def test_constant_data_gives_a_point_interval() -> None:
    iv = bootstrap([_items({"t": {"all": [0.25] * 6}})])
    assert (iv.estimate, iv.low, iv.high) == (0.25, 0.25, 0.25)


def test_strata_keep_their_sizes() -> None:
    # 3 right in stratum x, 1 wrong in stratum y: resampling within strata always gives 3/4;
    # resampling the 4 items together would not.
    iv = bootstrap([_items({"t": {"x": [1, 1, 1], "y": [0]}})])
    assert (iv.estimate, iv.low, iv.high) == (0.75, 0.75, 0.75)


def test_average_is_the_mean_of_task_means() -> None:
    items = _items({"a": {"all": [1.0]}, "b": {"all": [0.0] * 5}})
    iv = bootstrap([items])
    assert (iv.estimate, iv.low, iv.high) == (0.5, 0.5, 0.5)  # not 1/6, the pooled item mean
    assert bootstrap([items], tasks=["b"]).estimate == 0.0


def test_difference_of_identical_models_is_exactly_zero() -> None:
    rng = np.random.default_rng(0)
    items = _items({"t": {"x": list(rng.random(30)), "y": list(rng.integers(0, 2, 12))}})
    iv = bootstrap([items], [items])
    assert (iv.estimate, iv.low, iv.high) == (0.0, 0.0, 0.0)
    assert verdict(iv) == "not distinguishable"


def test_paired_difference_matches_items_by_doc_id_not_order() -> None:
    rng = np.random.default_rng(1)
    base = list(rng.integers(0, 4, 25) / 4)
    a = _items({"t": {"all": [v + 0.25 for v in base]}})
    b = _items({"t": {"all": base}})
    b["t"]["all"] = dict(reversed(list(b["t"]["all"].items())))  # same ids, other order
    iv = bootstrap([a], [b])
    assert (iv.estimate, iv.low, iv.high) == (0.25, 0.25, 0.25)
    assert verdict(iv) == "held" and verdict(bootstrap([b], [a])) == "did not hold"


def test_paired_interval_is_narrower_than_unpaired_reference() -> None:
    # b = a plus a small item-level change: pairing removes the item-difficulty spread.
    rng = np.random.default_rng(2)
    a_vals = rng.integers(0, 2, 200).astype(float)
    b_vals = a_vals.copy()
    b_vals[:10] = 1 - b_vals[:10]
    a, b = _items({"t": {"all": list(a_vals)}}), _items({"t": {"all": list(b_vals)}})
    paired = bootstrap([a], [b], resamples=4000)
    diff = a_vals - b_vals
    normal_width = 2 * 1.959964 * diff.std() / math.sqrt(diff.size)  # paired normal reference
    assert paired.estimate == pytest.approx(diff.mean())
    assert paired.high - paired.low == pytest.approx(normal_width, rel=0.25)
    ia, ib = bootstrap_mean(a_vals, seed=1), bootstrap_mean(b_vals, seed=2)
    unpaired_width = math.hypot(ia.high - ia.low, ib.high - ib.low)
    assert paired.high - paired.low < 0.5 * unpaired_width


def test_pooled_over_seeds_averages_the_per_seed_differences() -> None:
    b = _items({"t": {"all": [0.0, 0.5, 1.0, 0.5]}})
    a1 = _items({"t": {"all": [0.5, 1.0, 1.5, 1.0]}})  # +0.5 on every item
    iv = bootstrap([a1, b], [b, b])  # seed 1: +0.5, seed 2: 0
    assert (iv.estimate, iv.low, iv.high) == (0.25, 0.25, 0.25)


def test_pooled_over_copies_of_one_seed_equals_the_single_seed() -> None:
    rng = np.random.default_rng(3)
    a = _items({"t": {"x": list(rng.random(15)), "y": list(rng.random(9))}})
    b = _items({"t": {"x": list(rng.random(15)), "y": list(rng.random(9))}})
    one, two = bootstrap([a], [b], seed=4), bootstrap([a, a], [b, b], seed=4)
    assert one.estimate == pytest.approx(two.estimate)
    assert one.low == pytest.approx(two.low) and one.high == pytest.approx(two.high)


def test_only_common_items_and_skill_restriction() -> None:
    a = _items({"t": {"x": [1, 1, 1], "y": [0, 0]}})
    b = _items({"t": {"x": [1, 0], "y": [0, 0]}})  # x has docs 0, 1 only
    cells = common_cells([a, b], ["t"], None)
    assert [(c.stratum, c.docs) for c in cells] == [("x", ("0", "1")), ("y", ("0", "1"))]
    iv = bootstrap([a], [b], tasks=["t"], stratum="x")
    assert iv.estimate == pytest.approx(0.5)
    assert mean_score(a, "t") == pytest.approx(0.6) and mean_score(a, "t", "y") == 0.0


def test_missing_items_give_no_interval() -> None:
    a = _items({"t": {"all": [1, 0]}})
    assert bootstrap([a], [{}]) is None
    assert bootstrap([a], tasks=["other"]) is None
    assert bootstrap([a], stratum="x") is None
    assert verdict(None) == "no interval"
    assert mean_score({}, "t") is None


def test_bad_arguments() -> None:
    a = _items({"t": {"all": [1, 0]}})
    with pytest.raises(ValueError, match="as many runs"):
        bootstrap([a, a], [a])
    with pytest.raises(ValueError, match="level"):
        bootstrap([a], level=1.5)
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_mean([])


def test_verdicts() -> None:
    assert verdict(Interval(0.1, 0.01, 0.2)) == "held"
    assert verdict(Interval(-0.1, -0.2, -0.01)) == "did not hold"
    assert verdict(Interval(0.1, -0.01, 0.2)) == "not distinguishable"
    assert Interval(0.1, 0.0, 0.2).as_dict() == {
        "estimate": 0.1,
        "low": 0.0,
        "high": 0.2,
        "level": 0.95,
    }
