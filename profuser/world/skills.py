"""The tiny world's instruction set: seeded skills with long GT answers and short answers.

Every example carries one of the Orca system messages (paper, Table 5), a long
ground-truth response that explains its steps (the "GPT-4" answer) and a short
answer (what the tiny sources are trained to give). The skills are small enough
that two-layer models learn them in a minute on a CPU, and different enough that
each source can be made strong somewhere else.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import resources

from profuser.world.system_messages import ORCA_SYSTEM_MESSAGES


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

Item = tuple[str, str, str]  # instruction, long response body, answer


def _capital(rng: random.Random) -> Item:
    country, capital, continent = rng.choice(COUNTRIES)
    q = rng.choice([f"What is the capital of {country}?", f"Name the capital city of {country}."])
    body = (
        f"The question asks for the capital city of {country}. {country} is a country in "
        f"{continent}. The seat of its government is the city of {capital}, so {capital} is "
        f"the capital of {country}."
    )
    return q, body, capital


def _continent(rng: random.Random) -> Item:
    country, _, continent = rng.choice(COUNTRIES)
    q = rng.choice([f"On which continent is {country}?", f"Which continent is {country} in?"])
    body = (
        f"We need the continent that contains {country}. Looking at a map, {country} lies in "
        f"{continent}. Therefore {country} is on the continent of {continent}."
    )
    return q, body, continent


def _add(rng: random.Random) -> Item:
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    q = rng.choice([f"What is {a} + {b}?", f"Add {a} and {b}."])
    body = (
        f"We start with {a} ({ONES[a]}) and count up by {b} ({ONES[b]}). Counting {b} steps "
        f"from {a} gives {a + b}. So {a} + {b} = {a + b}."
    )
    return q, body, str(a + b)


def _compare(rng: random.Random) -> Item:
    a, b = rng.sample(range(10, 100), 2)
    big = max(a, b)
    q = rng.choice([f"Which is larger, {a} or {b}?", f"Which number is bigger: {a} or {b}?"])
    if a // 10 != b // 10:
        why = f"The tens digits are {a // 10} and {b // 10}, and {big // 10} is the larger one."
    else:
        why = f"The tens digits are equal, so we compare the ones digits {a % 10} and {b % 10}."
    body = f"We compare {a} and {b}. {why} So the larger number is {big}."
    return q, body, str(big)


def _parity(rng: random.Random) -> Item:
    n = rng.randint(1, 99)
    word = "even" if n % 2 == 0 else "odd"
    q = rng.choice([f"Is {n} even or odd?", f"Tell me whether {n} is odd or even."])
    body = (
        f"A number is even when its last digit is 0, 2, 4, 6 or 8. The last digit of {n} is "
        f"{n % 10}, so {n} is {word}."
    )
    return q, body, word


def _next(rng: random.Random) -> Item:
    n = rng.randint(1, 98)
    q = rng.choice([f"What number comes after {n}?", f"What is the next number after {n}?"])
    body = f"Counting up by one from {n}, the next number is {n} + 1 = {n + 1}."
    return q, body, str(n + 1)


def _before(rng: random.Random) -> Item:
    n = rng.randint(2, 99)
    q = rng.choice([f"What number comes before {n}?", f"What is the number just before {n}?"])
    body = f"Counting down by one from {n}, the number before it is {n} - 1 = {n - 1}."
    return q, body, str(n - 1)


def _double(rng: random.Random) -> Item:
    n = rng.randint(1, 49)
    q = rng.choice([f"What is double {n}?", f"What is twice {n}?"])
    body = (
        f"Doubling means adding a number to itself: {n} + {n} = {2 * n}. So double {n} is {2 * n}."
    )
    return q, body, str(2 * n)


SKILLS: dict[str, Callable[[random.Random], Item]] = {
    "capital": _capital,
    "continent": _continent,
    "add": _add,
    "compare": _compare,
    "parity": _parity,
    "next": _next,
    "before": _before,
    "double": _double,
}


def make_example(skill: str, rng: random.Random, index: int, split: str) -> WorldExample:
    """Draw one example of ``skill`` with ``rng``."""
    instruction, body, answer = SKILLS[skill](rng)
    system = rng.choice(ORCA_SYSTEM_MESSAGES)
    response = f"{body} The answer is {answer}."
    return WorldExample(
        id=f"{split}-{index:06d}",
        skill=skill,
        system=system,
        instruction=instruction,
        response=response,
        short=answer,
        answer=answer,
    )


def generate_examples(
    n: int,
    seed: int,
    split: str = "train",
    skills: dict[str, float] | None = None,
    exclude: set[str] | None = None,
) -> list[WorldExample]:
    """Generate ``n`` examples, deterministic under ``seed``.

    ``skills`` weights the skill mix (all skills equally by default); ``exclude``
    holds instructions that must not appear (to keep a held-out split disjoint).
    """
    rng = random.Random(f"{seed}-{split}")
    weights = skills or {name: 1.0 for name in SKILLS}
    names = sorted(weights)
    probs = [weights[k] for k in names]
    out: list[WorldExample] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 200 * n + 1000:
            raise RuntimeError(f"could not draw {n} distinct {split} examples")
        ex = make_example(rng.choices(names, probs)[0], rng, len(out), split)
        if exclude and ex.instruction in exclude:
            continue
        out.append(ex)
    return out


# Skills whose instruction space is large enough that the held-out split can avoid
# every training instruction. The others (a few dozen facts, a hundred sums) play
# the part of closed-book knowledge, as MMLU does for real models: their held-out
# examples are fresh draws (new system message and phrasing) of the same facts.
UNSEEN_HELDOUT_SKILLS = frozenset({"compare"})


def split_world(
    n_train: int, n_heldout_per_skill: int, seed: int
) -> tuple[list[WorldExample], list[WorldExample]]:
    """A training set and a held-out set with ``n_heldout_per_skill`` examples per skill.

    Held-out instructions of :data:`UNSEEN_HELDOUT_SKILLS` never occur in training.
    """
    heldout: list[WorldExample] = []
    rng = random.Random(f"{seed}-heldout")
    for skill in sorted(SKILLS):
        for _ in range(n_heldout_per_skill):
            heldout.append(make_example(skill, rng, len(heldout), "heldout"))
    held_instr = {e.instruction for e in heldout if e.skill in UNSEEN_HELDOUT_SKILLS}
    train = generate_examples(n_train, seed, "train", exclude=held_instr)
    return train, heldout


def normalize_answer(text: str) -> str:
    """Lower-case, keep letters and digits, collapse the rest to single spaces."""
    out = "".join(ch.lower() if ch.isalnum() else " " for ch in text)
    return " ".join(out.split())


def extract_answer(text: str) -> str:
    """The answer part of a generation: after the last "answer is", else the whole text."""
    low = text.lower()
    key = "answer is"
    i = low.rfind(key)
    if i >= 0:
        text = text[i + len(key) :]
    return normalize_answer(text)


def is_correct(generation: str, answer: str) -> bool:
    """Exact match of the extracted answer, case- and punctuation-insensitive."""
    return extract_answer(generation) == normalize_answer(answer)
