"""Reference similarity as a reward: 0.25 BLEU + 0.25 ROUGE-L + 0.5 BERTScore against the GT.

The paper's Figure 3 compares RM voting with choosing the source answer most
similar to the GT answer; this kind makes that similarity one more "RM", so it
can vote or be used alone. The reference of each row is the GT answer under
``reference["response"]``; a row without one scores NaN.

* ``cfg.path`` names an encoder (a local directory or hub id, any ``AutoModel``):
  BERTScore uses its last-layer embeddings, weights (0.25, 0.25, 0.5).
* ``cfg.path`` is None: no embedding model is at hand, so the score is BLEU and
  ROUGE-L only, weights (0.5, 0.5), and a warning says so once per process.

BLEU and ROUGE need the optional extra ``profuser[score]`` (sacrebleu and
rouge-score); without it loading fails with a UserError naming the extra.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from profuser.advantage.reference import (
    DEFAULT_WEIGHTS,
    BertScorer,
    ReferenceScorer,
    bleu_scores,
    rouge_scores,
)
from profuser.config import RewardModelConfig
from profuser.reward.base import FailureCounter, Prompt, check_rows
from profuser.reward.hf import check_model_path, load_error

log = logging.getLogger(__name__)

FALLBACK_WEIGHTS = (0.5, 0.5)  # BLEU, ROUGE-L when there is no BERTScore model
_warned_fallback = False


class LexicalScorer:
    """0.5 BLEU + 0.5 ROUGE-L: the reference scorer without an embedding model."""

    weights = FALLBACK_WEIGHTS

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> np.ndarray:
        """``[N]`` weighted BLEU and ROUGE-L of each candidate against its reference."""
        bleu = bleu_scores(candidates, references)
        rouge = rouge_scores(candidates, references)
        return self.weights[0] * bleu + self.weights[1] * rouge


class ReferenceRewardModel(FailureCounter):
    """Similarity of each answer to the row's GT answer (``reference["response"]``).

    Args:
        name: the RM's name.
        scorer: a :class:`ReferenceScorer` (BLEU + ROUGE + BERTScore) or a
            :class:`LexicalScorer` (BLEU + ROUGE only).
        batch_size: rows scored per call of the scorer.
    """

    def __init__(self, name: str, scorer: ReferenceScorer | LexicalScorer, batch_size: int = 64):
        self.name = name
        self.scorer = scorer
        self.batch_size = batch_size
        self.failures = 0

    def _score_rows(self, candidates: list[str], refs: list[str]) -> np.ndarray:
        """Scores of a batch; a batch that raises is retried row by row (NaN where it fails)."""
        try:
            return np.asarray(self.scorer.score(candidates, refs), dtype=np.float64)
        except Exception as exc:  # one odd row must not stop the run
            log.debug("reward model %r: batch failed (%s); retrying row by row", self.name, exc)
        out = np.full(len(candidates), np.nan)
        for i, (c, r) in enumerate(zip(candidates, refs, strict=True)):
            try:
                out[i] = float(self.scorer.score([c], [r])[0])
            except Exception as exc:
                log.debug("reward model %r: row failed: %s", self.name, exc)
        return out

    def score(
        self,
        prompts: list[Prompt],
        answers: list[str],
        references: list[dict] | None = None,
    ) -> np.ndarray:
        """``[N]`` similarity to ``references[i]["response"]``; NaN where there is none."""
        n = check_rows(prompts, answers, references)
        scores = np.full(n, np.nan)
        rows = [
            i
            for i in range(n)
            if answers[i] is not None
            and references is not None
            and isinstance(references[i], dict)
            and isinstance(references[i].get("response"), str)
        ]
        for start in range(0, len(rows), self.batch_size):
            idx = rows[start : start + self.batch_size]
            scores[idx] = self._score_rows(
                [str(answers[i]) for i in idx], [references[i]["response"] for i in idx]
            )
        return self._record(scores)


def load_reference(
    cfg: RewardModelConfig, device: torch.device, batch_size: int = 64, **_: object
) -> ReferenceRewardModel:
    """BLEU + ROUGE (+ BERTScore with the encoder at ``cfg.path``, when there is one)."""
    global _warned_fallback
    # Fail at load time, with the extra's name, when sacrebleu or rouge-score is missing.
    bleu_scores([], [])
    rouge_scores([], [])
    if cfg.path is None:
        if not _warned_fallback:
            log.warning(
                "reward model %r: no embedding model (path) for BERTScore; scoring with "
                "0.5 BLEU + 0.5 ROUGE-L instead of the paper's 0.25/0.25/0.5",
                cfg.name,
            )
            _warned_fallback = True
        return ReferenceRewardModel(cfg.name, LexicalScorer(), batch_size)
    path = check_model_path(cfg.path, cfg.name)
    try:
        bert = BertScorer(path, device=device)
    except (OSError, ValueError) as exc:
        raise load_error(cfg.name, path, "a BERTScore encoder", exc) from None
    return ReferenceRewardModel(cfg.name, ReferenceScorer(bert, DEFAULT_WEIGHTS), batch_size)
