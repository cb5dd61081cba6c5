"""Reference-based answer scoring: 0.25 BLEU + 0.25 ROUGE + 0.5 BERTScore (paper, Figure 3).

The paper compares RM voting against picking the source answer most similar
to the GT answer. Components, all in [0, 1] for natural text:

* BLEU: sacrebleu's sentence BLEU (13a tokenizer, exponential smoothing) / 100.
* ROUGE: rouge-score's ROUGE-L F-measure with the Porter stemmer.
* BERTScore: F1 of greedy cosine matching between contextual token embeddings
  of candidate and reference (Zhang et al., 2020), without IDF weighting or
  baseline rescaling, special tokens excluded. Implemented here so any
  ``AutoModel`` works; it needs no extra package.

sacrebleu and rouge-score are the optional extra ``profuser[score]``.
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
    """An optional dependency is not installed; the message names the extra."""


def _require(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"reference scoring needs {package}: pip install 'profuser[score]' "
            f"(or pip install {package})"
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


class BertScorer:
    """BERTScore F1 over the contextual embeddings of any Hugging Face encoder.

    Args:
        model: a hub id or local directory for ``AutoModel``/``AutoTokenizer``,
            or an already loaded model (then ``tokenizer`` is required).
        tokenizer: the tokenizer, when ``model`` is a loaded model.
        layer: which entry of ``hidden_states`` to use (None = the last layer).
        max_length: texts are truncated to this many tokens.
        batch_size: texts embedded per forward pass.
        device: torch device for the model.
    """

    def __init__(
        self,
        model: str | os.PathLike | torch.nn.Module,
        tokenizer: Any = None,
        layer: int | None = None,
        max_length: int = 512,
        batch_size: int = 16,
        device: str | torch.device = "cpu",
    ):
        from transformers import AutoModel, AutoTokenizer

        if isinstance(model, torch.nn.Module):
            if tokenizer is None:
                raise ValueError("BertScorer needs a tokenizer when given a loaded model")
            self.model = model
        else:
            self.model = AutoModel.from_pretrained(str(model))
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(str(model))
        self.tokenizer = tokenizer
        self.model.to(device).eval()
        self.device = torch.device(device)
        self.layer = layer
        self.max_length = max_length
        self.batch_size = batch_size

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> list[torch.Tensor]:
        """Unit-norm embeddings of each text's non-special tokens: a list of ``[len_i, hidden]``."""
        out: list[torch.Tensor] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            enc = self.tokenizer(
                batch,
                truncation=True,
                max_length=self.max_length,
                return_special_tokens_mask=True,
            )
            # Padding by hand: some tokenizers (decoder LMs) define no pad token.
            width = max(len(ids) for ids in enc["input_ids"])
            input_ids = torch.zeros((len(batch), width), dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, ids in enumerate(enc["input_ids"]):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention[row, : len(ids)] = 1
            result = self.model(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                output_hidden_states=self.layer is not None,
            )
            hidden = (
                result.last_hidden_state if self.layer is None else result.hidden_states[self.layer]
            )
            hidden = torch.nn.functional.normalize(hidden.float(), dim=-1).cpu()  # [b, width, h]
            for row, special in enumerate(enc["special_tokens_mask"]):
                keep = torch.tensor(special, dtype=torch.bool).logical_not()
                out.append(hidden[row, : len(special)][keep])
        return out

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> np.ndarray:
        """BERTScore F1 of each candidate against its reference; ``[N]``.

        A pair where either side has no tokens scores 0.
        """
        _check_pairs(candidates, references)
        cand_emb = self.embed(candidates)
        ref_emb = self.embed(references)
        scores = np.zeros(len(candidates), dtype=np.float64)
        for i, (c, r) in enumerate(zip(cand_emb, ref_emb, strict=True)):
            if len(c) == 0 or len(r) == 0:
                continue
            sim = c @ r.T  # [len_c, len_r] cosine similarities
            precision = sim.max(dim=1).values.mean().item()
            recall = sim.max(dim=0).values.mean().item()
            total = precision + recall
            scores[i] = 2 * precision * recall / total if total > 0 else 0.0
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
