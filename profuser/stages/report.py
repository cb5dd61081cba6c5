"""Stage `report`: results.json, report.md with the paper-shaped tables, figures, claims.

Besides the paper's tables, results.json holds ``transfer`` (per task and skill:
each model's score with its 95% interval, who leads, each variant's takeover or
retained, per-variant medians, the oracle gap closed and the selection accuracy;
see `profuser.report.transfer`, `profuser.report.selection_accuracy`), ``intervals`` (each
model's average and the claims' paired differences; see `profuser.report.intervals`) and
``alignment`` (per mode and source, where the teacher's mass went in the target's
vocabulary; see `profuser.report.alignment`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from profuser.io import atomic_write_bytes, atomic_write_json, read_json
from profuser.io.shards import read_rows, read_rows_file
from profuser.pipeline import StageContext, stage
from profuser.report.alignment import alignment_markdown, alignment_section
from profuser.report.intervals import intervals_section
from profuser.report.selection_accuracy import (
    VERIFIER_THRESHOLD,
    judge_of,
    right_answers,
    selection_accuracy,
)
from profuser.report.system_messages import table5_row
from profuser.report.tables import claims, table1, table2, table3, with_average
from profuser.report.transfer import transfer_table
from profuser.report.transfer_text import transfer_markdown
from profuser.stages.common import read_data
from profuser.stages.contracts import (
    ANSWERS,
    CHOSEN,
    EVAL_RECORDS,
    EVAL_SCORES,
    FUSION_ROWS,
    REPORT_FILES,
    SCORES,
    SELECTION,
    TRAINED,
)

# where each selection rule's winners are: MinCE (training mode) and the RM vote (inference mode)
RULE_ARTIFACTS = {"min_ce": SELECTION, "rm_vote": CHOSEN}


def answer_lengths(ctx: StageContext, sources: list[str], top: int = 5) -> dict[str, dict]:
    """Mean answer length in words of GT and each source, for the most frequent system messages."""
    rows = read_data(ctx)
    by_sys: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_sys[r["system"]].append(r)
    answers = {
        s: {g["id"]: g["answer"] for g in read_rows(ctx.path(ANSWERS, source=s))} for s in sources
    }
    out = {}
    for system, group in sorted(by_sys.items(), key=lambda kv: -len(kv[1]))[:top]:
        row = table5_row(system)
        key = str(row) if row is not None else system[:20]
        gt = sum(len(r["response"].split()) for r in group) / len(group)
        src = {
            s: sum(len(answers[s].get(r["id"], "").split()) for r in group) / len(group)
            for s in sources
            if answers[s]
        }
        out[key] = {
            "gt": round(gt, 2),
            "sources": {k: round(v, 2) for k, v in src.items()},
            "examples": len(group),
        }
    return out


def load_selection_accuracy(ctx: StageContext) -> dict[str, Any] | None:
    """Selection accuracy of the run; None where the score stage's files are missing."""
    judge = judge_of(ctx.cfg)
    scores_path = ctx.path(SCORES)
    if judge is None or not scores_path.is_file() or not ctx.path(FUSION_ROWS).is_file():
        return None
    name, verifier = judge
    right = right_answers(read_rows_file(scores_path), name, verifier)
    winners = {
        rule: {r["id"]: r["winner"] for r in read_rows_file(ctx.path(artifact))}
        for rule, artifact in RULE_ARTIFACTS.items()
        if ctx.path(artifact).is_file()
    }
    return {
        "judge": name,
        "right_means": f"score > {VERIFIER_THRESHOLD}" if verifier else "highest score of the row",
        "skills": selection_accuracy(read_data(ctx), winners, right),
    }


