"""The results report: results.json, Markdown tables shaped like the paper's, plain claims.

Everything here reads finished artifacts (eval scores, stage summaries, the
training logs) and writes text; figures are in `profuser.report.figures`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from profuser.evaluate.tasks import TASK_SUITES, headline_metric
from profuser.report.stats import Interval, verdict

# The paper's grouping of its six benchmarks (Table 2); registered task suites add theirs.
PAPER_GROUPS = {
    "knowledge": ("mmlu_5shot",),
    "reasoning": ("hellaswag_10shot", "arc_challenge_25shot", "winogrande_5shot", "gsm8k_5shot"),
    "safety": ("truthfulqa_mc2",),
}


def table2_groups() -> dict[str, tuple[str, ...]]:
    """Table 2's kinds and their tasks: the paper's, plus those of each registered suite."""
    out = {k: list(v) for k, v in PAPER_GROUPS.items()}
    for suite in TASK_SUITES.values():
        for kind, names in suite.kinds.items():
            out.setdefault(kind, []).extend(names)
    return {k: tuple(v) for k, v in out.items()}


TABLE1_VARIANTS = ("csft", "fuse", "simulfuse", "reversefuse", "profuser")
TABLE2_VARIANTS = ("csft", "fuse", "rmscore_fuse", "gtlen_fuse", "profuser")


def _fmt(v: float | None, bold: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    s = f"{100 * v:.2f}"
    return f"**{s}**" if bold else s


def markdown_table(rows: Sequence[dict], columns: Sequence[str], label: str = "model") -> str:
    """Rows of {name, scores{col: value}} as Markdown, the best of each column in bold."""
    best = {}
    for c in columns:
        vals = [r["scores"].get(c) for r in rows if r["scores"].get(c) is not None]
        best[c] = max(vals) if vals else None
    head = f"| {label} | " + " | ".join(columns) + " |"
    sep = "|---|" + "---|" * len(columns)
    lines = [head, sep]
    for r in rows:
        cells = [
            _fmt(
                r["scores"].get(c), r["scores"].get(c) is not None and r["scores"].get(c) == best[c]
            )
            for c in columns
        ]
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mean(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else None


def with_average(models: Sequence[dict]) -> list[dict]:
    """Each model with ``scores["average"]``: the mean of its task scores."""
    out = []
    for m in models:
        scores = dict(m["scores"])
        scores["average"] = _mean([v for k, v in m["scores"].items() if k != "average"])
        out.append({**m, "scores": scores})
    return out


def table1(models: Sequence[dict], target: str) -> str:
    """Sources, then the target's variants in the paper's order (Table 1)."""
    sources = [m for m in models if m["kind"] == "source"]
    by_name = {m["name"]: m for m in models if m["kind"] == "variant"}
    rows = sources + [
        {**by_name[v], "name": f"{target}-{v}"} for v in TABLE1_VARIANTS if v in by_name
    ]
    cols = sorted({c for m in rows for c in m["scores"] if c != "average"}) + ["average"]
    return markdown_table(rows, cols)


def skill_scores(m: dict) -> dict[str, float]:
    """A model's task scores, world tasks split into their skills (``world_mc_capital``),
    each skill's headline metric as `profuser.evaluate.harness.headline_metric` names it."""
    per_skill = m.get("per_skill") or {}
    out = {t: v for t, v in m["scores"].items() if t not in per_skill and t != "average"}
    for task, skills in per_skill.items():
        for skill, metrics in skills.items():
            metric = headline_metric(task, metrics) if metrics else None
            if metric in metrics:
                out[f"{task}_{skill}"] = metrics[metric]
    return out


def grouped(models: Sequence[dict]) -> list[dict]:
    """Knowledge / reasoning / safety means of each model (Table 2 columns): tasks named in
    :func:`table2_groups` go to their group, every other task counts as reasoning."""
    groups = table2_groups()
    out = []
    for m in models:
        scores = skill_scores(m)
        buckets: dict[str, list[float]] = {g: [] for g in groups}
        for task, v in scores.items():
            group = next((g for g, tasks in groups.items() if task in tasks), "reasoning")
            buckets[group].append(v)
        means = {g: _mean(vals) for g, vals in buckets.items()}
        out.append({**m, "scores": {g: v for g, v in means.items() if v is not None}})
    return out


def table2(models: Sequence[dict], target: str) -> str:
    by_name = {m["name"]: m for m in models if m["kind"] == "variant"}
    rows = [{**by_name[v], "name": f"{target}-{v}"} for v in TABLE2_VARIANTS if v in by_name]
    rows = grouped(rows)
    cols = [g for g in table2_groups() if any(g in r["scores"] for r in rows)]
    return markdown_table(rows, cols)


