"""The tiny world's instruction set: seeded skills with long GT answers and short answers.

Every example carries a system message (a condensed form of one of the paper's Table 5
Orca messages, see `profuser.world.system_messages`), a long
ground-truth response that explains its steps (the "GPT-4" answer) and a short
answer (what the tiny sources are trained to give). The skills are small enough
that two-layer models learn them in a minute on a CPU, and different enough that
each source can be made strong somewhere else.

A skill is a set of *facts* (a country, a pair of numbers) and eight phrasings
of its question. Every (fact, phrasing) question belongs to exactly one
partition, ``train``, ``dev`` or ``eval``, by a fixed rule that does not depend
on the world's seed (:func:`partition_of`): for each fact, a few phrasings are
kept for the benchmark (``eval``) and a few for choosing defaults (``dev``);
the sources, the reward model, the tokenizers and the fusion set only ever see
``train`` questions. So no benchmark question is ever trained on, for any world
seed, while every fact is still learnable (closed-book knowledge, as MMLU tests
it): the benchmark asks a known fact in a phrasing the model never saw for it.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from functools import cache

from profuser.world.skill_table import (  # noqa: F401 (re-exported: the world's skill names)
    ALL_SKILLS,
    COUNTRIES,
    EXTRA_SKILLS,
    SKILL_TABLE,
    SKILLS,
    Fact,
    Skill,
)
from profuser.world.system_messages import WORLD_SYSTEM_MESSAGES

PARTITIONS = ("train", "dev", "eval")
# Each skill keeps at least this many distinct questions for the benchmark and the dev split.
EVAL_QUESTIONS_MIN = 100
DEV_QUESTIONS_MIN = 60
PARTITION_SALT = "profuser-world-partition-1"


@dataclass(frozen=True)
class WorldExample:
    """One instruction of the tiny world."""

    id: str
    skill: str
    system: str
    instruction: str
    response: str  # long GT answer that explains its steps and ends with "The answer is X."
    short: str  # short answer the sources learn
    answer: str  # canonical answer for checking

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _held_per_fact(skill: Skill) -> tuple[int, int]:
    """(eval, dev) phrasings kept per fact so each partition holds its minimum of questions."""
    n = len(skill.facts)
    return math.ceil(EVAL_QUESTIONS_MIN / n), math.ceil(DEV_QUESTIONS_MIN / n)


@cache
def phrasings_of(skill: str, fact: Fact) -> dict[str, tuple[int, ...]]:
    """The phrasing indices of ``fact`` in each partition (fixed; independent of any seed)."""
    s = SKILL_TABLE[skill]
    n_eval, n_dev = _held_per_fact(s)
    order = list(range(len(s.phrasings)))
    random.Random(f"{PARTITION_SALT}-{skill}-{fact}").shuffle(order)
    return {
        "eval": tuple(order[:n_eval]),
        "dev": tuple(order[n_eval : n_eval + n_dev]),
        "train": tuple(order[n_eval + n_dev :]),
    }


def partition_of(skill: str, fact: Fact, phrasing: int) -> str:
    """Which partition the question (skill, fact, phrasing) belongs to."""
    for name, kept in phrasings_of(skill, fact).items():
        if phrasing in kept:
            return name
    raise ValueError(f"{skill}: no phrasing {phrasing}")


def partition_questions(skill: str, partition: str) -> list[tuple[Fact, int]]:
    """Every (fact, phrasing) of ``skill`` in ``partition``."""
    return [(f, p) for f in SKILL_TABLE[skill].facts for p in phrasings_of(skill, f)[partition]]


def example_for(
    skill: str, fact: Fact, phrasing: int, system: str, example_id: str
) -> WorldExample:
    """The example asking ``fact`` of ``skill`` in ``phrasing`` under ``system``."""
    s = SKILL_TABLE[skill]
    _, body, answer = s.explain(fact)
    return WorldExample(
        id=example_id,
        skill=skill,
        system=system,
        instruction=s.question(fact, phrasing),
        response=f"{body} The answer is {answer}.",
        short=answer,
        answer=answer,
    )


def make_example(
    skill: str, rng: random.Random, index: int, split: str, partition: str = "train"
) -> WorldExample:
    """Draw one example of ``skill`` from ``partition`` with ``rng``."""
    s = SKILL_TABLE[skill]
    fact = s.facts[rng.randrange(len(s.facts))]
    phrasing = rng.choice(phrasings_of(skill, fact)[partition])
    system = rng.choice(WORLD_SYSTEM_MESSAGES)
    return example_for(skill, fact, phrasing, system, f"{split}-{index:06d}")


def generate_examples(
    n: int,
    seed: int,
    split: str = "train",
    skills: dict[str, float] | None = None,
    partition: str = "train",
) -> list[WorldExample]:
    """Generate ``n`` examples of ``partition``'s questions, deterministic under ``seed``.

    ``split`` names the draw (its random stream and the ids' prefix); ``skills``
    weights the skill mix (all skills equally by default).
    """
    if partition not in PARTITIONS:
        raise ValueError(f"unknown partition {partition!r}; use one of {PARTITIONS}")
    rng = random.Random(f"{seed}-{split}")
    weights = skills or skill_weights(SKILLS)
    names = sorted(weights)
    probs = [weights[k] for k in names]
    return [make_example(rng.choices(names, probs)[0], rng, i, split, partition) for i in range(n)]


def draw_distinct(
    skill: str, partition: str, count: int, rng: random.Random, split: str, start: int = 0
) -> list[WorldExample]:
    """``count`` examples of distinct questions of ``skill`` from ``partition``."""
    pool = partition_questions(skill, partition)
    if count > len(pool):
        raise ValueError(f"{skill}: {partition} holds {len(pool)} questions, {count} asked")
    picks = rng.sample(pool, count)
    return [
        example_for(skill, f, p, rng.choice(WORLD_SYSTEM_MESSAGES), f"{split}-{start + i:06d}")
        for i, (f, p) in enumerate(picks)
    ]


def split_world(
    n_train: int, n_heldout_per_skill: int, seed: int, skills: tuple[str, ...] = SKILLS
) -> tuple[list[WorldExample], list[WorldExample]]:
    """The fusion training set (``train`` questions of ``skills``, in equal shares) and a
    held-out set of ``n_heldout_per_skill`` distinct ``dev`` questions per skill (the
    build's own check)."""
    rng = random.Random(f"{seed}-heldout")
    heldout: list[WorldExample] = []
    for skill in sorted(skills):
        heldout += draw_distinct(skill, "dev", n_heldout_per_skill, rng, "heldout", len(heldout))
    return generate_examples(n_train, seed, "train", skill_weights(skills)), heldout


def skill_weights(
    skills: tuple[str, ...], strong: tuple[str, ...] = (), weak: float = 1.0
) -> dict[str, float]:
    """{skill: weight} over ``skills``: 1.0 for ``strong`` ones, ``weak`` for the rest (all
    1.0 by default, which draws exactly as ``generate_examples`` does without weights)."""
    return {k: (1.0 if k in strong else weak) for k in skills}
