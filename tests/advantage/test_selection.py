"""Selection rules: argmin / argmax, ties to the lowest index, NaN rows, registries."""

from __future__ import annotations

import numpy as np
import pytest

from profuser.advantage.selection import (
    INFERENCE_RULES,
    TRAINING_RULES,
    ce_per_byte,
    get_inference_rule,
    get_training_rule,
    win_share,
)

NAN = np.nan


def test_min_ce_argmin_ties_and_nan_rows():
    ce = np.array(
        [
            [2.0, 1.0, 3.0],
            [1.0, 1.0, 0.5 + 0.5],  # three-way tie -> lowest index
            [NAN, 2.0, 2.0],  # missing source ignored, tie -> 1
            [NAN, NAN, NAN],  # nothing to choose
            [np.inf, NAN, 5.0],
        ]
    )
    sel = get_training_rule("min_ce")(ce)
    assert sel.winner.tolist() == [1, 0, 1, -1, 2]
    assert sel.weights.tolist() == [
        [0, 1, 0],
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 0],
        [0, 0, 1],
    ]


def test_min_ce_per_byte_uses_total_nll():
    # Source 0 has lower mean CE but cuts the text into three times as many tokens.
    ce = np.array([[1.0, 2.0], [1.0, NAN]])
    counts = np.array([[30, 10], [10, 10]])
    nbytes = np.array([40, 40])
    per_byte = ce_per_byte(ce, counts, nbytes)
    np.testing.assert_allclose(per_byte, [[0.75, 0.5], [0.25, NAN]])
    assert get_training_rule("min_ce")(ce).winner.tolist() == [0, 0]
    sel = get_training_rule("min_ce_per_byte")(ce, num_bytes=nbytes, token_counts=counts)
    assert sel.winner.tolist() == [1, 0]
    with pytest.raises(ValueError, match="token_counts"):
        get_training_rule("min_ce_per_byte")(ce)


def test_avg_ce_soft_weights():
    ce = np.array([[1.0, 2.0, NAN], [NAN, NAN, NAN], [3.0, 3.0, 3.0]])
    sel = get_training_rule("avg_ce")(ce)
    e = np.exp(-1.0)
    np.testing.assert_allclose(sel.weights[0], [1 / (1 + e), e / (1 + e), 0.0])
    np.testing.assert_allclose(sel.weights[1], [0, 0, 0])
    np.testing.assert_allclose(sel.weights[2], [1 / 3] * 3)
    assert sel.winner.tolist() == [0, -1, 0]


def test_avg_ce_large_values_stay_finite():
    sel = get_training_rule("avg_ce")(np.array([[1000.0, 1001.0]]))
    assert np.isfinite(sel.weights).all()
    np.testing.assert_allclose(sel.weights.sum(axis=1), 1.0)


def test_inference_rules():
    scores = np.array(
        [
            [[1.0, 0.2], [0.5, 0.9], [0.7, 0.9]],  # RM0 -> 0, RM1 -> 1 (tie 1/2 -> 1)
            [[NAN, NAN], [NAN, NAN], [NAN, NAN]],
        ]
    )
    assert get_inference_rule("single_rm")(scores, 0).winner.tolist() == [0, -1]
    assert get_inference_rule("single_rm")(scores, 1).winner.tolist() == [1, -1]
    # Vote 1-1 between answers 0 and 1; the strongest RM decides.
    assert get_inference_rule("rm_vote")(scores, 0).winner.tolist() == [0, -1]
    assert get_inference_rule("rm_vote")(scores, 1).winner.tolist() == [1, -1]
    similarity = np.array([[0.1, NAN, 0.3], [NAN, NAN, NAN]])  # a [N, K] column
    sel = get_inference_rule("reference")(similarity, 0)
    assert sel.winner.tolist() == [2, -1]
    assert sel.weights.tolist() == [[0, 0, 1], [0, 0, 0]]
    with pytest.raises(ValueError, match="column 2"):
        get_inference_rule("single_rm")(scores, 2)


def test_unknown_names_list_valid_ones():
    with pytest.raises(ValueError, match="avg_ce, min_ce, min_ce_per_byte"):
        get_training_rule("maxce")
    with pytest.raises(ValueError, match="reference, rm_vote, single_rm"):
        get_inference_rule("vote")
    assert set(TRAINING_RULES) == {"min_ce", "min_ce_per_byte", "avg_ce"}
    assert set(INFERENCE_RULES) == {"rm_vote", "single_rm", "reference"}


def test_win_share():
    np.testing.assert_allclose(win_share(np.array([0, 2, 2, -1, 1, 2]), 4), [0.2, 0.2, 0.6, 0])
    np.testing.assert_allclose(win_share(np.array([-1, -1]), 2), [0, 0])
    with pytest.raises(ValueError):
        win_share(np.array([3]), 2)
