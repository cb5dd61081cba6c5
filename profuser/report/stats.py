"""Percentile-bootstrap intervals over evaluation items, single and paired, one or many seeds.

A model's per-item scores are ``{task: {stratum: {doc_id: score}}}`` (see
`profuser.evaluate.items`). The statistics:

* a task's score is the mean of its items over all its strata (lm-eval's
  size-weighted group score); a model's *average* is the mean of its tasks' scores;
* a *paired difference* is ``average(a) - average(b)`` on the items both were
  evaluated on; *pooled over seeds* it is the mean over seeds of the per-seed
  differences, the same items having been evaluated in every seed's run.

The bootstrap resamples items with replacement within each (task, stratum)
cell, keeping every cell's size, and uses the same resampled items for every
model and seed of one interval, so item difficulty cancels out of a paired
difference. All of these statistics are linear in the item scores, so each
cell folds into one vector (a's runs summed, less b's) before resampling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Items = Mapping[str, Mapping[str, Mapping[str, float]]]  # task -> stratum -> doc id -> score

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0
_CHUNK_VALUES = 1 << 21  # resampled values drawn at once (bounds memory on large tasks)


@dataclass(frozen=True)
class Interval:
    """A point estimate and its percentile-bootstrap interval at ``level``."""

    estimate: float
    low: float
    high: float
    level: float = LEVEL

    def as_dict(self) -> dict[str, float]:
        """``{"estimate", "low", "high", "level"}`` for JSON."""
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "level": self.level}


def verdict(interval: Interval | None) -> str:
    """``held`` when the interval of (claimed better - other) lies above 0, ``did not hold``
    when it lies below 0, ``not distinguishable`` when it covers 0, ``no interval`` for None."""
    if interval is None:
        return "no interval"
    if interval.low > 0:
        return "held"
    if interval.high < 0:
        return "did not hold"
    return "not distinguishable"


def _percentiles(stats: np.ndarray, estimate: float, level: float) -> Interval:
    if not 0 < level < 1:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    tail = (1 - level) / 2
    low, high = np.quantile(stats, [tail, 1 - tail])
    return Interval(float(estimate), float(low), float(high), level)


def _resampled_sums(
    cells: Sequence[tuple[np.ndarray, float]], resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """``[resamples]``: per resample, the sum over cells of (sum of the cell's resampled
    values) / (the cell's divisor)."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    out = np.zeros(resamples)
    for values, divisor in cells:
        n = values.shape[0]
        step = max(1, _CHUNK_VALUES // n)
        for start in range(0, resamples, step):
            stop = min(resamples, start + step)
            idx = rng.integers(0, n, size=(stop - start, n))
            out[start:stop] += values[idx].sum(axis=1) / divisor
    return out


def bootstrap_mean(
    values: Sequence[float],
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = SEED,
) -> Interval:
    """Percentile-bootstrap interval of the mean of ``values`` (one stratum, one model)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("bootstrap_mean needs a non-empty 1-D sequence of values")
    rng = np.random.default_rng(seed)
    stats = _resampled_sums([(arr, float(arr.size))], resamples, rng)
    return _percentiles(stats, float(arr.mean()), level)


@dataclass(frozen=True)
class _Cell:
    task: str
    stratum: str
    docs: tuple[str, ...]


def common_cells(runs: Sequence[Items], tasks: Sequence[str], stratum: str | None) -> list[_Cell]:
    """The (task, stratum, doc ids) cells every run has items for; empty when a task has none.

    ``stratum`` restricts each task to that one stratum (a per-skill interval).
    """
    cells: list[_Cell] = []
    for task in tasks:
        if any(task not in r for r in runs):
            return []
        names = set(runs[0][task])
        for r in runs[1:]:
            names &= set(r[task])
        if stratum is not None:
            names &= {stratum}
        task_cells = []
        for name in sorted(names):
            docs = set(runs[0][task][name])
            for r in runs[1:]:
                docs &= set(r[task][name])
            if docs:
                task_cells.append(_Cell(task, name, tuple(sorted(docs))))
        if not task_cells:
            return []
        cells += task_cells
    return cells


def _cell_terms(
    a: Sequence[Items], b: Sequence[Items], cells: list[_Cell]
) -> list[tuple[np.ndarray, float]]:
    """Per cell, the item values summed over a's runs less b's, and the divisor that makes
    their sum the cell's share of the statistic (the statistic is linear in the scores)."""
    tasks = {c.task for c in cells}
    size = {t: sum(len(c.docs) for c in cells if c.task == t) for t in tasks}
    out = []
    for c in cells:

        def total(runs: Sequence[Items], c: _Cell = c) -> np.ndarray:
            vals = np.zeros(len(c.docs))
            for r in runs:
                vals = vals + np.array([r[c.task][c.stratum][d] for d in c.docs], float)
            return vals

        out.append((total(a) - total(b), float(len(a) * len(tasks) * size[c.task])))
    return out


def bootstrap(
    a: Sequence[Items],
    b: Sequence[Items] | None = None,
    *,
    tasks: Sequence[str] | None = None,
    stratum: str | None = None,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = SEED,
) -> Interval | None:
    """Interval of a model's average over ``tasks`` (``b`` None) or of the paired difference
    ``average(a) - average(b)``, each run of ``a`` paired with the same seed's run of ``b``
    and the result averaged over seeds.

    Args:
        a: one item-score dict per seed (one element for a single run).
        b: the other model's item scores, one per seed in the same order, or None.
        tasks: the tasks averaged (default: those every run has items for).
        stratum: only this stratum of each task (a per-skill interval).

    Returns:
        None where some task has no item common to all runs (e.g. an old record
        without per-item scores), else the estimate and its interval.
    """
    if not a:
        raise ValueError("bootstrap needs at least one run")
    if b is not None and len(b) != len(a):
        raise ValueError(f"paired bootstrap needs as many runs of b as of a ({len(b)} vs {len(a)})")
    runs = [*a, *(b or [])]
    if any(not r for r in runs):
        return None
    if tasks is None:
        tasks = sorted(set.intersection(*(set(r) for r in runs)))
    cells = common_cells(runs, list(tasks), stratum) if tasks else []
    if not cells:
        return None
    terms = _cell_terms(a, b or [], cells)
    estimate = float(sum(values.sum() / divisor for values, divisor in terms))
    stats = _resampled_sums(terms, resamples, np.random.default_rng(seed))
    return _percentiles(stats, estimate, level)


def mean_score(items: Items, task: str, stratum: str | None = None) -> float | None:
    """A task's (or one stratum's) mean item score; None without items."""
    strata = items.get(task) or {}
    values = [v for name, docs in strata.items() if stratum in (None, name) for v in docs.values()]
    return float(np.mean(values)) if values else None


__all__ = [
    "LEVEL",
    "RESAMPLES",
    "SEED",
    "Interval",
    "bootstrap",
    "bootstrap_mean",
    "common_cells",
    "mean_score",
    "verdict",
]
