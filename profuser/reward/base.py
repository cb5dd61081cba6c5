"""The reward-model interface every scorer implements, and the NaN-on-failure contract.

A reward model (RM) scores N (prompt, answer) pairs and returns a float array
``[N]``. One bad row never stops a run: a row whose chat template fails to
render, whose forward pass raises or returns a non-finite value, or whose
reference is missing scores NaN, and the RM counts it in ``.failures``. The
vote (:func:`profuser.advantage.vote.rm_vote`) treats NaN as "did not vote".
Structural problems (a model with two outputs, a missing file) are
:class:`~profuser.errors.UserError` at load time instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)

Prompt = tuple[str | None, str]  # (system message or None, instruction)


@runtime_checkable
class RewardModel(Protocol):
    """Anything that scores answers to prompts; higher is better."""

    name: str
    failures: int  # rows scored NaN so far (a running count over all calls)

    def score(
        self,
        prompts: list[Prompt],
        answers: list[str],
        references: list[dict] | None = None,
    ) -> np.ndarray:
        """One float per (prompt, answer) pair: ``[N]``, NaN where that row failed.

        ``references`` (one dict per row, e.g. ``{"response": GT, "answer": "7"}``)
        is used by the reference-based kinds and ignored by model RMs.
        """
        ...


def check_rows(
    prompts: Sequence[Prompt], answers: Sequence[str], references: Sequence[dict] | None
) -> int:
    """The row count N; a ValueError if the three lists disagree (a caller bug, not a row)."""
    n = len(prompts)
    if len(answers) != n:
        raise ValueError(f"{n} prompts but {len(answers)} answers")
    if references is not None and len(references) != n:
        raise ValueError(f"{n} prompts but {len(references)} references")
    return n


class FailureCounter:
    """Mixin: counts NaN rows and logs one warning per ``score`` call that had any."""

    name: str
    failures: int = 0

    def _record(self, scores: np.ndarray, what: str = "could not be scored") -> np.ndarray:
        """Turn non-finite entries of ``scores`` ``[N]`` into NaN and count them."""
        scores = np.asarray(scores, dtype=np.float64)
        bad = ~np.isfinite(scores)
        if bad.any():
            scores = np.where(bad, np.nan, scores)
            self.failures += int(bad.sum())
            log.warning(
                "reward model %r: %d of %d rows %s (scored NaN)",
                self.name,
                int(bad.sum()),
                len(scores),
                what,
            )
        return scores
