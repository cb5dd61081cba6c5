"""Selection rules: a budget of fusion rows from a candidate pool, picked by name.

The paper samples its fusion data at random and names that as a limitation: random rows need
not show where the sources differ from the target. The advantage rules rank the pool by the
training-mode *gap*: how much better (lower CE per byte of the ground-truth answer) the best
source predicts a row than the target does. Per byte, so sources with different tokenizers
compare on the same text. Rows where the target is already the best have gap <= 0.

A rule maps ``(gaps or None, budget, seed)`` to the sorted pool indices it keeps; the rules
that read gaps say so (``needs_gaps``), and only then does the select stage pay for the
sources' teacher forwards over the pool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PoolGaps:
    """Per pool row: every model's CE per byte of the GT answer, the target's column first."""

    ce_per_byte: np.ndarray  # [N, M] float, NaN where a model could not score the row

    @property
    def gap(self) -> np.ndarray:
        """[N] target CE − the best other model's CE (NaN where either is missing)."""
        others = self.ce_per_byte[:, 1:]
        usable = ~np.isnan(others).all(axis=1)
        best = np.full(len(others), np.nan)
        best[usable] = np.nanmin(others[usable], axis=1)
        return self.ce_per_byte[:, 0] - best

    @property
    def leader(self) -> np.ndarray:
        """[N] the column of the lowest CE per byte (0 = the target; -1 where none scored)."""
        filled = np.where(np.isnan(self.ce_per_byte), np.inf, self.ce_per_byte)
        out = filled.argmin(axis=1)
        out[np.isinf(filled.min(axis=1))] = -1
        return out


SelectFn = Callable[[int, "PoolGaps | None", int, int], np.ndarray]


@dataclass(frozen=True)
class SelectRule:
    name: str
    fn: SelectFn
    needs_gaps: bool


SELECT_RULES: dict[str, SelectRule] = {}


def register_select_rule(name: str, needs_gaps: bool) -> Callable[[SelectFn], SelectFn]:
    """Register ``fn(pool_size, gaps, budget, seed) -> kept indices`` under ``name``."""

    def wrap(fn: SelectFn) -> SelectFn:
        if name in SELECT_RULES:
            raise ValueError(f"selection rule {name!r} is already registered")
        SELECT_RULES[name] = SelectRule(name, fn, needs_gaps)
        return fn

    return wrap


def get_select_rule(name: str) -> SelectRule:
    """The rule ``name``; a ValueError naming the registered rules otherwise."""
    try:
        return SELECT_RULES[name]
    except KeyError:
        raise ValueError(
            f"unknown selection rule {name!r}; choose one of {', '.join(sorted(SELECT_RULES))}"
        ) from None


def _by_gap(gap: np.ndarray, seed: int) -> np.ndarray:
    """Pool indices, widest gap first; NaN gaps last; ties in a seeded random order."""
    tie = np.random.default_rng(seed).permutation(len(gap))
    key = np.where(np.isnan(gap), -np.inf, gap)
    return np.lexsort((tie, -key))


@register_select_rule("random", needs_gaps=False)
def select_random(n: int, gaps: PoolGaps | None, budget: int, seed: int) -> np.ndarray:
    """``budget`` rows drawn uniformly without replacement (the paper's sampling)."""
    return np.sort(np.random.default_rng(seed).choice(n, size=budget, replace=False))


@register_select_rule("advantage_gap", needs_gaps=True)
def select_advantage_gap(n: int, gaps: PoolGaps | None, budget: int, seed: int) -> np.ndarray:
    """The ``budget`` rows where the best source beats the target by the widest margin."""
    assert gaps is not None
    return np.sort(_by_gap(gaps.gap, seed)[:budget])


@register_select_rule("advantage_stratified", needs_gaps=True)
def select_advantage_stratified(
    n: int, gaps: PoolGaps | None, budget: int, seed: int
) -> np.ndarray:
    """An equal share of the budget for every model that leads somewhere (the target counts,
    so its own strengths stay in the set), each share the rows its model leads by the widest
    margin; a share a model cannot fill goes to the widest gaps left."""
    assert gaps is not None
    gap, leader = gaps.gap, gaps.leader
    strata = [int(m) for m in np.unique(leader) if m >= 0]
    quota, extra = divmod(budget, max(len(strata), 1))
    keep = np.zeros(n, dtype=bool)
    for i, m in enumerate(strata):
        # a source leads the target by the gap; the target leads the best source by -gap
        order = _by_gap(-gap if m == 0 else gap, seed)
        mine = order[leader[order] == m][: quota + (i < extra)]
        keep[mine] = True
    order = _by_gap(gap, seed)
    rest = order[~keep[order]]
    keep[rest[: budget - int(keep.sum())]] = True
    return np.flatnonzero(keep)
