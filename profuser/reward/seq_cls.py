"""Any ``AutoModelForSequenceClassification`` with one output as a reward model.

This is the structure of FsfairX-LLaMA3-RM-v0.1 (a plain
``LlamaForSequenceClassification``) and of the tiny world's trained RM. The
model pools its own hidden states (the last non-pad token for decoder models,
[CLS] for BERT-style ones) and its single logit is the reward.

Padding: rows are right-padded with the model's ``pad_token_id``. When the
config has none, the tokenizer's pad token (else unk, else eos) is written into
the config, as RewardBench does, so that batches larger than one work; the
model then takes the last token that is not that pad id as the end of the row.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForSequenceClassification

from profuser.config import RewardModelConfig
from profuser.errors import UserError
from profuser.reward.hf import TransformerRewardModel, load_pretrained, reward_tensor


class SeqClsRewardModel(TransformerRewardModel):
    """A sequence-classification model (``num_labels == 1``) whose one logit is the reward.

    Takes :class:`~profuser.reward.hf.TransformerRewardModel`'s arguments; a model
    with more than one output is a UserError.
    """

    def __init__(self, name: str, model: torch.nn.Module, *args, **kwargs):
        num_labels = getattr(model.config, "num_labels", 1)
        if num_labels != 1:
            raise UserError(
                f"reward model {name!r} has {num_labels} outputs (num_labels); a reward model "
                "needs exactly one"
            )
        super().__init__(name, model, *args, **kwargs)

    @classmethod
    def load_parts(cls, cfg: RewardModelConfig, path: str, device: torch.device) -> tuple:
        """The model, by ``AutoModelForSequenceClassification``."""
        auto = AutoModelForSequenceClassification
        return (load_pretrained(auto, cfg.name, path, "a sequence-classification model", device),)

    def rewards(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[b, L]`` -> the model's single logit per row ``[b]``."""
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return reward_tensor(out.logits, input_ids.shape[0], self.name)


load_seq_cls = SeqClsRewardModel.load
