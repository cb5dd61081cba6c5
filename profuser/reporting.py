"""The results report: results.json, Markdown tables shaped like the paper's, plain claims.

Everything here reads finished artifacts (eval scores, stage summaries, the
training logs) and writes text; figures are in `profuser.figures`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# The paper's grouping of its six benchmarks (Table 2), and the tiny world's skills by kind.
GROUPS = {
    "knowledge": (
        "mmlu_5shot",
        "world_mc_capital",
        "world_mc_continent",
        "world_gen_capital",
        "world_gen_continent",
    ),
    "reasoning": ("hellaswag_10shot", "arc_challenge_25shot", "winogrande_5shot", "gsm8k_5shot"),
    "safety": ("truthfulqa_mc2",),
}
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


HEADLINE = {"world_mc": "acc", "world_gen": "exact_match"}


def skill_scores(m: dict) -> dict[str, float]:
    """A model's task scores, world tasks split into their skills (``world_mc_capital``)."""
    per_skill = m.get("per_skill") or {}
    out = {t: v for t, v in m["scores"].items() if t not in per_skill and t != "average"}
    for task, skills in per_skill.items():
        for skill, metrics in skills.items():
            if HEADLINE.get(task) in metrics:
                out[f"{task}_{skill}"] = metrics[HEADLINE[task]]
    return out


def grouped(models: Sequence[dict]) -> list[dict]:
    """Knowledge / reasoning / safety means of each model (Table 2 columns): tasks named in
    GROUPS go to their group, every other task counts as reasoning."""
    out = []
    for m in models:
        scores = skill_scores(m)
        buckets: dict[str, list[float]] = {g: [] for g in GROUPS}
        for task, v in scores.items():
            group = next((g for g, tasks in GROUPS.items() if task in tasks), "reasoning")
            buckets[group].append(v)
        means = {g: _mean(vals) for g, vals in buckets.items()}
        out.append({**m, "scores": {g: v for g, v in means.items() if v is not None}})
    return out


def table2(models: Sequence[dict], target: str) -> str:
    by_name = {m["name"]: m for m in models if m["kind"] == "variant"}
    rows = [{**by_name[v], "name": f"{target}-{v}"} for v in TABLE2_VARIANTS if v in by_name]
    rows = grouped(rows)
    cols = [g for g in GROUPS if any(g in r["scores"] for r in rows)]
    return markdown_table(rows, cols)


def table3(models: Sequence[dict], target: str) -> str:
    merges = [m for m in models if m["kind"] == "merge"]
    pf = [m for m in models if m["kind"] == "variant" and m["name"] == "profuser"]
    rows = merges + [{**m, "name": f"{target}-profuser"} for m in pf]
    cols = sorted({c for m in rows for c in m["scores"] if c != "average"}) + ["average"]
    return markdown_table(rows, cols)


def claims(
    models: Sequence[dict], train_share: dict, infer_share: dict, lengths: dict
) -> list[str]:
    """Which of the paper's claims held in this run, in plain words."""
    avg = {m["name"]: m["scores"].get("average") for m in models if m["kind"] == "variant"}
    src = {m["name"]: m["scores"].get("average") for m in models if m["kind"] == "source"}
    out = []

    def cmp(a: str, b: str, what: str) -> None:
        if avg.get(a) is None or avg.get(b) is None:
            out.append(f"- {what}: not measured in this run.")
            return
        held = avg[a] > avg[b]
        out.append(
            f"- {what}: {'held' if held else 'did not hold'} ({a} {100 * avg[a]:.2f} vs {b} {100 * avg[b]:.2f})."
        )

    cmp("profuser", "csft", "ProFuser beats continual SFT on GT (Table 1)")
    cmp("profuser", "fuse", "ProFuser beats training-mode-only fusion, FuseLLM-style (Table 1)")
    cmp("profuser", "simulfuse", "Progressive beats simultaneous fusion (Table 1)")
    cmp("profuser", "reversefuse", "Inference mode first beats training mode first (Table 1)")
    if avg.get("profuser") is not None and src:
        best = max(src, key=lambda k: src[k] or -1)
        held = avg["profuser"] > (src[best] or -1)
        out.append(
            f"- The fused target beats every source: {'held' if held else 'did not hold'} (best source {best} {100 * (src[best] or 0):.2f})."
        )
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
