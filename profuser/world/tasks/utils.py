"""Helpers the tiny-world task YAMLs name with ``!function`` (loaded by lm-eval from this file).

The items live in ``data/items.jsonl`` beside this file (made by
``scripts/make_world_tasks.py``), so the tasks need no network and no path
relative to the working directory.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import datasets

from profuser.world.answers import is_correct

DATA = Path(__file__).resolve().parent / "data" / "items.jsonl"


@lru_cache(maxsize=1)
def _rows() -> tuple[dict, ...]:
    with DATA.open(encoding="utf-8") as f:
        return tuple(json.loads(line) for line in f if line.strip())


def load_skill(skill: str, split: str = "eval", **_: object) -> datasets.DatasetDict:
    """One skill's items of ``split`` (``eval``: the benchmark; ``dev``: for choosing
    defaults) as lm-eval's ``test`` split (its ``custom_dataset`` hook).

    lm-eval calls this with the task's ``dataset_kwargs`` and metadata; only ``skill``
    and ``split`` are used.
    """
    rows = [dict(r) for r in _rows() if r["skill"] == skill and r["split"] == split]
    if not rows:
        raise ValueError(f"no tiny-world {split} items for skill {skill!r} in {DATA}")
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


# The question, choices and gold answer come from functions rather than Jinja strings:
# lm-eval compiles a Jinja template anew for every document it renders, which took a third
# of an evaluation of a world model; the rendered text is the same.
def doc_to_text(doc: dict) -> str:
    """The question, as the user turn."""
    return doc["question"]


def doc_to_choice(doc: dict) -> list[str]:
    """The four answer options of a multiple-choice item."""
    return list(doc["choices"])


def doc_to_target(doc: dict) -> str:
    """The gold answer of a generative item."""
    return doc["answer"]


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """Exact match of the generated answer (after "answer is", normalised) with the gold one."""
    return {"exact_match": float(is_correct(results[0], doc["answer"]))}
