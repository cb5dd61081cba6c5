import numpy as np
import pytest

from profuser.config import load_config
from profuser.curate.rules import SELECT_RULES, PoolGaps, get_select_rule
from profuser.errors import ConfigError

NAN = np.nan
# columns: target, a, b (CE per byte); leaders: b, target, a, a, b, target, none
CE = np.array(
    [
        [2.0, 1.5, 0.5],  # gap 1.5, b
        [0.2, 1.0, 1.1],  # gap -0.8, target
        [1.0, 0.9, 1.2],  # gap 0.1, a
        [3.0, 0.5, NAN],  # gap 2.5, a
        [1.0, NAN, 0.4],  # gap 0.6, b
        [0.5, 0.6, 0.7],  # gap -0.1, target
        [NAN, NAN, NAN],  # nobody scored it
    ]
)


def test_gap_and_leader_on_hand_made_numbers() -> None:
    g = PoolGaps(CE)
    np.testing.assert_allclose(g.gap[:6], [1.5, -0.8, 0.1, 2.5, 0.6, -0.1])
    assert np.isnan(g.gap[6])
    assert g.leader.tolist() == [2, 0, 1, 1, 2, 0, -1]


def test_random_is_a_seeded_draw_without_replacement() -> None:
    rule = get_select_rule("random")
    a = rule.fn(100, None, 30, 0)
    assert len(set(a.tolist())) == 30 and (np.diff(a) > 0).all() and not rule.needs_gaps
    assert (a == rule.fn(100, None, 30, 0)).all()
    assert not (a == rule.fn(100, None, 30, 1)).all()


def test_advantage_gap_keeps_the_widest_gaps_and_unscored_rows_last() -> None:
    rule = get_select_rule("advantage_gap")
    assert rule.needs_gaps
    assert rule.fn(7, PoolGaps(CE), 3, 0).tolist() == [0, 3, 4]
    assert 6 in rule.fn(7, PoolGaps(CE), 7, 0).tolist()  # only when the budget reaches it


def test_stratified_gives_every_leader_its_share_of_its_strongest_rows() -> None:
    rule = get_select_rule("advantage_stratified")
    # three leaders, one row each: a's widest (row 3), b's widest (row 0), and the row the
    # target leads by most (row 1, gap -0.8), though its gap is the smallest of all
    assert rule.fn(7, PoolGaps(CE), 3, 0).tolist() == [0, 1, 3]
    # six rows: two each
    assert rule.fn(7, PoolGaps(CE), 6, 0).tolist() == [0, 1, 2, 3, 4, 5]


def test_stratified_gives_a_share_a_leader_cannot_fill_to_the_widest_gaps_left() -> None:
    ce = np.array([[1.0, 0.1], [1.0, 0.2], [1.0, 0.3], [1.0, 0.4], [0.1, 1.0]])  # target leads once
    keep = get_select_rule("advantage_stratified").fn(5, PoolGaps(ce), 4, 0)
    assert keep.tolist() == [0, 1, 2, 4]


def test_the_rule_is_checked_when_the_config_is_read() -> None:
    assert set(SELECT_RULES) >= {"random", "advantage_gap", "advantage_stratified"}
    cfg = load_config("demo", ["select.rule=advantage_gap", "select.rows=600"])
    assert cfg.select.rule == "advantage_gap" and cfg.select.rows == 600
    with pytest.raises(ConfigError, match="select.rule.*choose one of advantage_gap"):
        load_config("demo", ["select.rule=nope"])
    with pytest.raises(ConfigError, match="select.rows"):
        load_config("demo", ["select.rows=0"])
