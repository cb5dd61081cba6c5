"""Pairing rules: which (chosen, rejected) pair of the sources' answers a prompt yields.

Implicit fusion learns from preferences over the sources' sampled answers. A rule sees one
prompt's candidates (every source's every sample, with its score from the strongest reward
model) and returns one pair or None. Rules live in a registry, like the selection rules:

* ``intra_source`` (FuseChat-3.0): the best- against the worst-scored answer of the *same*
  source, so that no source's style is what gets rewarded; of the sources that have such a
  pair, the one whose best answer scores highest.
* ``cross_source``: the best-scored answer of all against the worst-scored of all.

A pair needs a score gap above 0 and at least ``margin``, and two different texts; empty and
unscored (NaN) answers never take part. A prompt without a valid pair yields None (the stage
drops and counts it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """One sampled answer of one source to one prompt, with its score."""

    source: str
    sample: int  # 0: the inference-mode answer; 1..n-1: the extra samples
    answer: str
    score: float


@dataclass(frozen=True)
class Pair:
    chosen: Candidate
    rejected: Candidate

    @property
    def margin(self) -> float:
        return self.chosen.score - self.rejected.score


PairingRule = Callable[[Sequence[Candidate], float], "Pair | None"]
PAIRING_RULES: dict[str, PairingRule] = {}


def register_pairing_rule(name: str) -> Callable[[PairingRule], PairingRule]:
    """Register a pairing rule under ``name``."""

    def wrap(fn: PairingRule) -> PairingRule:
        if name in PAIRING_RULES:
            raise ValueError(f"pairing rule {name!r} is already registered")
        PAIRING_RULES[name] = fn
        return fn

    return wrap


def get_pairing_rule(name: str) -> PairingRule:
    """The pairing rule ``name``; a ValueError naming the registered rules otherwise."""
    if name not in PAIRING_RULES:
        raise ValueError(f"unknown pairing rule {name!r}; choose from {', '.join(PAIRING_RULES)}")
    return PAIRING_RULES[name]


def _usable(cands: Sequence[Candidate]) -> list[Candidate]:
    return [c for c in cands if c.answer.strip() and not math.isnan(c.score)]


def _extremes(cands: Sequence[Candidate], margin: float) -> Pair | None:
    """The best against the worst of ``cands`` (the first of equals), if it is a valid pair."""
    if len(cands) < 2:
        return None
    best = max(cands, key=lambda c: c.score)  # max/min keep the first of equal scores
    worst = min(cands, key=lambda c: c.score)
    pair = Pair(best, worst)
    if pair.margin <= 0 or pair.margin < margin or best.answer == worst.answer:
        return None
    return pair


@register_pairing_rule("intra_source")
def intra_source(cands: Sequence[Candidate], margin: float) -> Pair | None:
    by_source: dict[str, list[Candidate]] = {}
    for c in _usable(cands):
        by_source.setdefault(c.source, []).append(c)
    pairs = [p for group in by_source.values() if (p := _extremes(group, margin)) is not None]
    if not pairs:
        return None
    # the strongest source on this prompt; then the wider gap; then the sources' order
    return max(pairs, key=lambda p: (p.chosen.score, p.margin))


@register_pairing_rule("cross_source")
def cross_source(cands: Sequence[Candidate], margin: float) -> Pair | None:
    return _extremes(_usable(cands), margin)


def needs_samples(rule: str) -> int:
    """The fewest answers per source and prompt ``rule`` can pair (advantage.sampling.n)."""
    return 2 if rule == "intra_source" else 1
