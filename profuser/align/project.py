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

`count_mass` accounts for the teacher's mass at the *anchored* target positions
(those with a source token starting at the same character, whatever the
vocabulary map then does with its candidates): each such row's stored top-k
mass is renormalised to 1 and split by how each candidate reached the target
vocabulary (`profuser.align.vocab_map.MAP_KINDS`: exact, prefix, unk,
dropped); `mass_shares` turns the sums into shares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from profuser.align.topk import EMPTY_LOGPROB
from profuser.align.vocab_map import MAP_KINDS


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


@dataclass
class MassCount:
    """Where a response's teacher mass went, in units of target positions."""

    positions: int  # target positions
    anchored: int  # of them with a source token at the same anchor (a source row)
    mass: np.ndarray  # [len(MAP_KINDS)] float64: each anchored row's shares, summed
    stored: float  # stored (not renormalised) top-k mass, summed over the anchored rows


def count_mass(
    target_to_source: np.ndarray,
    source_ids: np.ndarray,
    source_logprobs: np.ndarray,
    how: np.ndarray,
) -> MassCount:
    """Split the teacher mass at anchored target positions by map kind.  # [n_t], [n_s, k] x3

    ``source_ids``/``source_logprobs`` are the stored source candidates (source
    vocabulary, log-probs of the full distribution); ``how`` is each candidate's
    `MAP_KINDS` index (`VocabMap.lookup_how` with the alignment's contexts). A row
    with no stored mass counts as anchored but adds no mass.
    """
    t2s = np.asarray(target_to_source, dtype=np.int64)
    rows = t2s[t2s >= 0]
    ids = np.asarray(source_ids)[rows]
    lp = np.asarray(source_logprobs, dtype=np.float64)[rows]
    kinds = np.asarray(how)[rows]
    valid = (ids >= 0) & np.isfinite(lp)
    p = np.where(valid, np.exp(np.where(valid, lp, 0.0)), 0.0)  # [m, k]
    total = p.sum(axis=1, keepdims=True)  # [m, 1]
    share = np.where(total > 0, p / np.where(total > 0, total, 1.0), 0.0)
    mass = np.array([share[kinds == i].sum() for i in range(len(MAP_KINDS))])
    return MassCount(len(t2s), len(rows), mass, float(total.sum()))


def mass_shares(positions: int, anchored: int, mass: np.ndarray, stored: float) -> dict:
    """Summed `MassCount` fields -> ``positions_aligned``, a share per `MAP_KINDS` entry
    (of the renormalised mass at anchored positions) and ``stored_mass`` (mean per row)."""
    total = float(np.sum(mass))
    out: dict = {"positions_aligned": round(anchored / positions, 4) if positions else None}
    for name, m in zip(MAP_KINDS, mass, strict=True):
        out[name] = round(float(m) / total, 5) if total > 0 else None
    out["stored_mass"] = round(stored / anchored, 4) if anchored else None
    return out
