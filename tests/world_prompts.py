"""Shared by the generation tests: a world source's chat prompts, seeds and sampling options."""

from __future__ import annotations

from pathlib import Path

from profuser.generate.engine import example_seed
from profuser.models.chat import end_of_turn_ids, render_prompt
from profuser.models.loading import load_tokenizer, usable_vocab
from profuser.world.check import read_jsonl


def world_prompts(world: Path, name: str, n: int) -> tuple:
    """(tokenizer, prompts in the source's chat template, per-example seeds) of the first
    ``n`` training rows, for source ``name``."""
    tok = load_tokenizer(str(world / "models" / name))
    rows = read_jsonl(world / "data" / "train.jsonl")[:n]
    prompts = [render_prompt(tok, r["system_prompt"], r["question"]) for r in rows]
    return tok, prompts, [example_seed(0, r["id"], name) for r in rows]


def prompt_ids(tok, prompts: list[str]) -> list[list[int]]:
    return [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]


def sampling(tok, model, max_new_tokens: int = 12) -> dict:
    """``generate`` options: T=1, top-p 0.95, the template's end-of-turn stops."""
    return dict(
        temperature=1.0,
        top_p=0.95,
        max_new_tokens=max_new_tokens,
        stop_ids=end_of_turn_ids(tok),
        valid_vocab=usable_vocab(model, tok),
    )
