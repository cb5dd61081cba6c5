"""Which examples each optimizer step sees: a pure function of (seed, phase, step).

Because the order is recomputed rather than stored, a run resumed at any step
sees exactly the examples an uninterrupted run would have seen.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from profuser.errors import UserError
from profuser.train.examples import FusionExample
from profuser.train.schedules import Phase


def difficulty(ex: FusionExample, key: str) -> float:
    """Smaller is easier: GT length, or minus the target's reward score."""
    if key == "gt_length":
        return float(ex.gt_length)
    if key == "rm_score":
        return -ex.rm_score
    raise ValueError(f"no difficulty key {key!r}")


def phase_pool(examples: Sequence[FusionExample], phase: Phase) -> list[int]:
    """Indices of the examples a phase sees (its subset), easiest first for curricula."""
    idx = list(range(len(examples)))
    if phase.subset == "all" and phase.order == "shuffle":
        return idx
    key = phase.order
    if key == "rm_score" and any(math.isnan(e.rm_score) for e in examples):
        raise UserError(
            f"phase {phase.name!r} orders by rm_score, which needs the score stage's scores of the "
            "target's own answers (reward models and the generate/score stages)"
        )
    idx.sort(key=lambda i: (difficulty(examples[i], key), examples[i].id))
    half = len(idx) // 2
    if phase.subset == "easy_half":
        return idx[:half]
    if phase.subset == "hard_half":
        return idx[half:]
    return idx


def step_examples(
    pool: Sequence[int], step_in_phase: int, batch: int, seed: int, phase_index: int
) -> list[int]:
    """The ``batch`` example indices of one optimizer step within a phase (epochs reshuffled)."""
    out: list[int] = []
    pos = step_in_phase * batch
    while len(out) < batch and pool:
        epoch, offset = divmod(pos, len(pool))
        order = list(pool)
        random.Random(f"{seed}-{phase_index}-{epoch}").shuffle(order)
        take = order[offset : offset + batch - len(out)]
        out += take
        pos += len(take)
    return out


def steps_per_epoch(n_examples: int, batch: int) -> int:
    return max(1, math.ceil(n_examples / batch))
