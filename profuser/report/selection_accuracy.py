"""Selection accuracy: how often each mode's teacher choice picked a source that answers right.

For every fusion row, each source sampled one answer (``generate``) that every
reward model scored (``score/scores.parquet``). Whether a source's answer is
*right* is judged by the config's strongest reward model:

* a ``verifier`` (the tiny world's exact-match checker): its score is above 0.5;
* any other kind: the answer has the highest strongest-RM score of its row
  (agreement with the strongest RM; ties all count as right).

Then per skill (the data's ``skill`` column, else one ``all`` bucket), the share
of rows where the training-mode choice (MinCE, ``teacher/selection.parquet``)
and the inference-mode choice (RM vote, ``score/chosen.parquet``) named a source
whose answer is right. A row with no choice counts as not right; ``any_right``
is the share of rows where some source's answer is right (the ceiling).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

VERIFIER_THRESHOLD = 0.5  # a verifier scores 1.0 right, 0.0 wrong


def right_answers(
    score_rows: Sequence[Mapping[str, Any]], judge: str, verifier: bool
) -> dict[tuple[str, str], bool]:
    """``(id, source) -> right`` from ``score/scores.parquet`` rows (one per example and source)."""
    by_id: dict[str, dict[str, float]] = defaultdict(dict)
    for r in score_rows:
        value = r.get(judge)
        by_id[r["id"]][r["source"]] = (
            float(value) if value is not None and not math.isnan(value) else math.nan
        )
    out = {}
    for eid, scores in by_id.items():
        valid = [v for v in scores.values() if not math.isnan(v)]
        top = max(valid) if valid else math.nan
        for source, v in scores.items():
            right = v > VERIFIER_THRESHOLD if verifier else (not math.isnan(v) and v >= top)
            out[(eid, source)] = bool(right)
    return out


def _share(hits: int, n: int) -> float | None:
    return hits / n if n else None


def selection_accuracy(
    data_rows: Sequence[Mapping[str, Any]],
    winners: Mapping[str, Mapping[str, str]],
    right: Mapping[tuple[str, str], bool],
) -> dict[str, dict[str, Any]]:
    """Per skill (and ``all`` over every row): ``{"rows", <rule>: share, "any_right": share}``.

    Args:
        data_rows: the fusion rows (``id`` and, when the dataset has one, ``skill``).
        winners: rule name -> {id: chosen source} (an empty source: no choice).
        right: ``(id, source) -> right`` (see :func:`right_answers`).
    """
    sources = sorted({s for _, s in right})
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in data_rows:
        skill = row.get("skill")
        buckets = {"all", skill if isinstance(skill, str) and skill else "all"}
        hits = {
            rule: right.get((row["id"], w.get(row["id"], "")), False) for rule, w in winners.items()
        }
        hits["any_right"] = any(right.get((row["id"], s), False) for s in sources)
        for b in buckets:
            counts[b]["rows"] += 1
            for name, ok in hits.items():
                counts[b][name] += int(ok)
    out = {}
    for b in sorted(counts, key=lambda k: (k == "all", k)):
        n = counts[b]["rows"]
        out[b] = {"rows": n, **{k: _share(counts[b][k], n) for k in [*winners, "any_right"]}}
    return out


def judge_of(cfg: Any) -> tuple[str, bool] | None:
    """(strongest reward model's name, whether it is a verifier); the first RM where none is
    marked strongest (as the vote's tie-break does); None without reward models."""
    rms = list(cfg.reward_models)
    if not rms:
        return None
    rm = next((r for r in rms if r.strongest), rms[0])
    from profuser.reward.registry import BINARY_KINDS

    return rm.name, rm.kind in BINARY_KINDS


__all__ = ["judge_of", "right_answers", "selection_accuracy"]