def table3(models: Sequence[dict], target: str) -> str:
    merges = [m for m in models if m["kind"] == "merge"]
    pf = [m for m in models if m["kind"] == "variant" and m["name"] == "profuser"]
    rows = merges + [{**m, "name": f"{target}-profuser"} for m in pf]
    cols = sorted({c for m in rows for c in m["scores"] if c != "average"}) + ["average"]
    return markdown_table(rows, cols)


# (claimed better, other, claim) between trained variants, as the paper states them.
VARIANT_CLAIMS = (
    ("profuser", "csft", "ProFuser beats continual SFT on GT (Table 1)"),
    ("profuser", "fuse", "ProFuser beats training-mode-only fusion, FuseLLM-style (Table 1)"),
    ("profuser", "simulfuse", "Progressive beats simultaneous fusion (Table 1)"),
    ("profuser", "reversefuse", "Inference mode first beats training mode first (Table 1)"),
    ("profuser", "gtlen_fuse", "ProFuser beats the GT-length curriculum (Table 2)"),
    ("profuser", "rmscore_fuse", "ProFuser beats the RM-score curriculum (Table 2)"),
    ("simulfuse", "reversefuse", "SimulFuse beats ReverseFuse (Table 1 order)"),
    ("reversefuse", "fuse", "ReverseFuse beats Fuse (Table 1 order)"),
    ("fuse", "csft", "Fuse beats CSFT (Table 1 order)"),
)


def _claim(what: str, a: str, va: float, b: str, vb: float, iv: Interval | None) -> str:
    """One claim line: the paired interval's verdict, or the point estimates' without one."""
    vs = f"{a} {100 * va:.2f} vs {b} {100 * vb:.2f}"
    if iv is None:
        word = "held" if va > vb else "did not hold"
        return f"- {what}: {word} ({vs}; point estimates, no per-item scores for an interval)."
    pct = f"{100 * iv.level:.0f}%"
    return (
        f"- {what}: {verdict(iv)} ({vs}; difference {100 * iv.estimate:+.2f}, "
        f"{pct} interval [{100 * iv.low:+.2f}, {100 * iv.high:+.2f}])."
    )


def claims(
    models: Sequence[dict],
    train_share: dict,
    infer_share: dict,
    lengths: dict,
    diffs: Mapping[tuple[str, str], Interval | None] | None = None,
    target: str | None = None,
) -> list[str]:
    """Which of the paper's claims held in this run, in plain words.

    ``diffs`` maps (claimed better, other) model keys (``variant-profuser``,
    ``source-<name>``) to the paired interval of their averages' difference: a claim
    *held* when it lies above 0, *did not hold* below 0, else is *not distinguishable*.
    Without an interval the point estimates decide, and the line says so.
    """
    diffs = diffs or {}
    avg = {m["name"]: m["scores"].get("average") for m in models if m["kind"] == "variant"}
    src = {m["name"]: m["scores"].get("average") for m in models if m["kind"] == "source"}
    out = []
    missing = []
    for a, b, what in VARIANT_CLAIMS:
        if avg.get(a) is None or avg.get(b) is None:
            missing.append(what)
            continue
        iv = diffs.get((f"variant-{a}", f"variant-{b}"))
        out.append(_claim(what, a, avg[a], b, avg[b], iv))
    pf = avg.get("profuser")
    if pf is not None and target is not None and src.get(target) is not None:
        iv = diffs.get(("variant-profuser", f"source-{target}"))
        what = "Fusion improves the target over itself before fusion"
        out.append(_claim(what, "profuser", pf, target, src[target], iv))
    rated = {k: v for k, v in src.items() if v is not None}
    if pf is not None and rated:
        best = max(rated, key=lambda k: rated[k])
        iv = diffs.get(("variant-profuser", f"source-{best}"))
        what = "The fused target beats every source"
        out.append(_claim(what, "profuser", pf, f"best source {best}", rated[best], iv))
    if missing:
        out.append(f"- Not measured in this run (variants not trained): {'; '.join(missing)}.")
    if train_share and infer_share:
        diff = max(abs(train_share.get(k, 0) - infer_share.get(k, 0)) for k in train_share)
        out.append(
            f"- Sources' advantages differ between the two modes (Figure 1a): largest win-share gap {100 * diff:.1f} points."
        )
    if lengths:
        longer = all(v["gt"] > max(v["sources"].values()) for v in lengths.values() if v["sources"])
        out.append(
            f"- GT answers are longer than every source's under each system message (Figure 1b): {'held' if longer else 'did not hold'}."
        )
    return out
