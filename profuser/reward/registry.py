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
``verifier``    the tiny world's programmatic answer checker
``reference``   0.25 BLEU + 0.25 ROUGE-L + 0.5 BERTScore against the GT
==============  ==========================================================
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
from profuser.reward.verifier import load_verifier

Loader = Callable[..., RewardModel]  # (cfg, device, batch_size=...) -> RewardModel

REWARD_KINDS: dict[str, Loader] = {
    "seq_cls": load_seq_cls,
    "custom_code": load_custom_code,
    "value_head": load_value_head,
    "verifier": load_verifier,
    "reference": load_reference,
}


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
