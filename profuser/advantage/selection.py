"""Selection rules that turn per-source evaluations into a teacher choice.

Two small registries, chosen by name from the config:

* ``TRAINING_RULES`` (training mode, teacher forcing on the GT answer) take the
  per-source cross-entropies ``ce`` ``[N, K]`` (NaN = source missing or failed).
* ``INFERENCE_RULES`` (inference mode, the sources' own answers) take a score
  tensor ``[N, K, R]`` (NaN = missing answer or failed score) and one column index.

Every rule returns a :class:`Selection`: a single winner per example and
per-source mixture weights. Rules that pick one source return one-hot weights;
``avg_ce`` returns soft weights. Ties always go to the lowest source index and a
row with nothing to choose from gets winner -1 and all-zero weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from profuser.advantage.vote import best_valid, rm_vote


@dataclass(frozen=True)
class Selection:
    """The outcome of a selection rule.

    Attributes:
        winner: int64 ``[N]``, the chosen source per example, -1 where none could be chosen.
        weights: float64 ``[N, K]``, per-source mixture weights; each row sums to 1,
            or is all zeros where ``winner`` is -1.
    """

    winner: np.ndarray
    weights: np.ndarray


def _one_hot(winner: np.ndarray, num_sources: int) -> np.ndarray:
    weights = np.zeros((winner.shape[0], num_sources), dtype=np.float64)  # [N, K]
    rows = np.nonzero(winner >= 0)[0]
    weights[rows, winner[rows]] = 1.0
    return weights


def _as_ce(ce: np.ndarray) -> np.ndarray:
    ce = np.asarray(ce, dtype=np.float64)
    if ce.ndim != 2:
        raise ValueError(f"expected cross-entropies of shape [N, K], got {ce.shape}")
    return ce


def ce_per_byte(ce: np.ndarray, token_counts: np.ndarray, num_bytes: np.ndarray) -> np.ndarray:
    """Cross-entropy per UTF-8 byte of the response: ``ce * token_counts / num_bytes``.

    Args:
        ce: ``[N, K]`` mean per-token CE of each source on the response.
        token_counts: ``[N, K]`` number of response tokens each source's tokenizer made.
        num_bytes: ``[N]`` UTF-8 length of the response (the same text for every source).

    Returns:
        ``[N, K]`` total NLL divided by bytes; NaN where the CE is NaN or the response is empty.
    """
    ce = _as_ce(ce)
    counts = np.asarray(token_counts, dtype=np.float64)
    nbytes = np.asarray(num_bytes, dtype=np.float64)
    if counts.shape != ce.shape:
        raise ValueError(f"token_counts has shape {counts.shape}, expected {ce.shape}")
    if nbytes.shape != (ce.shape[0],):
        raise ValueError(f"num_bytes has shape {nbytes.shape}, expected ({ce.shape[0]},)")
    with np.errstate(divide="ignore", invalid="ignore"):
        per_byte = ce * counts / nbytes[:, None]
    return np.where(nbytes[:, None] > 0, per_byte, np.nan)


def min_ce(
    ce: np.ndarray,
    *,
    num_bytes: np.ndarray | None = None,
    token_counts: np.ndarray | None = None,
) -> Selection:
    """The paper's MinCE: the source with the lowest mean per-token CE wins."""
    ce = _as_ce(ce)
    winner = best_valid(-ce)
    return Selection(winner=winner, weights=_one_hot(winner, ce.shape[1]))


def min_ce_per_byte(
    ce: np.ndarray,
    *,
    num_bytes: np.ndarray | None = None,
    token_counts: np.ndarray | None = None,
) -> Selection:
    """The source with the lowest CE per byte of response wins.

    Mean per-token CE favours tokenizers that cut text finely; the total NLL of
    the response does not. Since every source scores the same text, dividing by
    its byte length does not change the winner, but it makes the values
    comparable across examples. Needs ``token_counts`` ``[N, K]`` and
    ``num_bytes`` ``[N]``.
    """
    if num_bytes is None or token_counts is None:
        raise ValueError("rule 'min_ce_per_byte' needs both num_bytes and token_counts")
    per_byte = ce_per_byte(ce, token_counts, num_bytes)
    winner = best_valid(-per_byte)
    return Selection(winner=winner, weights=_one_hot(winner, per_byte.shape[1]))


