"""Low-rank fusion: the target wrapped in ``peft`` LoRA adapters, and how a trained one is saved.

Every schedule trains the same way with or without adapters; only the trainable parameters
differ. A finished variant is saved twice: the adapter alone under ``final/adapter`` (small, to
ship or to stack on the base model again), and the adapter merged into the base weights in
``final`` itself, an ordinary ``save_pretrained`` directory that evaluation, merging and lm-eval
load with ``from_pretrained`` and nothing else.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from profuser.config import LoraOptions
from profuser.errors import UserError

log = logging.getLogger("profuser")

ADAPTER_DIR = "adapter"


def _peft():
    try:
        import peft
    except ImportError:
        raise UserError(
            "train.lora needs the peft package: pip install peft (or leave train.lora unset "
            "to fine-tune every weight)"
        ) from None
    return peft


def wrap_lora(model: torch.nn.Module, opts: LoraOptions, seed: int) -> torch.nn.Module:
    """``model`` with LoRA adapters on ``opts.target_modules``; only the adapters train.

    The adapters' random initialisation is drawn from ``seed`` (without touching the global
    generator), so a seed gives the same run whatever ran before it in the process."""
    peft = _peft()
    config = peft.LoraConfig(
        r=opts.rank,
        lora_alpha=opts.alpha,
        lora_dropout=opts.dropout,
        target_modules=opts.target_modules,
        task_type=peft.TaskType.CAUSAL_LM,
    )
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            wrapped = peft.get_peft_model(model, config)
    except ValueError as e:  # peft names the modules it could not find
        raise UserError(f"train.lora.target_modules: {e}") from None
    trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    total = sum(p.numel() for p in wrapped.parameters())
    log.info(
        "train: LoRA rank %d on %s: %d of %d parameters train (%.2f%%)",
        opts.rank,
        opts.target_modules,
        trainable,
        total,
        100 * trainable / max(total, 1),
    )
    return wrapped


def is_lora(model: torch.nn.Module) -> bool:
    """Whether ``model`` carries peft adapters."""
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def base_model(model: torch.nn.Module) -> torch.nn.Module:
    """The Hugging Face model inside DDP/FSDP and peft wrappers (for signature checks)."""
    inner = getattr(model, "module", model)
    return inner.get_base_model() if is_lora(inner) else inner


def save_final(model: torch.nn.Module, directory: Path) -> None:
    """Save a trained target: with adapters, the adapter under ``directory/adapter`` and the
    merged weights in ``directory``; without, the weights in ``directory``."""
    if not is_lora(model):
        model.save_pretrained(directory)
        return
    model.save_pretrained(directory / ADAPTER_DIR)
    merged = model.merge_and_unload()  # folds B·A·alpha/r into the frozen weights, in place
    merged.save_pretrained(directory)
