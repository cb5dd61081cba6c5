"""Reference-based answer scoring: 0.25 BLEU + 0.25 ROUGE + 0.5 BERTScore (paper, Figure 3).

The paper compares RM voting against picking the source answer most similar
to the GT answer. Components, all in [0, 1] for natural text:

* BLEU: sacrebleu's sentence BLEU (13a tokenizer, exponential smoothing) / 100.
* ROUGE: rouge-score's ROUGE-L F-measure with the Porter stemmer.
* BERTScore: F1 of greedy cosine matching between contextual token embeddings
  of candidate and reference (Zhang et al., 2020), computed by the ``bert-score``
  package from an encoder in a local directory (or a hub id), without IDF
  weighting or baseline rescaling ([CLS] and [SEP] weigh nothing).

sacrebleu, rouge-score and bert-score are dependencies of profuser; a missing one is a `UserError`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from profuser.errors import UserError

DEFAULT_WEIGHTS = (0.25, 0.25, 0.5)


class MissingExtraError(UserError, ImportError):
    """A dependency of profuser is not installed (a broken environment); the message names it."""


def _require(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"reference scoring needs {package}, a dependency of profuser: pip install {package}"
        ) from None


def bleu_scores(candidates: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Sentence BLEU of each candidate against its reference, in [0, 1]; ``[N]``."""
    sacrebleu = _require("sacrebleu", "sacrebleu")
    _check_pairs(candidates, references)
    return np.array(
        [
            sacrebleu.sentence_bleu(c, [r]).score / 100.0
            for c, r in zip(candidates, references, strict=True)
        ],
        dtype=np.float64,
    )


@functools.cache
def _rouge_l():
    """One ROUGE-L scorer per process (building one logs a line and loads the stemmer)."""
    rouge_scorer = _require("rouge_score.rouge_scorer", "rouge-score")
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_scores(candidates: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """ROUGE-L F-measure of each candidate against its reference, in [0, 1]; ``[N]``."""
    _check_pairs(candidates, references)
    scorer = _rouge_l()
    return np.array(
        [
            scorer.score(r, c)["rougeL"].fmeasure
            for c, r in zip(candidates, references, strict=True)
        ],
        dtype=np.float64,
    )


def _check_pairs(candidates: Sequence[str], references: Sequence[str]) -> None:
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} references")


def encoder_depth(path: str) -> int:
    """Number of layers of the encoder at ``path`` (read from its config)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    for key in ("num_hidden_layers", "n_layers", "num_layers"):
        if isinstance(getattr(config, key, None), int):
            return getattr(config, key)
    raise ValueError(f"{path}: config.json names no number of layers")


class BertScorer:
    """BERTScore F1 by ``bert_score.BERTScorer`` over the encoder at ``path``.

    bert-score loads ``AutoModel`` and ``AutoTokenizer`` from its ``model_type``, so a
    local directory works offline (``HF_HUB_OFFLINE=1``); ``num_layers`` says which
    layer's output is the embedding (default: the last). Texts are truncated to what
    both the tokenizer and the model's position embeddings allow.

    Args:
        path: a local directory (or hub id) holding the encoder and its tokenizer.
        num_layers: layers used (None = all of them).
        batch_size: texts embedded per forward pass.
        device: torch device for the model.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        num_layers: int | None = None,
        batch_size: int = 16,
        device: str | torch.device = "cpu",
    ):
        bert_score = _require("bert_score", "bert-score")
        path = str(path)
        layers = encoder_depth(path) if num_layers is None else num_layers
        self.batch_size = batch_size
        self.scorer = bert_score.BERTScorer(
            model_type=path,
            num_layers=layers,
            batch_size=batch_size,
            device=str(device),
            use_fast_tokenizer=True,
        )
        # bert-score truncates to the tokenizer's limit and pads with its pad token: make
        # both fit the model (small encoders and decoder tokenizers set neither).
        tok, config = self.scorer._tokenizer, self.scorer._model.config
        positions = getattr(config, "max_position_embeddings", None)
        if isinstance(positions, int) and tok.model_max_length > positions:
            tok.model_max_length = positions
        if tok.pad_token is None:
            tok.pad_token = tok.unk_token if tok.unk_token is not None else tok.eos_token

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> np.ndarray:
        """BERTScore F1 of each candidate against its reference; ``[N]``.

        A pair where either side is empty (or only white space) scores 0.
        """
        _check_pairs(candidates, references)
        scores = np.zeros(len(candidates), dtype=np.float64)
        rows = [
            i
            for i, (c, r) in enumerate(zip(candidates, references, strict=True))
            if c.strip() and r.strip()
        ]
        if rows:
            _, _, f1 = self.scorer.score(
                [candidates[i] for i in rows],
                [references[i] for i in rows],
                batch_size=self.batch_size,
            )
            scores[rows] = f1.double().numpy()
        return scores


class ReferenceScorer:
    """Weighted BLEU + ROUGE + BERTScore of candidates against a reference (the GT answer).

    Args:
        bert: a :class:`BertScorer`, or what ``BertScorer`` takes as ``model``.
        weights: (bleu, rouge, bertscore) weights; the paper's 0.25, 0.25, 0.5.
    """

    def __init__(
        self,
        bert: BertScorer | str | os.PathLike,
        weights: tuple[float, float, float] = DEFAULT_WEIGHTS,
    ):
        self.bert = bert if isinstance(bert, BertScorer) else BertScorer(bert)
        self.weights = weights

    def components(self, candidates: Sequence[str], references: Sequence[str]) -> np.ndarray:
        """``[N, 3]``: BLEU, ROUGE-L and BERTScore per pair."""
        return np.stack(
            [
                bleu_scores(candidates, references),
                rouge_scores(candidates, references),
                self.bert.score(candidates, references),
            ],
            axis=1,
        )

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> np.ndarray:
        """The weighted similarity per pair; ``[N]``."""
        return self.components(candidates, references) @ np.asarray(self.weights)

    def score_candidates(
        self, candidates: Sequence[Sequence[str | None]], references: Sequence[str]
    ) -> np.ndarray:
        """Score K answers per example against that example's reference.

        Args:
            candidates: N lists of K answers; None marks a missing answer.
            references: N reference (GT) answers.

        Returns:
            ``[N, K]`` float, NaN for missing answers; feed it to the "reference"
            inference rule (``profuser.advantage.selection``).
        """
        _check_pairs(candidates, references)
        num_sources = max((len(row) for row in candidates), default=0)
        out = np.full((len(candidates), num_sources), np.nan)
        flat = [(i, j, c) for i, row in enumerate(candidates) for j, c in enumerate(row)]
        flat = [(i, j, c) for i, j, c in flat if c is not None]
        if flat:
            rows, cols, texts = zip(*flat, strict=True)
            out[list(rows), list(cols)] = self.score(list(texts), [references[i] for i in rows])
        return out