def avg_ce(
    ce: np.ndarray,
    *,
    num_bytes: np.ndarray | None = None,
    token_counts: np.ndarray | None = None,
    temperature: float = 1.0,
) -> Selection:
    """Soft mixture over sources instead of one winner (FuseLLM's "AvgCE" idea).

    Weights are ``softmax(-ce / temperature)`` over the sources that have a CE
    (missing sources get weight 0), so a source whose CE is lower by one nat
    gets e times the weight at temperature 1. ``winner`` is the highest-weight
    source, i.e. the MinCE winner, so win shares stay comparable across rules.
    """
    ce = _as_ce(ce)
    if temperature <= 0:
        raise ValueError(f"avg_ce temperature must be positive, got {temperature}")
    winner = best_valid(-ce)
    valid = ~np.isnan(ce)
    logits = np.where(valid, -ce / temperature, -np.inf)  # [N, K]
    # Subtracting the row maximum keeps exp() finite; all-NaN rows stay all zero.
    shift = np.where(winner >= 0, logits.max(axis=1, initial=-np.inf), 0.0)
    unnorm = np.where(valid, np.exp(logits - shift[:, None]), 0.0)
    total = unnorm.sum(axis=1, keepdims=True)
    weights = np.divide(unnorm, total, out=np.zeros_like(unnorm), where=total > 0)
    return Selection(winner=winner, weights=weights)


def _as_scores(scores: np.ndarray, column: int) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 2:
        scores = scores[:, :, None]
    if scores.ndim != 3:
        raise ValueError(f"expected scores of shape [N, K, R] or [N, K], got {scores.shape}")
    if not 0 <= column < scores.shape[2]:
        raise ValueError(f"score column {column} is out of range 0..{scores.shape[2] - 1}")
    return scores


def rm_vote_rule(scores: np.ndarray, column: int) -> Selection:
    """The paper's RM vote; ``column`` is the strongest RM, which breaks ties."""
    scores = _as_scores(scores, column)
    winner = rm_vote(scores, strongest=column)
    return Selection(winner=winner, weights=_one_hot(winner, scores.shape[1]))


def argmax_column(scores: np.ndarray, column: int) -> Selection:
    """The answer with the highest score in one column (NaN ignored, ties to lowest index).

    Serves both "single_rm" (``column`` = the one RM trusted) and "reference"
    (``column`` = the reference-similarity score, see ``profuser.advantage.reference``).
    """
    scores = _as_scores(scores, column)
    winner = best_valid(scores[:, :, column])
    return Selection(winner=winner, weights=_one_hot(winner, scores.shape[1]))


TrainingRule = Callable[..., Selection]
InferenceRule = Callable[[np.ndarray, int], Selection]

TRAINING_RULES: dict[str, TrainingRule] = {
    "min_ce": min_ce,
    "min_ce_per_byte": min_ce_per_byte,
    "avg_ce": avg_ce,
}

INFERENCE_RULES: dict[str, InferenceRule] = {
    "rm_vote": rm_vote_rule,
    "single_rm": argmax_column,
    "reference": argmax_column,
}


def _lookup(registry: dict, kind: str, name: str):
    try:
        return registry[name]
    except KeyError:
        valid = ", ".join(sorted(registry))
        raise ValueError(f"unknown {kind} selection rule {name!r}; valid: {valid}") from None


def get_training_rule(name: str) -> TrainingRule:
    """The training-mode rule called ``name``; ValueError listing valid names otherwise."""
    return _lookup(TRAINING_RULES, "training", name)


def get_inference_rule(name: str) -> InferenceRule:
    """The inference-mode rule called ``name``; ValueError listing valid names otherwise."""
    return _lookup(INFERENCE_RULES, "inference", name)


def win_share(winners: np.ndarray, num_sources: int) -> np.ndarray:
    """Fraction of examples each source wins, ``[K]``; rows with winner -1 are ignored.

    All zeros when no example has a winner.
    """
    winners = np.asarray(winners, dtype=np.int64)
    chosen = winners[winners >= 0]
    if chosen.size and chosen.max() >= num_sources:
        raise ValueError(f"winner {chosen.max()} is out of range for {num_sources} sources")
    counts = np.bincount(chosen, minlength=num_sources).astype(np.float64)
    return counts / chosen.size if chosen.size else counts
