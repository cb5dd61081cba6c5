"""Reference similarity as a reward: 0.25 BLEU + 0.25 ROUGE-L + 0.5 BERTScore against the GT.

The paper's Figure 3 compares RM voting with choosing the source answer most
similar to the GT answer; this kind makes that similarity one more "RM", so it
can vote or be used alone. The reference of each row is the GT answer under
``reference["response"]``; a row without one scores NaN.

* ``cfg.path`` names an encoder with its tokenizer (a local directory or hub id that
  ``AutoModel`` loads; the tiny world writes one to ``<world>/encoder/tiny-bert``):
  the ``bert-score`` package computes BERTScore from its last layer, weights
  (0.25, 0.25, 0.5).
* ``cfg.path`` is None: no embedding model is at hand, so the score is BLEU and
  ROUGE-L only, weights (0.5, 0.5), and a warning says so once per process.

BLEU, ROUGE and BERTScore need sacrebleu, rouge-score and bert-score (dependencies of
profuser); without one, loading fails with a UserError naming it.
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
from profuser.reward.base import BaseRewardModel, Rows
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


class ReferenceRewardModel(BaseRewardModel):
    """Similarity of each answer to the row's GT answer (``reference["response"]``).

    Args:
        name: the RM's name.
        scorer: a :class:`ReferenceScorer` (BLEU + ROUGE + BERTScore) or a
            :class:`LexicalScorer` (BLEU + ROUGE only).
        batch_size: rows scored per call of the scorer.
    """

    def __init__(self, name: str, scorer: ReferenceScorer | LexicalScorer, batch_size: int = 64):
        super().__init__(name, batch_size)
        self.scorer = scorer

    def score_rows(self, rows: Rows) -> np.ndarray:
        """``[N]`` similarity to ``references[i]["response"]``; NaN where there is none.

        A batch the scorer fails on is retried row by row (NaN where a row fails).
        """
        answers = rows.answers
        gts = [rows.reference(i).get("response") for i in range(len(answers))]
        todo = [i for i, gt in enumerate(gts) if answers[i] is not None and isinstance(gt, str)]

        def run(idx: list[int]) -> np.ndarray:
            return self.scorer.score([str(answers[i]) for i in idx], [gts[i] for i in idx])

        scores = np.full(len(answers), np.nan)
        self.score_batches(todo, run, scores, rows.errors)
        return scores


def load_reference(
    cfg: RewardModelConfig, device: torch.device, batch_size: int = 64, **_: object
) -> ReferenceRewardModel:
    """BLEU + ROUGE (+ BERTScore with the encoder at ``cfg.path``, when there is one)."""
    global _warned_fallback
    # Fail at load time, naming the package, when sacrebleu or rouge-score is missing.
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
