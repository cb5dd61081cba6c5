"""Per-item headline scores from lm-evaluation-harness sample logs, kept compact.

lm-eval's ``log_samples`` records hold each document, the rendered requests and
the raw responses: far too much to keep per model. What intervals need is each
item's value of the task's headline metric, so the eval stage stores only

``{task: {stratum: {doc_id: score}}}``

where ``task`` is the requested name (``world_gen``, ``mmlu_5shot``) and a
stratum is one subtask of a group (``add`` for ``world_gen_add``; the leaf task
name less the group's prefix), or ``"all"`` for a task without subtasks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

ALL = "all"  # the stratum of a task without subtasks


def leaf_tasks(name: str, group_subtasks: Mapping[str, Sequence[str]]) -> list[str]:
    """The leaf tasks under ``name`` (``name`` itself when it is not a group), in order."""
    children = group_subtasks.get(name) or []
    if not children:
        return [name]
    out: list[str] = []
    for child in children:
        out += [leaf for leaf in leaf_tasks(child, group_subtasks) if leaf not in out]
    return out


def split_metric(metric: str) -> tuple[str, str]:
    """``"exact_match,strict-match"`` -> ``("exact_match", "strict-match")``; no filter:
    ``"none"``."""
    key, _, filt = metric.partition(",")
    return key, filt or "none"


def stratum_name(leaf: str, lm_task: str) -> str:
    """A leaf's stratum within its group: the leaf less the group's prefix; ``all`` for the
    task itself."""
    if leaf == lm_task:
        return ALL
    return leaf.removeprefix(lm_task + "_")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and not math.isnan(float(value)):
        return float(value)
    return None


def leaf_items(samples: Sequence[Mapping[str, Any]], metric: str) -> dict[str, float] | None:
    """``{doc_id: score}`` of one leaf task's samples for ``metric`` (with its filter).

    None when the metric is not a per-item number (a corpus-level metric such as BLEU
    logs tuples that only make sense aggregated).
    """
    key, filt = split_metric(metric)
    out: dict[str, float] = {}
    for s in samples:
        if s.get("filter", "none") != filt or key not in s:
            continue
        value = _number(s[key])
        if value is None:
            return None
        out[str(s["doc_id"])] = value
    return out or None


def item_scores(
    samples: Mapping[str, Sequence[Mapping[str, Any]]],
    group_subtasks: Mapping[str, Sequence[str]],
    lm_names: Mapping[str, str],
    metrics: Mapping[str, str],
) -> dict[str, dict[str, dict[str, float]]]:
    """Compact per-item scores of every requested task.

    Args:
        samples: lm-eval's ``samples`` (leaf task -> per-item records).
        group_subtasks: lm-eval's ``group_subtasks`` (group -> children).
        lm_names: requested name -> lm-eval task or group name.
        metrics: requested name -> headline metric (``acc``, ``exact_match,strict-match``).

    Returns:
        ``{name: {stratum: {doc_id: score}}}``; a task whose items cannot be read
        (no samples, or a corpus-level metric) is left out.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, lm_task in lm_names.items():
        strata: dict[str, dict[str, float]] = {}
        for leaf in leaf_tasks(lm_task, group_subtasks):
            got = leaf_items(samples.get(leaf) or [], metrics[name])
            if got is None:
                strata = {}
                break
            strata[stratum_name(leaf, lm_task)] = got
        if strata:
            out[name] = strata
    return out


__all__ = [
    "ALL",
    "item_scores",
    "leaf_items",
    "leaf_tasks",
    "split_metric",
    "stratum_name",
]
