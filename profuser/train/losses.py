"""Fusion losses on the teachers' sparse top-k support (the ProFuser paper, section 3, eq. 4-5).

Every tensor handed to these functions is *aligned to the logits*: index ``j`` on the sequence
axis holds what ``logits[:, j]`` should predict (the next token, its teacher's top-k ids and
log-probs). Use :func:`next_token_labels` to shift Hugging Face style labels.

The teacher side is sparse: ``k`` target-vocabulary ids per position (``-1`` = empty slot) and
their log-probs. The student's log-softmax over the full vocabulary is computed once and
gathered at the label and the ``k`` teacher ids in a single ``gather``, so a fusion step keeps
no more ``[B, L, V]`` tensors alive than plain SFT does, and no dense teacher tensor is ever built.

Each loss has a ``*_sum`` form returning ``(sum, count)``: under gradient accumulation the
trainer divides every micro-batch's sum by the count over the whole accumulation window
(:func:`fusion_counts` gives it from the data alone, before any forward pass), which makes the
accumulated gradient that of the window's token mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch
from torch import Tensor

IGNORE_INDEX = -100  # label value that SFT skips (Hugging Face convention)
EMPTY_SLOT = -1  # teacher id value of an unused top-k slot

MODES = ("infer", "train")
COMPONENTS = ("sft_infer", "kl_infer", "sft_train", "kl_train")


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


def next_token_labels(labels: Tensor) -> Tensor:
    """Shift Hugging Face labels (aligned with ``input_ids``) to logits positions.

    ``labels`` ``[B, L]`` -> ``[B, L]`` where position ``j`` holds ``labels[:, j + 1]`` and the
    last position is ``IGNORE_INDEX``. Shifting the labels instead of slicing the logits keeps
    the ``[B, L, V]`` logits contiguous, so log-softmax never needs a copy.
    """
    pad = labels.new_full((labels.shape[0], 1), IGNORE_INDEX)
    return torch.cat([labels[:, 1:], pad], dim=1)


def student_log_probs(logits: Tensor) -> Tensor:
    """Log-softmax over the vocabulary in at least float32 (bf16 log-probs are too coarse for KL).

    ``logits`` ``[B, L, V]`` -> ``[B, L, V]``. Passing ``dtype`` casts inside the kernel, so a
    half-precision input does not leave a float32 copy of the logits behind for backward.
    """
    dtype = torch.promote_types(logits.dtype, torch.float32)
    return torch.log_softmax(logits, dim=-1, dtype=dtype)


def _check_aligned(name: str, t: Tensor, shape: tuple[int, ...]) -> None:
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {shape}")


def _teacher_log_p(teacher_ids: Tensor, teacher_logprobs: Tensor, dtype: torch.dtype) -> Tensor:
    """Teacher log-probs renormalised over the valid slots; ``-inf`` in empty slots.

    ``teacher_ids``/``teacher_logprobs`` ``[B, L, k]`` -> ``[B, L, k]``. Stored top-k/top-p
    log-probs do not sum to one (the tail was cut), hence the renormalisation. A row without
    any finite valid slot comes out all ``-inf`` (so ``p = 0`` everywhere), not NaN.
    """
    valid = teacher_ids >= 0
    lp = teacher_logprobs.detach().to(dtype).masked_fill(~valid, float("-inf"))
    norm = torch.logsumexp(lp, dim=-1, keepdim=True)  # [B, L, 1]
    return lp - norm.masked_fill(~torch.isfinite(norm), 0.0)


def kl_positions(teacher_ids: Tensor, mask: Tensor) -> Tensor:
    """Positions where the KL counts: masked and with at least one valid teacher slot.

    ``teacher_ids`` ``[B, L, k]``, ``mask`` ``[B, L]`` -> bool ``[B, L]``. Depends on data only,
    so the trainer can count a whole accumulation window before the first forward pass.
    """
    return mask.bool() & (teacher_ids >= 0).any(dim=-1)


def _kl_terms(log_q: Tensor, log_p: Tensor) -> Tensor:
    """Per-position Σ_k p (log p − log q); ``log_q``/``log_p`` ``[B, L, k]`` -> ``[B, L]``."""
    p = log_p.exp()
    empty = p == 0
    # 0 · log 0 = 0; zeroing log q too keeps an underflowed student -inf from making 0·inf = NaN
    return (p * (log_p.masked_fill(empty, 0.0) - log_q.masked_fill(empty, 0.0))).sum(dim=-1)


def _gather_targets(
    log_probs: Tensor, labels: Tensor | None, teacher_ids: Tensor | None
) -> tuple[Tensor | None, Tensor | None]:
    """Student log-probs at the labels ``[B, L]`` and at the teacher ids ``[B, L, k]``.

    One ``gather`` for both: its backward scatters into a single dense ``[B, L, V]`` gradient,
    where two gathers would materialise two and add them.
    """
    parts = []
    if labels is not None:
        parts.append(labels.clamp(min=0).unsqueeze(-1))
    if teacher_ids is not None:
        parts.append(teacher_ids.clamp(min=0))
    idx = torch.cat([p.to(torch.long) for p in parts], dim=-1)  # [B, L, 1 + k]
    got = log_probs.gather(-1, idx)
    at_label = got[..., 0] if labels is not None else None
    at_teacher = got[..., 1:] if labels is not None else got
    return at_label, (at_teacher if teacher_ids is not None else None)


# ---------------------------------------------------------------------------------------------
# Stand-alone losses
# ---------------------------------------------------------------------------------------------


def sparse_kl_sum(
    student_logits: Tensor, teacher_ids: Tensor, teacher_logprobs: Tensor, mask: Tensor
) -> tuple[Tensor, Tensor]:
    """Summed sparse KL(P_teacher || P_student) and the number of positions it covers.

    Args:
        student_logits: ``[B, L, V]`` student logits.
        teacher_ids: ``[B, L, k]`` integer target-vocabulary ids, ``-1`` = empty slot; ids of one
            position must be distinct (the align stage merges duplicates).
        teacher_logprobs: ``[B, L, k]`` teacher log-probs (any float dtype, may be unnormalised).
        mask: ``[B, L]`` bool, the positions that may count (response tokens).

    Returns:
        ``(sum, count)``: the sum over counted positions of Σ_k p (log p − log q), with ``p`` the
        teacher renormalised over its valid slots and ``q`` the student's softmax over the full
        vocabulary; ``count`` (long scalar) the positions with ``mask`` and a valid slot.
    """
    b, seq_len, _ = student_logits.shape
    _check_aligned("teacher_ids", teacher_ids, (b, seq_len, teacher_ids.shape[-1]))
    _check_aligned("teacher_logprobs", teacher_logprobs, tuple(teacher_ids.shape))
    _check_aligned("mask", mask, (b, seq_len))
    log_probs = student_log_probs(student_logits)
    _, log_q = _gather_targets(log_probs, None, teacher_ids)
    return _kl_sum(log_q, teacher_ids, teacher_logprobs, mask)


def _kl_sum(
    log_q: Tensor, teacher_ids: Tensor, teacher_logprobs: Tensor, mask: Tensor
) -> tuple[Tensor, Tensor]:
    log_p = _teacher_log_p(teacher_ids, teacher_logprobs, log_q.dtype)
    counted = kl_positions(teacher_ids, mask)
    terms = _kl_terms(log_q, log_p)  # [B, L]
    return terms.masked_fill(~counted, 0.0).sum(), counted.sum()


def sparse_kl(
    student_logits: Tensor, teacher_ids: Tensor, teacher_logprobs: Tensor, mask: Tensor
) -> Tensor:
    """Mean sparse KL over counted positions (see :func:`sparse_kl_sum`); 0 if none count.

    The zero keeps its autograd graph, so ``backward`` works on an all-masked micro-batch.
    """
    total, count = sparse_kl_sum(student_logits, teacher_ids, teacher_logprobs, mask)
    return total / count.clamp(min=1)


def sft_loss_sum(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Summed token cross-entropy and the number of labelled tokens.

    ``logits`` ``[B, L, V]``, ``labels`` ``[B, L]`` aligned to the logits, ``-100`` ignored.
    """
    _check_aligned("labels", labels, tuple(logits.shape[:2]))
    at_label, _ = _gather_targets(student_log_probs(logits), labels, None)
    return _nll_sum(at_label, labels)


