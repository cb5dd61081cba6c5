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
from profuser.reward.hf import TransformerRewardModel, load_error, load_pretrained, reward_tensor

AUTO_CLASSES = {
    "AutoModelForSequenceClassification": AutoModelForSequenceClassification,
    "AutoModel": AutoModel,
}


class CustomCodeRewardModel(TransformerRewardModel):
    """A model with its own forward (taking ``input_ids`` and ``attention_mask``) that
    returns one reward per row; takes :class:`~profuser.reward.hf.TransformerRewardModel`'s
    arguments."""

    trust_remote_code = True

    @classmethod
    def load_parts(cls, cfg: RewardModelConfig, path: str, device: torch.device) -> tuple:
        """The model, through the Auto class its config's ``auto_map`` names."""
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
        what = f"the custom model ({auto_name})"
        auto = AUTO_CLASSES[auto_name]
        return (load_pretrained(auto, cfg.name, path, what, device, trust_remote_code=True),)

    def rewards(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[b, L]`` -> ``[b]``: whatever the model's own forward returns, as one reward a row."""
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return reward_tensor(out, input_ids.shape[0], self.name)


load_custom_code = CustomCodeRewardModel.load
