"""Helpers the stages share: reading the normalised data, opening sources."""

from __future__ import annotations

from pathlib import Path

import datasets

from profuser.config import RunConfig, SourceConfig
from profuser.models import load_causal_lm, load_tokenizer


def read_data(run_dir: Path) -> list[dict]:
    """The data stage's rows (id, system, instruction, response, extras)."""
    return datasets.Dataset.from_parquet(str(run_dir / "data" / "train.parquet")).to_list()


def open_source(src: SourceConfig):
    """(tokenizer, model) of one source, through the Auto classes."""
    tok = load_tokenizer(src.path, src.chat_template, src.trust_remote_code)
    model = load_causal_lm(src.path, src.dtype, trust_remote_code=src.trust_remote_code)
    return tok, model


def target_source(cfg: RunConfig) -> SourceConfig:
    """The target model as a source entry (a separate target_path, or the named source)."""
    if cfg.target_path:
        base = next((s for s in cfg.sources if s.name == cfg.target), None)
        return SourceConfig(
            name=cfg.target,
            path=cfg.target_path,
            chat_template=base.chat_template if base else None,
            dtype=base.dtype if base else "auto",
        )
    return next(s for s in cfg.sources if s.name == cfg.target)
