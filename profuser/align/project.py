"""Source distributions at source positions -> target positions, with an unaligned policy.

Convention: row i of a stored distribution is the one that *predicts* token i
of the response (the model's output at the position before it). So target
token j takes the source row of the source token that starts at the same
character (``target_to_source[j]``): both predict the text starting there.

A target position is *unaligned* when no source token starts at its character,
or when the source candidates there have no mass left after vocabulary mapping.
The policy (the config's ``advantage.unaligned``) decides what it gets:

* ``onehot_gt``: all mass on the target's own next token (the GT token), so the
  distillation term there equals SFT on that token;
* ``skip``: no distillation there (``mask`` False, no candidates).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from profuser.align.topk import EMPTY_LOGPROB


@dataclass
class Projection:
    """Target-position, target-vocabulary candidates for one response."""

    ids: np.ndarray  # [n_t, k] target ids, -1 for empty slots
    logprobs: np.ndarray  # [n_t, k] float32, EMPTY_LOGPROB for empty slots
    mask: np.ndarray  # [n_t] bool: distil at this position
    aligned: np.ndarray  # [n_t] bool: the row came from a source distribution


def _onehot_gt(
    ids: np.ndarray, lps: np.ndarray, mask: np.ndarray, rows: np.ndarray, target_ids: np.ndarray
) -> None:
    ids[rows, 0] = target_ids[rows]
    lps[rows, 0] = 0.0
    mask[rows] = True


def _skip(
    ids: np.ndarray, lps: np.ndarray, mask: np.ndarray, rows: np.ndarray, target_ids: np.ndarray
) -> None:
    mask[rows] = False


# Each policy fills the unaligned ``rows`` of (ids, logprobs, mask) in place.
UNALIGNED_POLICIES: dict[str, Callable[..., None]] = {"onehot_gt": _onehot_gt, "skip": _skip}


def project_to_target(
    target_ids: np.ndarray,
    target_to_source: np.ndarray,
    source_ids: np.ndarray,
    source_logprobs: np.ndarray,
    policy: str = "onehot_gt",
) -> Projection:
    """Gather mapped source rows at target positions.  # [n_t], [n_t], [n_s, k], [n_s, k]

    ``source_ids``/``source_logprobs`` are already in the target vocabulary
    (`TokenAligner.map_topk`), one row per source token.
    """
    if policy not in UNALIGNED_POLICIES:
        raise ValueError(
            f"unknown unaligned policy {policy!r}; choose from {sorted(UNALIGNED_POLICIES)}"
        )
    target_ids = np.asarray(target_ids, dtype=np.int64)
    t2s = np.asarray(target_to_source, dtype=np.int64)
    src_ids = np.asarray(source_ids, dtype=np.int64)
    src_lps = np.asarray(source_logprobs, dtype=np.float32)
    if len(t2s) != len(target_ids):
        raise ValueError(f"{len(target_ids)} target ids but {len(t2s)} alignment entries")
    if src_ids.shape != src_lps.shape or src_ids.ndim != 2:
        raise ValueError(f"source ids {src_ids.shape} / logprobs {src_lps.shape}: need [n_s, k]")
    if len(t2s) and t2s.max(initial=-1) >= len(src_ids):
        raise ValueError("alignment points past the source rows given")
    n_t, k = len(target_ids), src_ids.shape[1]
    ids = np.full((n_t, k), -1, dtype=np.int64)
    lps = np.full((n_t, k), EMPTY_LOGPROB, dtype=np.float32)
    aligned = t2s >= 0
    rows = np.flatnonzero(aligned)
    ids[rows] = src_ids[t2s[rows]]
    lps[rows] = src_lps[t2s[rows]]
    has_mass = (ids >= 0).any(axis=1)
    aligned &= has_mass
    ids[~aligned] = -1
    lps[~aligned] = EMPTY_LOGPROB
    mask = aligned.copy()
    UNALIGNED_POLICIES[policy](ids, lps, mask, np.flatnonzero(~aligned), target_ids)
    return Projection(ids=ids, logprobs=lps, mask=mask, aligned=aligned)
