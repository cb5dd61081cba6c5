"""rm_vote against a plain-loop reference, on tie-heavy integer scores with NaNs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from profuser.advantage import rm_vote


def reference_vote(scores: np.ndarray, strongest: int) -> list[int]:
    """The rules written out one example at a time."""
    n, k, r = scores.shape
    winners = []
    for i in range(n):
        votes = [0] * k
        for m in range(r):
            best, best_j = None, None
            for j in range(k):
                s = scores[i, j, m]
                if math.isnan(s):
                    continue
                if best is None or s > best:
                    best, best_j = s, j
            if best_j is not None:
                votes[best_j] += 1
        if max(votes, default=0) == 0:
            winners.append(-1)
            continue
        tied = [j for j in range(k) if votes[j] == max(votes)]
        winner = tied[0]
        for j in tied[1:]:
            a, b = scores[i, j, strongest], scores[i, winner, strongest]
            if not math.isnan(a) and (math.isnan(b) or a > b):
                winner = j
        winners.append(winner)
    return winners


def random_scores(rng: np.random.Generator, n: int, k: int, r: int, nan_rate: float) -> np.ndarray:
    scores = rng.integers(0, 3, size=(n, k, r)).astype(np.float64)  # few values: many ties
    scores[rng.random((n, k, r)) < nan_rate] = np.nan
    return scores


@pytest.mark.parametrize("seed", range(5))
def test_matches_reference_on_random_ties(seed):
    rng = np.random.default_rng(seed)
    for k, r in [(1, 1), (2, 3), (3, 3), (4, 2), (5, 4)]:
        scores = random_scores(rng, 400, k, r, nan_rate=0.25)
        strongest = int(rng.integers(0, r))
        got = rm_vote(scores, strongest)
        assert got.dtype == np.int64 and got.shape == (400,)
        assert got.tolist() == reference_vote(scores, strongest)


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    shape=st.tuples(st.integers(0, 6), st.integers(1, 5), st.integers(1, 4)),
)
def test_matches_reference_hypothesis(data, shape):
    values = st.one_of(st.sampled_from([0.0, 1.0, 2.0, -np.inf, np.inf]), st.just(np.nan))
    scores = data.draw(hnp.arrays(np.float64, shape, elements=values))
    strongest = data.draw(st.integers(0, shape[2] - 1))
    assert rm_vote(scores, strongest).tolist() == reference_vote(scores, strongest)


def test_majority_wins_over_strongest_rm():
    # RMs 0 and 1 prefer answer 1; the strongest (2) prefers answer 0.
    scores = np.array([[[0.1, 0.2, 0.9], [0.5, 0.6, 0.1]]])
    assert rm_vote(scores, strongest=2).tolist() == [1]


def test_vote_tie_broken_by_strongest():
    # Three answers, each gets one vote; the strongest RM (1) ranks answer 2 highest
    # among the tied answers.
    scores = np.array([[[9, 0, 0], [0, 1, 9], [0, 8, 0]]], dtype=float)
    assert rm_vote(scores, strongest=1).tolist() == [2]


def test_all_nan_row_and_abstaining_rm():
    scores = np.full((2, 3, 2), np.nan)
    scores[1, 2, 0] = 0.0  # only RM 0 votes, for answer 2; RM 1 abstains
    assert rm_vote(scores, strongest=1).tolist() == [-1, 2]


def test_minus_inf_beats_missing():
    scores = np.array([[[np.nan], [-np.inf]]])
    assert rm_vote(scores, strongest=0).tolist() == [1]


def test_bad_arguments():
    with pytest.raises(ValueError, match="N, K, R"):
        rm_vote(np.zeros((3, 2)), strongest=0)
    with pytest.raises(ValueError, match="strongest"):
        rm_vote(np.zeros((3, 2, 2)), strongest=2)
    assert rm_vote(np.zeros((0, 3, 2)), strongest=0).shape == (0,)
