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
from profuser.reward.hf import (
    TransformerRewardModel,
    check_model_path,
    default_dtype,
    load_error,
    load_rm_tokenizer,
    model_max_length,
    reward_tensor,
)


class SeqClsRewardModel(TransformerRewardModel):
    """A sequence-classification model whose one logit is the reward.

    Args:
        name: the RM's name.
        model: a loaded ``*ForSequenceClassification`` with ``num_labels == 1``.
        tokenizer: its tokenizer (chat template and pad token set).
        device: where the model runs (the model is moved there).
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
        config = model.config
        num_labels = getattr(config, "num_labels", 1)
        if num_labels != 1:
            raise UserError(
                f"reward model {name!r} has {num_labels} outputs (num_labels); a reward model "
                "needs exactly one"
            )
        text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
        if getattr(text_config, "pad_token_id", None) is None:
            text_config.pad_token_id = tokenizer.pad_token_id
            config.pad_token_id = tokenizer.pad_token_id
        super().__init__(
            name, tokenizer, device, batch_size, model_max_length(tokenizer, config, max_length)
        )
        self.pad_id = text_config.pad_token_id
        self.model = model.to(device).eval()

    def rewards(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[b, L]`` -> the model's single logit per row ``[b]``."""
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return reward_tensor(out.logits, input_ids.shape[0], self.name)


def load_seq_cls(
    cfg: RewardModelConfig,
    device: torch.device,
    batch_size: int = 8,
    max_length: int | None = None,
) -> SeqClsRewardModel:
    """Load ``cfg.path`` with ``AutoModelForSequenceClassification`` and its tokenizer."""
    path = check_model_path(cfg.path, cfg.name)
    tok = load_rm_tokenizer(cfg.name, path, cfg.chat_template)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, dtype=default_dtype(device)
        )
    except (OSError, ValueError) as exc:
        raise load_error(cfg.name, path, "a sequence-classification model", exc) from None
    return SeqClsRewardModel(cfg.name, model, tok, device, batch_size, max_length)
