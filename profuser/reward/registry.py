"""Reward models by kind: one loader per ``RewardModelConfig.kind``.

==============  ==========================================================
kind            what it loads
==============  ==========================================================
``seq_cls``     any ``AutoModelForSequenceClassification`` with one output
                (FsfairX-LLaMA3-RM-v0.1, the tiny world's trained RM)
``custom_code`` a model with its own code, ``trust_remote_code=True``
                (Eurus-RM-7b)
``value_head``  ``AutoModel`` body + ``v_head`` from a state dict
                (Starling-RM-7B-alpha)
``reference``   0.25 BLEU + 0.25 ROUGE-L + 0.5 BERTScore against the GT
==============  ==========================================================

A plugin adds its own kinds with :func:`register_reward_kind` (the tiny world adds
``verifier``, its programmatic answer checker).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from profuser.config import RewardModelConfig
from profuser.errors import UserError
from profuser.reward.base import RewardModel
from profuser.reward.custom_code import load_custom_code
from profuser.reward.hf import default_device
from profuser.reward.reference import load_reference
from profuser.reward.seq_cls import load_seq_cls
from profuser.reward.value_head import load_value_head

Loader = Callable[..., RewardModel]  # (cfg, device, batch_size=...) -> RewardModel

REWARD_KINDS: dict[str, Loader] = {
    "seq_cls": load_seq_cls,
    "custom_code": load_custom_code,
    "value_head": load_value_head,
    "reference": load_reference,
}


# Kinds whose score is a verdict (1.0 right, 0.0 wrong) rather than a preference: reports
# count their answers right above 0.5 instead of at the row's highest score.
BINARY_KINDS: set[str] = set()


def register_reward_kind(kind: str, loader: Loader, binary: bool = False) -> None:
    """Make ``kind`` a reward-model kind configs may name, loaded by ``loader``
    (``binary``: its scores are verdicts, see :data:`BINARY_KINDS`)."""
    REWARD_KINDS[kind] = loader
    if binary:
        BINARY_KINDS.add(kind)


def load_reward_model(
    cfg: RewardModelConfig,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
) -> RewardModel:
    """Load the reward model ``cfg`` describes, on ``device`` (None: the GPU if there is one).

    ``batch_size`` is rows per forward pass (default: 8 for networks, 64 for
    the reference scorer). Problems with the files or the model (missing
    directory, no chat template, more than one output) raise a one-line UserError.
    """
    try:
        loader = REWARD_KINDS[cfg.kind]
    except KeyError:
        raise UserError(
            f"reward model {cfg.name!r}: unknown kind {cfg.kind!r}; "
            f"choose one of {', '.join(sorted(REWARD_KINDS))}"
        ) from None
    kwargs = {} if batch_size is None else {"batch_size": batch_size}
    return loader(cfg, default_device(device), **kwargs)
