"""Helpers for the reward-model tests: tiny tokenizers, saved model directories."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import PreTrainedTokenizerFast

from profuser.models.chat_templates import get_chat_template
from profuser.world.tokenizers import build_tokenizer

POISON = "<poison>"  # an answer holding this token is made to fail in the NaN tests


def make_tokenizer(
    texts: list[str], template: str | None = "chatml", kind: str = "byte_bpe"
) -> PreTrainedTokenizerFast:
    """A small tokenizer with chatml's markers and the poison token; ``template`` by name."""
    extra = ("<|im_start|>", "<|im_end|>", POISON)
    chat = get_chat_template(template) if template else None
    return build_tokenizer(kind, texts, 300, extra, chat)


def save_dir(path: Path, model: torch.nn.Module, tok: PreTrainedTokenizerFast) -> Path:
    """``save_pretrained`` model and tokenizer into ``path``."""
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def prompts_answers(examples) -> tuple[list[tuple[str, str]], list[str]]:
    """(system, instruction) prompts and short answers of ``examples``, one of them long."""
    prompts = [(e.system, e.instruction) for e in examples]
    answers = [e.short for e in examples]
    answers[1] = examples[1].response  # rows of different lengths share a batch
    return prompts, answers


def poison_rows(model: torch.nn.Module, poison_id: int, mode: str = "nan") -> None:
    """Wrap ``model.forward``: rows holding ``poison_id`` get NaN outputs (or the batch raises)."""
    inner = model.forward

    def forward(*args, **kwargs):
        ids = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
        bad = (ids == poison_id).any(dim=-1)  # [b]
        if mode == "raise" and bad.any():
            raise RuntimeError("poisoned batch")
        out = inner(*args, **kwargs)
        first = out if isinstance(out, torch.Tensor) else out[0]  # logits / rewards / hidden
        first[bad] = float("nan")
        return out

    model.forward = forward
