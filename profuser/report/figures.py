"""PNG figures of a run: Figure 1a/1b-style analyses, training-loss curves, per-skill transfer."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> None:
    """Lay out, write the PNG and free the figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def win_share_figure(
    train_share: dict[str, float], infer_share: dict[str, float], path: Path
) -> None:
    """Figure 1a: each source's win share under training mode (MinCE) and inference mode (RM vote)."""
    names = list(train_share)
    x = range(len(names))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(
        [i - 0.2 for i in x], [train_share[n] for n in names], 0.4, label="training mode (MinCE)"
    )
    ax.bar(
        [i + 0.2 for i in x],
        [infer_share.get(n, 0) for n in names],
        0.4,
        label="inference mode (RM vote)",
    )
    ax.set_xticks(list(x), names, rotation=15)
    ax.set_ylabel("share of examples won")
    ax.legend()
    _save(fig, path)


def length_figure(lengths: dict[str, dict], path: Path) -> None:
    """Figure 1b: mean answer length (words) of GT and each source, per system message id."""
    ids = list(lengths)
    sources = sorted({s for v in lengths.values() for s in v["sources"]})
    width = 0.8 / (1 + len(sources))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar([i for i in range(len(ids))], [lengths[k]["gt"] for k in ids], width, label="GT")
    for j, s in enumerate(sources, start=1):
        ax.bar(
            [i + j * width for i in range(len(ids))],
            [lengths[k]["sources"].get(s, 0) for k in ids],
            width,
            label=s,
        )
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(ids))], [f"#{k}" for k in ids])
    ax.set_xlabel("system message (Table 5 row)")
    ax.set_ylabel("mean answer length (words)")
    ax.legend(fontsize=7)
    _save(fig, path)


def loss_figure(logs: dict[str, Path], path: Path) -> None:
    """Training loss per step, one line per variant: the SFT loss (both modes) of fusion
    phases and, in a second panel where a variant has one, the DPO loss of its preference
    phase."""
    curves: dict[str, dict[str, tuple[list[int], list[float]]]] = {"sft": {}, "dpo": {}}
    for name, log in logs.items():
        with log.open() as f:
            rows = list(csv.DictReader(f))
        if not rows:
            continue
        steps = [int(r["step"]) for r in rows]
        if "sft_train" in rows[0]:
            sft = [float(r["sft_train"]) + float(r["sft_infer"]) for r in rows]
            curves["sft"][name] = (steps, sft)
        elif "dpo" in rows[0]:
            curves["dpo"][name] = (steps, [float(r["dpo"]) for r in rows])
    panels = [k for k in ("sft", "dpo") if curves[k]]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(6 * max(len(panels), 1), 3.5))
    axes = axes if len(panels) > 1 else [axes]
    labels = {"sft": "SFT loss (both modes)", "dpo": "DPO loss (preference phase)"}
    for ax, kind in zip(axes, panels, strict=False):
        for name, (steps, vals) in curves[kind].items():
            ax.plot(steps, vals, label=name)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(labels[kind])
        ax.legend(fontsize=7)
    _save(fig, path)


def bar_figure(values: dict[str, float], ylabel: str, path: Path) -> None:
    """A plain bar chart (selection rules, number of sources)."""
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(list(values), list(values.values()))
    ax.set_ylabel(ylabel)
    _save(fig, path)


def line_figure(xs: list[float], series: dict[str, list[float]], xlabel: str, path: Path) -> None:
    """One line with markers per series against ``xs`` (the source-scaling study)."""
    fig, ax = plt.subplots(figsize=(5, 3))
    for name, ys in series.items():
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xticks(xs)
    ax.set_xlabel(xlabel)
    ax.legend()
    _save(fig, path)


def difference_figure(
    series: dict[str, dict[str, tuple[float | None, float | None, float | None]]],
    ylabel: str,
    path: Path,
) -> None:
    """Grouped bars of differences per category (one bar per series), each with its
    interval; values are fractions, drawn in points."""
    cats = list(dict.fromkeys(c for s in series.values() for c in s))
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(cats) + 2), 3.5))
    for j, (name, cells) in enumerate(series.items()):
        xs, ys, errs = [], [], [[], []]
        for i, c in enumerate(cats):
            est, low, high = cells.get(c, (None, None, None))
            if est is None:
                continue
            xs.append(i + (j - (len(series) - 1) / 2) * width)
            ys.append(100 * est)
            errs[0].append(100 * (est - low) if low is not None else 0)
            errs[1].append(100 * (high - est) if high is not None else 0)
        ax.bar(xs, ys, width, yerr=errs, label=name, capsize=2)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(cats)))
    ax.set_xticklabels(cats, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    _save(fig, path)


def transfer_figure(transfer: dict, path: Path) -> None:
    """Per skill of each task: the target, the best other source and each variant, with
    their 95% intervals where the run kept per-item scores."""
    tasks = list(transfer["tasks"])
    target = transfer["target"]
    variants = list(transfer.get("variants", {}))
    fig, axes = plt.subplots(len(tasks), 1, figsize=(9, 3 * len(tasks)), squeeze=False)
    series = ["target", "best other source", *(v.partition("-")[2] for v in variants)]
    width = 0.8 / len(series)
    for ax, task in zip(axes[:, 0], tasks, strict=True):
        skills = transfer["tasks"][task]
        names = list(skills)
        keys = [[target] * len(names), [skills[s]["best_source"] for s in names]]
        keys += [[v] * len(names) for v in variants]
        for j, (label, row) in enumerate(zip(series, keys, strict=True)):
            cells = [
                skills[s]["scores"].get(k) if k else None for s, k in zip(names, row, strict=True)
            ]
            vals = [c["score"] if c and c["score"] is not None else 0.0 for c in cells]
            err = [
                (v - c["low"], c["high"] - v) if c and c.get("low") is not None else (0.0, 0.0)
                for v, c in zip(vals, cells, strict=True)
            ]
            ax.bar(
                [i + j * width for i in range(len(names))],
                vals,
                width,
                yerr=list(zip(*err, strict=True)),
                capsize=2,
                label=label,
            )
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names, rotation=15)
        ax.set_ylabel(f"{task} score")
    axes[0, 0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(fig, path)
