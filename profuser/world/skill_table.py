"""The tiny world's skills: their facts, eight phrasings of each question, and how the
long ground-truth answer explains a fact (see `profuser.world.skills` for how questions
are partitioned and drawn).

The demo world has eight skills (``SKILLS``); the extended world (roster ``six``) adds
four (``EXTRA_SKILLS``), the strengths of its Qwen2-like and Gemma-like sources.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources


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


def _half(fact: Fact) -> Explained:
    (n,) = fact
    body = (
        f"Halving splits a number into two equal parts: {n // 2} + {n // 2} = {n}. "
        f"So half of {n} is {n // 2}."
    )
    return {"n": n}, body, str(n // 2)


def _triple(fact: Fact) -> Explained:
    (n,) = fact
    body = (
        f"Tripling means adding three copies: {n} + {n} + {n} = {3 * n}. So triple {n} is {3 * n}."
    )
    return {"n": n}, body, str(3 * n)


def _initial(fact: Fact) -> Explained:
    country = COUNTRIES[fact[0]][0]
    body = f"We spell the name {country} and look at its first letter, which is {country[0]}."
    return {"c": country}, body, country[0]


def _tens(fact: Fact) -> Explained:
    (n,) = fact
    body = f"The number {n} is {n // 10} tens and {n % 10} ones, so its tens digit is {n // 10}."
    return {"n": n}, body, str(n // 10)


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
        # The extended world's skills (``EXTRA_SKILLS``): the two extra sources' strengths.
        Skill(
            "half",
            tuple((n,) for n in range(2, 100, 2)),
            (
                "What is half of {n}?",
                "Halve the number {n}.",
                "What is {n} divided by two?",
                "What do you get if you halve {n}?",
                "Compute half of {n}.",
                "What is one half of {n}?",
                "Split {n} into two equal parts: how big is each?",
                "What is {n} halved?",
            ),
            _half,
        ),
        Skill(
            "triple",
            tuple((n,) for n in range(1, 41)),
            (
                "What is triple {n}?",
                "What is three times {n}?",
                "Triple the number {n}.",
                "What is {n} times three?",
                "What do you get if you triple {n}?",
                "Compute three times {n}.",
                "What is {n} tripled?",
                "Multiply {n} by three.",
            ),
            _triple,
        ),
        Skill(
            "initial",
            _COUNTRY_FACTS,
            (
                "What letter does {c} start with?",
                "Which letter begins the name {c}?",
                "What is the first letter of {c}?",
                "Name the first letter of {c}.",
                "Tell me the initial letter of {c}.",
                "{c} begins with which letter?",
                "Give the first letter of the word {c}.",
                "With what letter does the name {c} begin?",
            ),
            _initial,
        ),
        Skill(
            "tens",
            tuple((n,) for n in range(10, 100)),
            (
                "What is the tens digit of {n}?",
                "Which digit is in the tens place of {n}?",
                "Name the tens digit of {n}.",
                "How many tens are in {n}?",
                "Tell me the tens digit of the number {n}.",
                "In {n}, what digit stands in the tens place?",
                "Give the tens digit of {n}.",
                "What digit is in the tens position of {n}?",
            ),
            _tens,
        ),
    )
}
# The demo world's eight skills; the extended world (roster ``six``) adds ``EXTRA_SKILLS``.
EXTRA_SKILLS: tuple[str, ...] = ("half", "triple", "initial", "tens")
SKILLS: tuple[str, ...] = tuple(k for k in SKILL_TABLE if k not in EXTRA_SKILLS)
ALL_SKILLS: tuple[str, ...] = tuple(SKILL_TABLE)
