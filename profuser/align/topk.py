"""Merging top-k candidates that land on the same target token, vectorised over rows.

Rows are positions, columns candidate slots; -1 marks an empty slot. Mass of
duplicate ids is summed (log-sum-exp of their log-probs), every row is
renormalised over what is left, and the slots are sorted by probability,
empty ones last. k is small (10), so duplicates are found with a [n, k, k]
comparison rather than a sort.
"""

from __future__ import annotations

import numpy as np

EMPTY_LOGPROB = -np.inf  # log-prob reported in empty (-1) slots


def merge_topk(ids: np.ndarray, logprobs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum duplicate ids per row and renormalise.  # [n, k], [n, k] -> [n, k], [n, k]

    Slots with id -1 (or a non-finite log-prob) carry no mass. A row with no mass
    left comes back all -1 / `EMPTY_LOGPROB`.
    """
    ids = np.asarray(ids, dtype=np.int64)
    lp = np.asarray(logprobs, dtype=np.float64)
    if ids.shape != lp.shape or ids.ndim != 2:
        raise ValueError(f"ids {ids.shape} and logprobs {lp.shape} must be the same [n, k]")
    n, k = ids.shape
    valid = (ids >= 0) & np.isfinite(lp)
    # Shift by the row max before exp so tiny log-probs keep relative precision.
    row_max = np.max(np.where(valid, lp, -np.inf), axis=1, keepdims=True)  # [n, 1]
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)
    p = np.where(valid, np.exp(np.where(valid, lp, 0.0) - row_max), 0.0)  # [n, k]
    same = (ids[:, :, None] == ids[:, None, :]) & valid[:, :, None] & valid[:, None, :]
    mass = (same * p[:, None, :]).sum(axis=2)  # [n, k] mass of each slot's id
    # Keep each id at its first slot only.
    earlier = np.tril(np.ones((k, k), dtype=bool), -1)  # earlier[i, j]: j < i
    dup = (same & earlier).any(axis=2)
    keep = valid & ~dup & (mass > 0)
    mass = np.where(keep, mass, 0.0)
    total = mass.sum(axis=1, keepdims=True)  # [n, 1]
    order = np.argsort(-mass, axis=1, kind="stable")  # kept slots first, by mass
    mass = np.take_along_axis(mass, order, axis=1)
    out_ids = np.where(mass > 0, np.take_along_axis(ids, order, axis=1), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out_lp = np.where(
            mass > 0, np.log(mass) - np.log(np.where(total > 0, total, 1.0)), EMPTY_LOGPROB
        )
    return out_ids, out_lp.astype(np.float32)
