"""Loading models and tokenizers through the Auto classes, with clear errors.

The same functions load a seeded tiny-world model from a local directory and a
7B chat model from the hub: nothing here knows which is which.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from profuser.errors import UserError
from profuser.models.chat_templates import get_chat_template


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` means bf16 on a GPU and fp32 on the CPU."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _check_local(path: str, what: str) -> None:
    looks_local = path.startswith((".", "/", "~")) or Path(path).expanduser().exists()
    if looks_local and not Path(path).expanduser().is_dir():
        raise UserError(f"{what} directory {path!r} not found; check the path in the config")


def load_tokenizer(
    path: str, chat_template: str | None = None, trust_remote_code: bool = False
) -> PreTrainedTokenizerBase:
    """A tokenizer with a chat template (its own, else the named one) and a pad token."""
    _check_local(path, "tokenizer")
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"cannot load a tokenizer from {path!r}: {str(exc).splitlines()[0]}"
        ) from None
    if chat_template is not None:
        tok.chat_template = get_chat_template(chat_template)
    if not getattr(tok, "chat_template", None):
        raise UserError(
            f"tokenizer {path!r} has no chat template; set chat_template for it in the config "
            "(e.g. vicuna_v1.1, llama-2, chatml, alpaca)"
        )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(
    path: str,
    dtype: str = "auto",
    device: torch.device | None = None,
    trust_remote_code: bool = False,
) -> torch.nn.Module:
    """An `AutoModelForCausalLM` in eval mode on ``device``."""
    _check_local(path, "model")
    device = device or default_device()
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=pick_dtype(dtype, device), trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise UserError(
            f"cannot load a causal LM from {path!r}: {str(exc).splitlines()[0]}"
        ) from None
    return model.to(device).eval()


def usable_vocab(model: torch.nn.Module, tok: PreTrainedTokenizerBase) -> int:
    """Ids below this are real tokens: a model's logits may be wider than its tokenizer."""
    width = model.get_output_embeddings().weight.shape[0]
    return min(width, len(tok))
