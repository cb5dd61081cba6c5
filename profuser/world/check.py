"""Per-skill held-out accuracy of a model: greedy answers, exact match on the extracted answer."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from profuser.generate.engine import generate
from profuser.models.chat import end_of_turn_ids, render_prompt
from profuser.models.loading import load_causal_lm, load_tokenizer, usable_vocab
from profuser.world.answers import is_correct


def read_jsonl(path: Path) -> list[dict]:
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def skill_accuracy(
    model_dir: Path | str, heldout: Path | str, max_new_tokens: int = 64, batch_size: int = 32
) -> dict[str, float]:
    """{skill: accuracy} of greedy answers to the held-out questions (loaded via Auto classes)."""
    tok = load_tokenizer(str(model_dir))
    model = load_causal_lm(str(model_dir))
    rows = read_jsonl(Path(heldout))
    prompts = [render_prompt(tok, r["system_prompt"], r["question"]) for r in rows]
    outs = generate(
        model,
        tok,
        prompts,
        [0] * len(rows),
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        valid_vocab=usable_vocab(model, tok),
        stop_ids=end_of_turn_ids(tok),
    )
    hits: dict[str, list[bool]] = defaultdict(list)
    for r, g in zip(rows, outs, strict=True):
        hits[r["skill"]].append(is_correct(g.text, r["answer"]))
    return {k: sum(v) / len(v) for k, v in sorted(hits.items())}