@stage(
    "report",
    reads=("target", "seed", "reward_models", "sources", "name"),
    upstream=("select", "teacher", "score", "align", "train", "eval"),
    inputs=(FUSION_ROWS, ANSWERS, SCORES, CHOSEN, SELECTION, TRAINED, EVAL_RECORDS, EVAL_SCORES),
    outputs=(REPORT_FILES,),
)
def run(ctx: StageContext) -> dict:
    import profuser.report.figures as figures

    cfg = ctx.cfg
    evaluated = [
        {
            **row,
            "items": (
                read_json(ctx.path(EVAL_RECORDS, model=f"{row['kind']}-{row['name']}")) or {}
            ).get("items")
            or {},
        }
        for row in read_json(ctx.path(EVAL_SCORES)) or []
    ]
    models = with_average(
        [
            {
                "kind": m["kind"],
                "name": m["name"],
                "seed": m.get("seed", cfg.seed),
                "scores": m["scores"],
                "per_skill": m.get("per_skill", {}),
            }
            for m in evaluated
        ]
    )
    names = [s.name for s in cfg.sources]
    train_share = ctx.summary_of("teacher").get("win_share", {})
    infer_share = ctx.summary_of("score").get("win_share", {})
    lengths = answer_lengths(ctx, names) if ctx.path(ANSWERS, source="").is_dir() else {}
    transfer = transfer_table(evaluated, cfg.target) or {}
    accuracy = load_selection_accuracy(ctx)
    if accuracy:
        transfer["selection_accuracy"] = accuracy
    intervals, diffs = intervals_section(evaluated, cfg.target)
    alignment = alignment_section(ctx.summary_of("align"))
    atomic_write_json(
        ctx.path(REPORT_FILES, file="results.json"),
        {
            "run": cfg.name,
            "seed": cfg.seed,
            "models": models,
            "win_share": {"training": train_share, "inference": infer_share},
            "answer_lengths": lengths,
            "transfer": transfer,
            "intervals": intervals,
            "alignment": alignment,
        },
    )
    figs = []
    if train_share:
        figures.win_share_figure(
            train_share, infer_share, ctx.path(REPORT_FILES, file="fig1a_win_share.png")
        )
        figs.append("fig1a_win_share.png")
    if lengths:
        figures.length_figure(lengths, ctx.path(REPORT_FILES, file="fig1b_answer_length.png"))
        figs.append("fig1b_answer_length.png")
    if transfer.get("tasks"):
        figures.transfer_figure(transfer, ctx.path(REPORT_FILES, file="fig_transfer.png"))
        figs.append("fig_transfer.png")
    trained = ctx.path(TRAINED, variant="")
    logs = {p.parent.name: p for p in sorted(trained.glob("*/log.csv"))}
    # a schedule ending in a preference phase logs its fusion phases apart
    logs.update(
        {f"{p.parent.parent.name} (fusion)": p for p in sorted(trained.glob("*/fusion/log.csv"))}
    )
    if logs:
        figures.loss_figure(logs, ctx.path(REPORT_FILES, file="train_loss.png"))
        figs.append("train_loss.png")
    lines = [f"# ProFuser run `{cfg.name}` (seed {cfg.seed})", ""]
    lines += ["## Table 1: sources and fusion strategies", "", table1(models, cfg.target), ""]
    lines += [
        "## Table 2: knowledge / reasoning / safety, with the curricula",
        "",
        table2(models, cfg.target),
        "",
    ]
    if any(m["kind"] == "merge" for m in models):
        lines += ["## Table 3: weight merging vs ProFuser", "", table3(models, cfg.target), ""]
    lines += [
        "## Which of the paper's claims held",
        "",
        *claims(models, train_share, infer_share, lengths, diffs, cfg.target),
        "",
    ]
    lines += transfer_markdown(transfer)
    lines += alignment_markdown(alignment, cfg.target)
    lines += ["## Figures", "", *[f"![{f}]({f})" for f in figs], ""]
    atomic_write_bytes(ctx.path(REPORT_FILES, file="report.md"), "\n".join(lines).encode())
    return {"models": len(models), "figures": len(figs)}
