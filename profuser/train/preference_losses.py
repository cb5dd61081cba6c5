"""Preference losses for implicit fusion: DPO and DPO against a fused source reference.

Implicit fusion learns from the sources' answers through preferences instead of their token
distributions (FuseChat-3.0, arXiv 2503.04222; InfiFPO, NeurIPS 2025). Every function here is
pure and works on *sequence* log-probabilities: the sum over a response's tokens of the model's
log-probability of each, given the prompt and the tokens before it (`sequence_logprobs`).
A sequence log-probability is the log-probability of the response *text*, so the values of
models with different tokenizers are comparable without any vocabulary alignment.

Reference log-probabilities are computed once before training (the ``reference`` stage) and
passed in as tensors, so a preference step holds no second model.

DPO (sigmoid form, Rafailov et al. 2023) with label smoothing ``ε`` (conservative DPO):
``z = β · ((π_c − ρ_c) − (π_r − ρ_r))``, loss ``−(1 − ε) log σ(z) − ε log σ(−z)``, where
``π`` are the policy's and ``ρ`` the reference's sequence log-probs of the chosen (c) and
rejected (r) responses.

Fused reference (InfiFPO's idea, from its equations): ``ρ`` is not the target's starting model
but the sources' log-probabilities of the same response, each computed in the source's own
tokenizer and chat template, combined by a named rule, then clipped so that it exceeds the
target's own starting log-probability ``τ`` by at most ``clip``: ``ρ = min(fuse(s), τ + clip)``.
Without the clip, a source that finds a response far likelier than the target does would
drive the target's log-ratio toward a margin it cannot reach.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from profuser.train.losses import IGNORE_INDEX, student_log_probs

FuseRule = Callable[[Tensor], Tensor]  # [batch, sources] -> [batch]


def _mean(logps: Tensor) -> Tensor:
    """The mean of the sources' log-probabilities (the geometric mean of their probabilities)."""
    return logps.mean(dim=-1)


def _max(logps: Tensor) -> Tensor:
    """The likeliest source's log-probability."""
    return logps.amax(dim=-1)


# Rules combining the sources' sequence log-probabilities into one reference, by name.
FUSE_RULES: dict[str, FuseRule] = {"mean": _mean, "max": _max}


def get_fuse_rule(name: str) -> FuseRule:
    """The fused-reference rule ``name``; a ValueError naming the registered rules otherwise."""
    if name not in FUSE_RULES:
        raise ValueError(f"unknown reference rule {name!r}; choose from {', '.join(FUSE_RULES)}")
    return FUSE_RULES[name]


def sequence_logprobs(logits: Tensor, labels: Tensor) -> Tensor:
    """Each row's summed log-probability of its labelled tokens.  # [B, L, V], [B, L] -> [B]

    ``labels`` are aligned to the logits (`profuser.train.losses.next_token_labels`):
    position ``j`` holds the token ``logits[:, j]`` predicts, ``IGNORE_INDEX`` where none
    (the prompt, padding)."""
    logp = student_log_probs(logits)
    mask = labels != IGNORE_INDEX
    at = logp.gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1)  # [B, L]
    return torch.where(mask, at, torch.zeros_like(at)).sum(dim=-1)  # no NaN from -inf * 0


def fused_reference(source_logps: Tensor, target_logps: Tensor, rule: str, clip: float) -> Tensor:
    """The sources' combined log-probability of each response, at most ``clip`` above the
    target's starting log-probability.  # [B, S], [B] -> [B]

    A source without a value for a row (NaN: its context could not hold the response) is
    left out of that row; a row without any source's value falls back to the target's."""
    fuse = get_fuse_rule(rule)
    have = ~torch.isnan(source_logps)
    if bool(have.all()):
        fused = fuse(source_logps)
    else:
        rows = []
        for i in range(source_logps.shape[0]):
            vals = source_logps[i][have[i]]
            rows.append(fuse(vals.unsqueeze(0))[0] if len(vals) else target_logps[i])
        fused = torch.stack(rows) if rows else target_logps.clone()
    return torch.minimum(fused, target_logps + clip)


class PreferenceLoss(NamedTuple):
    """The batch's mean loss and, per row, the margin ``z / β`` and whether it is positive."""

    loss: Tensor  # []
    margins: Tensor  # [B] (π_c − ρ_c) − (π_r − ρ_r), detached
    accuracy: Tensor  # [] share of rows whose margin is positive


def dpo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    beta: float,
    label_smoothing: float = 0.0,
) -> PreferenceLoss:
    """DPO (sigmoid) over sequence log-probabilities.  # [B] x4 -> scalar

    ``label_smoothing`` ``ε`` in [0, 0.5): the chance a pair's preference is flipped."""
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if not 0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    margins = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)  # [B]
    z = beta * margins
    losses = -(1 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)
    d = margins.detach()
    return PreferenceLoss(losses.mean(), d, (d > 0).float().mean())


def fused_dpo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    target_chosen: Tensor,
    target_rejected: Tensor,
    sources_chosen: Tensor,
    sources_rejected: Tensor,
    beta: float,
    rule: str = "mean",
    clip: float = 1.0,
    label_smoothing: float = 0.0,
) -> PreferenceLoss:
    """DPO whose reference is the sources' fused log-probability (`fused_reference`).

    ``target_*`` [B]: the target's starting log-probs (the clip's anchor); ``sources_*``
    [B, S]: each source's, in its own tokenizer and template."""
    if not math.isfinite(clip) or clip < 0:
        raise ValueError(f"clip must be a finite number >= 0, got {clip}")
    ref_c = fused_reference(sources_chosen, target_chosen, rule, clip)
    ref_r = fused_reference(sources_rejected, target_rejected, rule, clip)
    return dpo_loss(policy_chosen, policy_rejected, ref_c, ref_r, beta, label_smoothing)
