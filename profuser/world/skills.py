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

import csv
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources

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


def _countries() -> list[tuple[str, str, str]]:
    text = resources.files("profuser.world").joinpath("data/countries.tsv").read_text("utf-8")
    rows = list(csv.DictReader(text.splitlines(), delimiter="\t"))
    return [(r["country"], r["capital"], r["continent"]) for r in rows]


COUNTRIES = _countries()
ONES = "zero one two three four five six seven eight nine".split()

Fact = tuple  # a skill's fact key, e.g. (country index,) or (a, b)
Explained = tuple[dict[str, object], str, str]  # phrasing fields, long response body, answer


@dataclass(frozen=True)
class Skill:
    """A skill: its facts, eight phrasings of the question, and how a fact is explained."""

    name: str
    facts: tuple[Fact, ...]
    phrasings: tuple[str, ...]  # str.format templates over the fields `explain` returns
    explain: Callable[[Fact], Explained]

    def question(self, fact: Fact, phrasing: int) -> str:
        return self.phrasings[phrasing].format(**self.explain(fact)[0])


def _capital(fact: Fact) -> Explained:
    country, capital, continent = COUNTRIES[fact[0]]
    body = (
        f"The question asks for the capital city of {country}. {country} is a country in "
        f"{continent}. The seat of its government is the city of {capital}, so {capital} is "
        f"the capital of {country}."
    )
    return {"c": country}, body, capital


def _continent(fact: Fact) -> Explained:
    country, _, continent = COUNTRIES[fact[0]]
    body = (
        f"We need the continent that contains {country}. Looking at a map, {country} lies in "
        f"{continent}. Therefore {country} is on the continent of {continent}."
    )
    return {"c": country}, body, continent


def _add(fact: Fact) -> Explained:
    a, b = fact
    body = (
        f"We start with {a} ({ONES[a]}) and count up by {b} ({ONES[b]}). Counting {b} steps "
        f"from {a} gives {a + b}. So {a} + {b} = {a + b}."
    )
    return {"a": a, "b": b}, body, str(a + b)


def _compare(fact: Fact) -> Explained:
    a, b = fact
    big = max(a, b)
    if a // 10 != b // 10:
        why = f"The tens digits are {a // 10} and {b // 10}, and {big // 10} is the larger one."
    else:
        why = f"The tens digits are equal, so we compare the ones digits {a % 10} and {b % 10}."
    return (
        {"a": a, "b": b},
        f"We compare {a} and {b}. {why} So the larger number is {big}.",
        str(big),
    )


def _parity(fact: Fact) -> Explained:
    (n,) = fact
    word = "even" if n % 2 == 0 else "odd"
    body = (
        f"A number is even when its last digit is 0, 2, 4, 6 or 8. The last digit of {n} is "
        f"{n % 10}, so {n} is {word}."
    )
    return {"n": n}, body, word


def _next(fact: Fact) -> Explained:
    (n,) = fact
    return (
        {"n": n},
        f"Counting up by one from {n}, the next number is {n} + 1 = {n + 1}.",
        str(n + 1),
    )


def _before(fact: Fact) -> Explained:
    (n,) = fact
    body = f"Counting down by one from {n}, the number before it is {n} - 1 = {n - 1}."
    return {"n": n}, body, str(n - 1)


def _double(fact: Fact) -> Explained:
    (n,) = fact
    body = (
        f"Doubling means adding a number to itself: {n} + {n} = {2 * n}. So double {n} is {2 * n}."
    )
    return {"n": n}, body, str(2 * n)


_COUNTRY_FACTS = tuple((i,) for i in range(len(COUNTRIES)))

