"""The world's candidate pool: rows drawn like the fusion set, several times as many.

The select stage (`profuser.stages.select`) curates a budget of fusion rows from a larger
pool; the demo's selection study draws them from ``data/pool.jsonl``. The pool is the same
draw as the fusion set continued (`generate_examples` is prefix-stable under one seed and
split), so its first ``n_train`` rows are ``data/train.jsonl`` and every row comes from the
``train`` partition of questions: no eval or dev question is in it. Nothing in the world
trains on it, so it is written on demand into a built world without changing its key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from profuser.world.skills import SKILLS, WorldExample, generate_examples, skill_weights

POOL_FILE = "data/pool.jsonl"
POOL_SCALE = 4  # pool rows per fusion row


def write_examples(path: Path, examples: list[WorldExample]) -> None:
    """``examples`` as the world's JSONL data rows (the OpenOrca-like fields the demo reads)."""
    with path.open("w", encoding="utf-8") as f:
        for e in examples:
            row = {
                "id": e.id,
                "system_prompt": e.system,
                "question": e.instruction,
                "response": e.response,
                "skill": e.skill,
                "answer": e.answer,
                "short": e.short,
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def pool_examples(n_train: int, seed: int, skills: tuple[str, ...] = SKILLS) -> list[WorldExample]:
    """The candidate pool of a world with ``n_train`` fusion rows over ``skills``:
    ``POOL_SCALE`` times as many rows of the same draw, the fusion set first."""
    return generate_examples(n_train * POOL_SCALE, seed, "train", skill_weights(skills))


def ensure_pool(
    world_root: Path, n_train: int, seed: int, skills: tuple[str, ...] = SKILLS
) -> Path:
    """``<world_root>/data/pool.jsonl``, written first if it is not (atomically)."""
    final = Path(world_root) / POOL_FILE
    if final.is_file():
        return final
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    write_examples(tmp, pool_examples(n_train, seed, skills))
    os.replace(tmp, final)
    return final
