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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from profuser.errors import UserError

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


@dataclass
class Rows:
    """The rows of one ``score`` call, and the errors they raised (the first is quoted in the
    call's warning)."""

    prompts: list[Prompt]
    answers: list[str | None]
    references: list[dict] | None
    errors: list[str] = field(default_factory=list)

    def reference(self, i: int) -> dict:
        """Row ``i``'s reference dict (empty when there is none)."""
        ref = self.references[i] if self.references is not None else None
        return ref if isinstance(ref, dict) else {}


class BaseRewardModel:
    """Base of the built-in kinds: name, batch size, the row checks and the NaN count.

    A subclass implements :meth:`score_rows`; :meth:`score` checks that the three
    lists agree, turns non-finite scores into NaN, counts them in ``failures`` and
    logs one warning per call that had any (quoting the first row error, if any).

    Args:
        name: the RM's name in the config.
        batch_size: rows per forward pass (or per call of a scorer).
    """

    failure_note = "could not be scored"  # the warning's words for NaN rows without an error

    def __init__(self, name: str, batch_size: int = 1):
        self.name = name
        self.batch_size = batch_size
        self.failures = 0

    def score_rows(self, rows: Rows) -> np.ndarray:
        """Scores ``[N]`` of ``rows``: NaN where a row failed (its error in ``rows.errors``)."""
        raise NotImplementedError

    def score(
        self,
        prompts: Sequence[Prompt],
        answers: Sequence[str | None],
        references: Sequence[dict] | None = None,
    ) -> np.ndarray:
        """:meth:`RewardModel.score`: one float per row ``[N]``, NaN where that row failed."""
        check_rows(prompts, answers, references)
        rows = Rows(list(prompts), list(answers), None if references is None else list(references))
        scores = self.score_rows(rows)
        first = rows.errors[0][:200] if rows.errors else None
        return self._record(
            scores, f"could not be scored (first error: {first})" if first else self.failure_note
        )

    def score_batches(
        self,
        indices: list[int],
        run: Callable[[list[int]], np.ndarray],
        scores: np.ndarray,
        errors: list[str],
    ) -> None:
        """Fill ``scores[indices]`` with ``run(batch)`` ``[b]``, ``batch_size`` rows at a time.

        A batch that raises is retried row by row, so only the rows that really fail
        stay NaN (their errors go to ``errors``); a UserError stops the run.
        """
        for start in range(0, len(indices), self.batch_size):
            idx = indices[start : start + self.batch_size]
            try:
                scores[idx] = run(idx)
                continue
            except UserError:
                raise
            except Exception as exc:  # one bad row must not stop the run
                log.debug("reward model %r: batch failed (%s); retrying row by row", self.name, exc)
            for i in idx:
                try:
                    scores[i] = run([i])[0]
                except UserError:
                    raise
                except Exception as exc:
                    log.debug("reward model %r: row %d failed: %s", self.name, i, exc)
                    errors.append(f"{type(exc).__name__}: {exc}")

    def _record(self, scores: np.ndarray, what: str) -> np.ndarray:
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