SKILL_TABLE: dict[str, Skill] = {
    s.name: s
    for s in (
        Skill(
            "capital",
            _COUNTRY_FACTS,
            (
                "What is the capital of {c}?",
                "Name the capital city of {c}.",
                "Which city is the capital of {c}?",
                "Tell me the capital of {c}.",
                "What city serves as the capital of {c}?",
                "What is {c}'s capital?",
                "Give the capital of {c}.",
                "I need the capital city of {c}.",
            ),
            _capital,
        ),
        Skill(
            "continent",
            _COUNTRY_FACTS,
            (
                "On which continent is {c}?",
                "Which continent is {c} in?",
                "Name the continent where {c} lies.",
                "What continent is {c} part of?",
                "Tell me which continent {c} belongs to.",
                "{c} is on which continent?",
                "Which continent contains {c}?",
                "In what continent would you find {c}?",
            ),
            _continent,
        ),
        Skill(
            "add",
            tuple((a, b) for a in range(10) for b in range(10)),
            (
                "What is {a} + {b}?",
                "Add {a} and {b}.",
                "What is the sum of {a} and {b}?",
                "Compute {a} plus {b}.",
                "How much is {a} plus {b}?",
                "Calculate {a} + {b}.",
                "What do you get when you add {a} and {b}?",
                "Find the total of {a} and {b}.",
            ),
            _add,
        ),
        Skill(
            "compare",
            tuple((a, b) for a in range(10, 100) for b in range(10, 100) if a != b),
            (
                "Which is larger, {a} or {b}?",
                "Which number is bigger: {a} or {b}?",
                "Of {a} and {b}, which is greater?",
                "Pick the larger number: {a} or {b}.",
                "Which is the bigger number, {a} or {b}?",
                "Tell me which is greater, {a} or {b}.",
                "Between {a} and {b}, which number is larger?",
                "Which of {a} and {b} is larger?",
            ),
            _compare,
        ),
        Skill(
            "parity",
            tuple((n,) for n in range(1, 100)),
            (
                "Is {n} even or odd?",
                "Tell me whether {n} is odd or even.",
                "Is the number {n} odd or even?",
                "Say if {n} is even or odd.",
                "Would you call {n} even or odd?",
                "Is {n} an even number or an odd number?",
                "Decide whether {n} is even or odd.",
                "What is the parity of {n}: even or odd?",
            ),
            _parity,
        ),
        Skill(
            "next",
            tuple((n,) for n in range(1, 99)),
            (
                "What number comes after {n}?",
                "What is the next number after {n}?",
                "Which number follows {n}?",
                "What comes right after {n}?",
                "Count one up from {n}: what number do you get?",
                "What is the number after {n}?",
                "Name the number that comes after {n}.",
                "What is one more than {n}?",
            ),
            _next,
        ),
        Skill(
            "before",
            tuple((n,) for n in range(2, 100)),
            (
                "What number comes before {n}?",
                "What is the number just before {n}?",
                "Which number precedes {n}?",
                "What comes right before {n}?",
                "Count one down from {n}: what number do you get?",
                "What is the number before {n}?",
                "Name the number that comes before {n}.",
                "What is one less than {n}?",
            ),
            _before,
        ),
        Skill(
            "double",
            tuple((n,) for n in range(1, 50)),
            (
                "What is double {n}?",
                "What is twice {n}?",
                "Double the number {n}.",
                "What is {n} times two?",
                "What do you get if you double {n}?",
                "Compute two times {n}.",
                "What is {n} doubled?",
                "Multiply {n} by two.",
            ),
            _double,
        ),
    )
}
SKILLS: tuple[str, ...] = tuple(SKILL_TABLE)


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
    weights = skills or {name: 1.0 for name in SKILLS}
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
    n_train: int, n_heldout_per_skill: int, seed: int
) -> tuple[list[WorldExample], list[WorldExample]]:
    """The fusion training set (``train`` questions) and a held-out set of
    ``n_heldout_per_skill`` distinct ``dev`` questions per skill (the build's own check)."""
    rng = random.Random(f"{seed}-heldout")
    heldout: list[WorldExample] = []
    for skill in sorted(SKILLS):
        heldout += draw_distinct(skill, "dev", n_heldout_per_skill, rng, "heldout", len(heldout))
    return generate_examples(n_train, seed, "train"), heldout
