"""Reward models that ship their own modeling code (``trust_remote_code``), like Eurus-RM-7b.

Eurus-RM-7b's directory holds a modeling file and a ``config.json`` whose
``auto_map`` names the class; its forward takes ``input_ids`` and
``attention_mask`` and returns the reward at each row's last real token,
``[batch, 1]``. This adapter loads any such model through the Auto class that
``auto_map`` names (``AutoModelForSequenceClassification`` when present, else
``AutoModel``) and accepts what the forward returns: a tensor ``[batch]`` or
``[batch, 1]``, a tuple starting with one, or an output with ``.rewards`` or
``.logits``. Rows are right-padded and the attention mask marks real tokens;
the model's own code decides where it reads the reward.

Only point this at code you trust: loading executes the directory's Python.
"""

from __future__ import annotations

import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from profuser.config import RewardModelConfig
from profuser.errors import UserError
from profuser.reward.hf import (
    TransformerRewardModel,
    check_model_path,
    default_dtype,
    load_error,
    load_rm_tokenizer,
    model_max_length,
    reward_tensor,
)

AUTO_CLASSES = {
    "AutoModelForSequenceClassification": AutoModelForSequenceClassification,
    "AutoModel": AutoModel,
}


class CustomCodeRewardModel(TransformerRewardModel):
    """A model with its own forward that returns one reward per row.

    Args:
        name: the RM's name.
        model: the loaded model (any ``nn.Module`` whose forward takes
            ``input_ids`` and ``attention_mask``).
        tokenizer: its tokenizer (chat template and pad token set).
        device: where the model runs.
        batch_size: rows per forward pass.
        max_length: tokens per row; None = the model's and tokenizer's limit.
    """

    def __init__(
        self,
        name: str,
        model: torch.nn.Module,
        tokenizer,
        device: torch.device,
        batch_size: int = 8,
        max_length: int | None = None,
    ):
        config = getattr(model, "config", None)
        super().__init__(
            name, tokenizer, device, batch_size, model_max_length(tokenizer, config, max_length)
        )
        if config is not None and getattr(config, "pad_token_id", 0) is None:
            # Standard sequence-classification pooling needs it for batches larger than one.
            config.pad_token_id = tokenizer.pad_token_id
        if config is not None and getattr(config, "pad_token_id", None) is not None:
            self.pad_id = config.pad_token_id
        self.model = model.to(device).eval()

    def rewards(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[b, L]`` -> ``[b]``: whatever the model's own forward returns, as one reward a row."""
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return reward_tensor(out, input_ids.shape[0], self.name)


def load_custom_code(
    cfg: RewardModelConfig,
    device: torch.device,
    batch_size: int = 8,
    max_length: int | None = None,
) -> CustomCodeRewardModel:
    """Load ``cfg.path`` with ``trust_remote_code=True`` through the class its auto_map names."""
    path = check_model_path(cfg.path, cfg.name)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=True)
    except (OSError, ValueError) as exc:
        raise load_error(cfg.name, path, "a config", exc) from None
    auto_map = getattr(config, "auto_map", None) or {}
    auto_name = next((k for k in AUTO_CLASSES if k in auto_map), None)
    if auto_name is None:
        raise UserError(
            f"reward model {cfg.name!r}: config.json in {path!r} maps no custom model class "
            "(auto_map has neither AutoModel nor AutoModelForSequenceClassification); "
            "use kind seq_cls for a standard architecture"
        )
    tok = load_rm_tokenizer(cfg.name, path, cfg.chat_template, trust_remote_code=True)
    try:
        model = AUTO_CLASSES[auto_name].from_pretrained(
            path, trust_remote_code=True, dtype=default_dtype(device)
        )
    except (OSError, ValueError, ImportError) as exc:
        raise load_error(cfg.name, path, f"the custom model ({auto_name})", exc) from None
    return CustomCodeRewardModel(cfg.name, model, tok, device, batch_size, max_length)
