"""Reward-model voting: the paper's inference-mode selection (section 3.2, appendix E).

Each reward model (RM) votes for the answer it scores highest; the answer with
the most votes wins; a tie in votes is broken by the score of the strongest RM.
Everything is vectorised over examples, so scoring a whole data set is one call.
"""

from __future__ import annotations

import numpy as np


def _first_true(mask: np.ndarray) -> np.ndarray:
    """Index of the first True along the last axis, -1 where a row has none."""
    # argmax returns 0 for an all-False row, so those rows are patched afterwards.
    first = np.argmax(mask, axis=-1)
    return np.where(mask.any(axis=-1), first, -1)


def best_valid(values: np.ndarray) -> np.ndarray:
    """Index of the highest non-NaN value along the last axis; ties to the lowest index.

    Returns -1 where every value is NaN. NaN is treated as missing rather than
    as -inf, so a genuine score of -inf still beats a missing one.
    """
    valid = ~np.isnan(values)
    # Filling NaN with -inf would make a missing entry tie with a real -inf score,
    # so the maximum is taken over valid entries and ties are resolved by mask.
    filled = np.where(valid, values, -np.inf)
    top = filled.max(axis=-1, initial=-np.inf, keepdims=True)
    return _first_true(valid & (filled == top))


def rm_vote(scores: np.ndarray, strongest: int) -> np.ndarray:
    """Pick, per example, the answer that most reward models prefer.

    Args:
        scores: float array ``[N, K, R]``: N examples, K candidate answers (one
            per source), R reward models. NaN marks a missing answer or a score
            that failed.
        strongest: index (in ``0..R-1``) of the RM that breaks ties in votes.

    Returns:
        int64 array ``[N]``: the winning answer per example, or -1 where no RM
        scored any answer.

    Rules, in order: each RM votes for its highest-scoring answer, ignoring NaN
    (ties within one RM go to the lowest index; an RM with only NaN in a row
    does not vote). The answer with the most votes wins. Among answers tied on
    votes, the one the strongest RM scores highest wins (a NaN there counts as
    lower than any score). A remaining exact tie goes to the lowest index.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 3:
        raise ValueError(f"rm_vote expects scores of shape [N, K, R], got {scores.shape}")
    n, k, r = scores.shape
    if not 0 <= strongest < r:
        raise ValueError(f"strongest={strongest} is not a reward-model index in 0..{r - 1}")
    if n == 0 or k == 0:
        return np.full(n, -1, dtype=np.int64)

    # Each RM's choice: put the candidate axis last so best_valid works per (example, RM).
    choices = best_valid(np.swapaxes(scores, 1, 2))  # [N, R], -1 = abstains
    votes = np.zeros((n, k), dtype=np.int64)  # [N, K]
    rows, rms = np.nonzero(choices >= 0)
    np.add.at(votes, (rows, choices[rows, rms]), 1)

    most = votes.max(axis=1, keepdims=True)  # [N, 1]
    tied = (votes == most) & (most > 0)  # [N, K]

    # Tie-break on the strongest RM, restricted to tied answers it actually scored;
    # when it scored none of them, all tied answers stay in and the lowest index wins.
    strong = scores[:, :, strongest]  # [N, K]
    strong_in_tie = np.where(tied, strong, np.nan)
    scored = tied & ~np.isnan(strong)
    best_strong = np.where(scored, strong, -np.inf).max(axis=1, keepdims=True)
    has_scored = scored.any(axis=1, keepdims=True)
    keep = np.where(has_scored, scored & (strong_in_tie == best_strong), tied)
    return _first_true(keep).astype(np.int64)