def _nll_sum(at_label: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    keep = labels != IGNORE_INDEX
    return (-at_label).masked_fill(~keep, 0.0).sum(), keep.sum()


def sft_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean token cross-entropy over labelled tokens (``-100`` ignored); 0 if there are none."""
    total, count = sft_loss_sum(logits, labels)
    return total / count.clamp(min=1)


# ---------------------------------------------------------------------------------------------
# The ProFuser objective
# ---------------------------------------------------------------------------------------------


class LossWeights(Protocol):
    """Anything carrying the four loss weights; a schedule ``Phase`` qualifies."""

    @property
    def w1(self) -> float: ...  # weight of the inference-mode fusion loss
    @property
    def w2(self) -> float: ...  # weight of the training-mode fusion loss
    @property
    def lam(self) -> float: ...  # λ, KL coefficient in inference mode
    @property
    def beta(self) -> float: ...  # β, KL coefficient in training mode


@dataclass(frozen=True)
class PhaseWeights:
    """The weights of eq. 4-5: L = w1·(SFT_ỹ + λ·KL_infer) + w2·(SFT_y + β·KL_train)."""

    w1: float
    w2: float
    lam: float
    beta: float

    def __post_init__(self) -> None:
        for name in ("w1", "w2", "lam", "beta"):
            if getattr(self, name) < 0:
                raise ValueError(f"loss weight {name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class ModeTargets:
    """One mode's collated targets, aligned to the logits positions.

    Inference mode: labels are the voted answer ỹ^B, the teacher is its generating source.
    Training mode: labels are the GT answer y, the teacher is the MinCE source.
    """

    labels: Tensor  # [B, L] long, -100 = ignored
    teacher_ids: Tensor | None = None  # [B, L, k] int, -1 = empty slot
    teacher_logprobs: Tensor | None = None  # [B, L, k] float
    kl_mask: Tensor | None = None  # [B, L] bool; None = the labelled positions

    def __post_init__(self) -> None:
        if (self.teacher_ids is None) != (self.teacher_logprobs is None):
            raise ValueError("teacher_ids and teacher_logprobs must be given together")
        shape = tuple(self.labels.shape)
        if len(shape) != 2:
            raise ValueError(f"labels must be [batch, seq], got shape {shape}")
        if self.teacher_ids is not None:
            _check_aligned("teacher_ids", self.teacher_ids, shape + (self.teacher_ids.shape[-1],))
            _check_aligned("teacher_logprobs", self.teacher_logprobs, tuple(self.teacher_ids.shape))
        if self.kl_mask is not None:
            _check_aligned("kl_mask", self.kl_mask, shape)

    @property
    def has_teacher(self) -> bool:
        """Whether this batch carries a teacher distribution."""
        return self.teacher_ids is not None

    def mask(self) -> Tensor:
        """The KL mask in force: ``kl_mask`` or, by default, the labelled positions. ``[B, L]``."""
        return self.kl_mask.bool() if self.kl_mask is not None else self.labels != IGNORE_INDEX

    def counts(self) -> tuple[Tensor, Tensor]:
        """``(sft_count, kl_count)`` of this batch, from data only (long scalars)."""
        sft = (self.labels != IGNORE_INDEX).sum()
        if self.teacher_ids is None:
            return sft, torch.zeros((), dtype=torch.long, device=self.labels.device)
        return sft, kl_positions(self.teacher_ids, self.mask()).sum()


@dataclass(frozen=True)
class ModeBatch:
    """The student's logits on one mode's sequences plus that mode's targets."""

    logits: Tensor  # [B, L, V]
    targets: ModeTargets

    def __post_init__(self) -> None:
        _check_aligned(
            "logits", self.logits, tuple(self.targets.labels.shape) + (self.logits.shape[-1],)
        )


class FusionLoss(NamedTuple):
    """The objective to ``backward`` and its detached components for logging."""

    total: Tensor  # scalar, with grad
    components: dict[str, Tensor]  # subset of COMPONENTS -> detached scalar


def fusion_counts(infer: ModeTargets | None, train: ModeTargets | None) -> dict[str, Tensor]:
    """Token counts per loss component (keys of ``COMPONENTS``) for the given targets.

    Sum these over the micro-batches of an accumulation window and pass the totals as
    ``denominators`` to :func:`fusion_loss`, so the accumulated loss is the window's mean.
    """
    out: dict[str, Tensor] = {}
    for mode, targets in zip(MODES, (infer, train), strict=True):
        if targets is not None:
            out[f"sft_{mode}"], out[f"kl_{mode}"] = targets.counts()
    return out


def _mode_weights(weights: LossWeights) -> dict[str, tuple[float, float]]:
    return {"infer": (weights.w1, weights.lam), "train": (weights.w2, weights.beta)}


def fusion_loss(
    infer: ModeBatch | None,
    train: ModeBatch | None,
    weights: LossWeights,
    denominators: Mapping[str, Tensor | float] | None = None,
) -> FusionLoss:
    """ProFuser's objective (eq. 4-5) on the inference-mode and training-mode sequences.

    L = w1 · (SFT(x, ỹ^B) + λ · KL(P̃^B, P_T)) + w2 · (SFT(x, y) + β · KL(P^MinCE, P_T))

    A mode whose weight (``w1`` or ``w2``) is 0 is skipped and its batch ignored, so callers
    should not run the model on that mode's sequences at all (pass ``None``): that forward pass
    is the whole cost of a mode. A KL coefficient of 0 keeps the KL out of the graph but still
    reports it when the teacher is present.

    Memory: give each mode the logits of its own forward pass (slicing one forward's logits per
    mode makes backward build a full-size gradient per slice), and drop your references to the
    logits and the batches before ``backward``: autograd keeps the log-probs, not the logits,
    so a live reference is one more ``[B, L, V]`` during backward.

    Args:
        infer: student logits on (x, ỹ^B) with targets, or ``None``.
        train: student logits on (x, y) with targets, or ``None``.
        weights: ``w1``, ``w2``, ``lam`` (λ), ``beta`` (β), e.g. a schedule ``Phase``.
        denominators: per component (keys of ``COMPONENTS``), what its sum is divided by;
            default: this call's own counts (a plain token mean). Under gradient accumulation
            pass the window totals of :func:`fusion_counts`.

    Returns:
        ``FusionLoss(total, components)``; components hold each computed term after its
        normalisation and before weighting, detached.
    """
    total: Tensor | None = None
    components: dict[str, Tensor] = {}
    for mode, batch in zip(MODES, (infer, train), strict=True):
        w, coef = _mode_weights(weights)[mode]
        if w == 0:
            continue
        if batch is None:
            raise ValueError(f"the {mode}-mode weight is {w} but no {mode}-mode batch was given")
        t = batch.targets
        if coef > 0 and not t.has_teacher:
            raise ValueError(
                f"the {mode}-mode KL coefficient is {coef} but the batch has no teacher"
            )
        log_probs = student_log_probs(batch.logits)  # [B, L, V], shared by SFT and KL
        at_label, log_q = _gather_targets(log_probs, t.labels, t.teacher_ids)
        sft_sum, sft_n = _nll_sum(at_label, t.labels)
        sft = sft_sum / _denominator(denominators, f"sft_{mode}", sft_n)
        components[f"sft_{mode}"] = sft.detach()
        mode_loss = sft
        if log_q is not None:
            if coef == 0:
                log_q = log_q.detach()  # logged only; no gradient work for a zero term
            kl_sum, kl_n = _kl_sum(log_q, t.teacher_ids, t.teacher_logprobs, t.mask())
            kl = kl_sum / _denominator(denominators, f"kl_{mode}", kl_n)
            components[f"kl_{mode}"] = kl.detach()
            if coef > 0:
                mode_loss = mode_loss + coef * kl
        total = w * mode_loss if total is None else total + w * mode_loss
    if total is None:
        raise ValueError("both mode weights are 0: this phase trains nothing")
    return FusionLoss(total, components)


def _denominator(
    denominators: Mapping[str, Tensor | float] | None, key: str, own: Tensor
) -> Tensor:
    """The divisor of one component: the given window total, else this batch's count (>= 1)."""
    if denominators is None:
        return own.clamp(min=1)
    if key not in denominators:
        # a silent fallback to the micro-batch count would quietly mis-scale accumulation
        raise ValueError(f"denominators lack {key!r}; pass every key that fusion_counts returns")
    return torch.as_tensor(denominators[key], device=own.device).clamp(min=1)
