"""The demo summary's text and figures: the Table 1 shape, each study's section, the
per-skill transfer over seeds."""

from __future__ import annotations

import math
from pathlib import Path

from profuser.demo.implicit import implicit_figure, implicit_markdown
from profuser.demo.scaling import scaling_figure, scaling_markdown
from profuser.demo.selection import selection_figures, selection_markdown
from profuser.demo.summary import interval_text, study_average, transfer_summary_markdown

# ProFuser through low-rank adapters (train.lora), against the main runs' full fine-tuning;
# adapters learn at three times the full model's lr here (chosen on the dev split, README).
# Planned by `profuser.demo.runs`; named here, where its section quotes it.
LORA_STUDY = ["train.lora={rank: 16, alpha: 32}", "train.lr=3e-3"]


def _cell(ms: tuple[float, float], bold: bool) -> str:
    m, s = ms
    if math.isnan(m):
        return "–"
    txt = f"{100 * m:.1f} ± {100 * s:.1f}"
    return f"**{txt}**" if bold else txt


def _table(models: list[dict], names: list[str] | None = None) -> str:
    rows = [m for m in models if names is None or m["name"] in names]
    cols = sorted({t for m in rows for t in m["scores"] if t != "average"}) + ["average"]
    best = {
        c: max(
            (
                m["scores"][c][0]
                for m in rows
                if c in m["scores"] and not math.isnan(m["scores"][c][0])
            ),
            default=None,
        )
        for c in cols
    }
    lines = ["| model | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for m in rows:
        cells = [
            _cell(
                m["scores"].get(c, (math.nan, math.nan)), m["scores"].get(c, (None,))[0] == best[c]
            )
            for c in cols
        ]
        lines.append(f"| {m['kind']}: {m['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_markdown(summary: dict, quick: bool) -> str:
    main = summary.get("main", {})
    over = f"mean ± std over {main['seeds']} seed(s)" if main.get("seeds") else "its studies"
    lines = [f"# Tiny-world demo ({'quick' if quick else 'full'}): {over}", ""]
    if main.get("models"):  # a demo run with --only may leave out the main runs
        lines += [
            "## Table 1 shape: sources, variants and merges",
            "",
            _table(main["models"]),
            "",
        ]
    rules = {k: v for k, v in summary.items() if k.startswith("rule:")}
    if rules:
        lines += ["## Figure 3: inference-mode selection rule (ProFuser average)", ""]
        lines.append(f"- rm_vote (the main runs): {_cell(study_average(main, 'profuser'), False)}")
        lines += [
            f"- {k.split(':', 1)[1]}{_study_cell(v, main)}; − rm_vote, paired "
            f"over items and seeds: {interval_text(v.get('vs_main'))}"
            for k, v in rules.items()
        ] + [""]
    srcs = {k: v for k, v in summary.items() if k.startswith("sources:")}
    if srcs:
        lines += ["## Table 4: number of sources (average)", ""]
        lines += [
            f"- {k.split(':', 1)[1]}{_study_cell(v, main)}; − all sources, "
            f"paired over items and seeds: {interval_text(v.get('vs_main'))}"
            for k, v in srcs.items()
        ]
        lines.append(f"- all sources (ProFuser): {_cell(study_average(main, 'profuser'), False)}")
        lines += [f"- CSFT (no fusion): {_cell(study_average(main, 'csft'), False)}", ""]
    lora = summary.get("train:lora")
    if lora:
        lines += ["## LoRA fusion (average)", ""]
        lines += [
            f"- ProFuser through LoRA adapters ({', '.join(LORA_STUDY)}){_study_cell(lora, main)}; "
            f"− full fine-tuning, paired over items and seeds: {interval_text(lora.get('vs_main'))}",
            f"- ProFuser, full fine-tuning: {_cell(study_average(main, 'profuser'), False)}",
            "",
        ]
    lines += selection_markdown(summary)
    lines += scaling_markdown(summary)
    lines += implicit_markdown(summary.get("implicit_vs_explicit"))
    lines += transfer_summary_markdown(main.get("transfer"), main.get("pooled_intervals"))
    return "\n".join(lines)


def _study_cell(study: dict, main: dict) -> str:
    """``: 78.8 ± 1.0`` where a study ran for every main seed; where it ran for fewer, its
    seeds and the main runs' ProFuser on those same seeds
    (``: 80.3 (seed 0; the main run's ProFuser there 77.3)``)."""
    own = study_average(study, "profuser")
    paired = study.get("vs_main") or {}
    seeds, means = paired.get("seeds", []), paired.get("means") or {}
    if not seeds or len(seeds) >= main.get("seeds", 0) or means.get("main") is None:
        return f": {_cell(own, False)}"
    label = "seed" if len(seeds) == 1 else "seeds"
    return (
        f": {100 * own[0]:.1f} ({label} {', '.join(map(str, seeds))}; "
        f"the main run's ProFuser there {100 * means['main']:.1f})"
    )


def summary_figures(summary: dict, out: Path) -> None:
    """The demo's figures for the runs finished so far."""
    from profuser.report.figures import bar_figure

    rules = {"rm_vote": study_average(summary.get("main", {}), "profuser")[0]}
    rules.update(
        {
            k.split(":", 1)[1]: study_average(v, "profuser")[0]
            for k, v in summary.items()
            if k.startswith("rule:")
        }
    )
    if len(rules) > 1:
        bar_figure(rules, "ProFuser average", out / "fig3_selection_rules.png")
    srcs = {
        k.split(":", 1)[1]: study_average(v, "profuser")[0]
        for k, v in summary.items()
        if k.startswith("sources:")
    }
    if srcs:
        srcs["all"] = study_average(summary.get("main", {}), "profuser")[0]
        bar_figure(srcs, "ProFuser average", out / "fig4_num_sources.png")
    selection_figures(summary, out)
    scaling_figure(summary, out / "fig_num_sources_scaling.png")
    implicit_figure(summary.get("implicit_vs_explicit"), out / "fig_implicit_vs_explicit.png")
