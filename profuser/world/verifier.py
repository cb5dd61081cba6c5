"""The tiny world's programmatic verifier: 1.0 for a correct answer, 0.0 otherwise.

It plays the part of the strongest RM in the paper's vote (the tie-breaker).
The reference of each row must carry the canonical answer under ``"answer"``
(what :class:`profuser.world.skills.WorldExample` holds); the answer text is
checked with :func:`profuser.world.answers.is_correct` (the text after the last
"answer is", else the whole text, compared case- and punctuation-insensitively).
A row without a reference, without an ``"answer"`` field, or without an answer
text scores NaN (it cannot be checked) and counts in ``.failures``.
"""

from __future__ import annotations

import numpy as np

from profuser.config import RewardModelConfig
from profuser.reward.base import BaseRewardModel, Rows
from profuser.world.answers import is_correct


class VerifierRewardModel(BaseRewardModel):
    """Exact-match verifier against ``reference["answer"]``."""

    failure_note = "had no reference answer to check against"

    def __init__(self, name: str = "verifier"):
        super().__init__(name)

    def score_rows(self, rows: Rows) -> np.ndarray:
        """``[N]``: 1.0 correct, 0.0 wrong, NaN where there is nothing to check against."""
        scores = np.full(len(rows.answers), np.nan)
        for i, answer in enumerate(rows.answers):
            gold = rows.reference(i).get("answer")
            if gold is None or answer is None:
                continue
            try:
                scores[i] = 1.0 if is_correct(str(answer), str(gold)) else 0.0
            except Exception:  # one odd row must not stop the run
                continue
        return scores


def load_verifier(cfg: RewardModelConfig, device=None, **_: object) -> VerifierRewardModel:
    """The verifier needs no files; ``cfg.path`` is ignored."""
    return VerifierRewardModel(cfg.name)
