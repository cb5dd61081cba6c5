"""Stage `teacher`: training-mode advantage (MinCE) and the distributions of both modes.

Every source is teacher-forced on each GT answer in its own chat format, giving
its CE and its compact distributions along the answer (temperature, top-k,
top-p of the config). When the score stage has chosen inference-mode answers,
each source is also teacher-forced on the answers it generated and won with,
since the chosen answer's distribution comes from the source that wrote it.

Layout: ``teacher/<source>/gt`` and ``teacher/<source>/own`` are distribution
stores (see `profuser.teacher.storage`) with ``ce`` and ``n_tokens`` columns;
``teacher/selection.parquet`` holds every source's CE per example and the
training-mode winner.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from profuser.advantage.selection import get_training_rule, win_share
from profuser.io.shards import read_rows_file, write_rows
from profuser.models.loading import usable_vocab
from profuser.pipeline import StageContext, stage
from profuser.stages.common import StoreView, open_source, part_dir, parts_complete, read_data
from profuser.stages.contracts import CHOSEN, FUSION_ROWS, SELECTION, TEACHER_STORE
from profuser.teacher.forcing import teacher_force, turn_items
from profuser.teacher.storage import DistributionWriter

log = logging.getLogger("profuser")


def _store(
    ctx: StageContext,
    model,
    tok,
    src_name: str,
    mode: str,
    rows: list[dict],
    answers: dict[str, str],
) -> dict:
    """Teacher-force ``answers`` (id -> text) and append them to ``teacher/<source>/<mode>``."""
    adv, max_len = ctx.cfg.advantage, ctx.cfg.train.max_length
    vocab = usable_vocab(model, tok)
    writer = DistributionWriter(
        part_dir(ctx.path(TEACHER_STORE, source=src_name, mode=mode), ctx.shard),
        shard_size=adv.shard_size,
        vocab_size=vocab,
        logprob_format=adv.logprob_format,
        resume=True,
    )
    counts = {"truncated": 0, "too_long": 0, "non_finite": 0}
    i, n = ctx.shard
    mine = [r for k, r in enumerate(rows) if k % n == i]  # --shard i/n: every n-th example
    todo = [r for r in mine if r["id"] in answers and r["id"] not in writer.stored_ids]
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    for start in range(0, len(todo), adv.shard_size):
        chunk = todo[start : start + adv.shard_size]
        items, n_bytes = turn_items(tok, chunk, answers, max_len, counts)
        results = {
            res.key: res
            for res in teacher_force(
                model,
                items,
                pad_id=pad,
                valid_vocab=vocab,
                batch_tokens=adv.batch_tokens,
                temperature=adv.temperature,
                top_k=adv.top_k,
                top_p=adv.top_p,
                progress=f"teacher {src_name}/{mode}",
            )
        }
        for it in items:  # write in data order, so a resumed run gives the same shards
            res = results[it.key]
            if not res.finite:
                counts["non_finite"] += 1
                continue
            writer.add(
                it.key,
                res.ids,
                res.logprobs,
                ce=res.ce,
                n_tokens=res.n_tokens,
                n_bytes=n_bytes[it.key],
            )
    writer.close()
    for what, n in counts.items():
        if n:
            log.warning(
                "teacher %s/%s: %d answers %s (counted, %s)",
                src_name,
                mode,
                n,
                what.replace("_", " "),
                "kept truncated" if what == "truncated" else "skipped",
            )
    return counts


def _inference_answers(ctx: StageContext) -> dict[str, dict[str, str]]:
    """source -> {id: answer} for the answers the score stage chose (empty without it)."""
    chosen = ctx.path(CHOSEN)
    if not chosen.is_file():
        return {}
    out: dict[str, dict[str, str]] = {}
    for r in read_rows_file(chosen):
        if r["winner"]:
            out.setdefault(r["winner"], {})[r["id"]] = r["answer"]
    return out


def ce_table(stores: dict[str, Path], ids: list[str]) -> dict[str, np.ndarray]:
    """[N, K] CE, token counts and bytes from the sources' GT stores (source -> store folder,
    in source order; NaN where missing)."""
    ce = np.full((len(ids), len(stores)), np.nan)
    ntok = np.zeros_like(ce)
    nbytes = np.zeros(len(ids))
    pos = {eid: i for i, eid in enumerate(ids)}
    for k, store in enumerate(stores.values()):
        for rec in StoreView(store):
            i = pos[rec.example_id]
            ce[i, k] = rec.scalars["ce"]
            ntok[i, k] = rec.scalars["n_tokens"]
            nbytes[i] = rec.scalars["n_bytes"]
    return {"ce": ce, "n_tokens": ntok, "n_bytes": nbytes}


@stage(
    "teacher",
    reads=(
        "sources",
        "advantage.temperature",
        "advantage.top_k",
        "advantage.top_p",
        "advantage.training_rule",
        "advantage.logprob_format",
        "advantage.shard_size",
        "advantage.batch_tokens",
        "train.max_length",
    ),
    upstream=("select", "score"),
    inputs=(FUSION_ROWS, CHOSEN),
    outputs=(TEACHER_STORE, SELECTION),
)
def run(ctx: StageContext) -> dict:
    cfg = ctx.cfg
    ctx.upstream("select")
    rows = read_data(ctx)
    own = _inference_answers(ctx)
    counts: dict[str, dict] = {}
    for src in cfg.sources:
        tok, model = open_source(src)
        gt = {r["id"]: r["response"] for r in rows}
        counts[f"{src.name}/gt"] = _store(ctx, model, tok, src.name, "gt", rows, gt)
        if own.get(src.name):
            counts[f"{src.name}/own"] = _store(
                ctx, model, tok, src.name, "own", rows, own[src.name]
            )
        del model
    gt_stores = {s.name: ctx.path(TEACHER_STORE, source=s.name, mode="gt") for s in cfg.sources}
    stores = list(gt_stores.values())
    stores += [
        ctx.path(TEACHER_STORE, source=s.name, mode="own") for s in cfg.sources if own.get(s.name)
    ]
    if not all(parts_complete(d, ctx.shard[1]) for d in stores):
        return {"partial": True, "counts": counts}  # other processes' parts are still running
    names = [s.name for s in cfg.sources]
    ids = [r["id"] for r in rows]
    table = ce_table(gt_stores, ids)
    rule = get_training_rule(cfg.advantage.training_rule)
    sel = rule(table["ce"], num_bytes=table["n_bytes"], token_counts=table["n_tokens"])
    per_byte = table["ce"] * table["n_tokens"] / np.maximum(table["n_bytes"], 1)[:, None]
    out = []
    for i, eid in enumerate(ids):
        w = int(sel.winner[i])
        row = {"id": eid, "winner": names[w] if w >= 0 else ""}
        for k, name in enumerate(names):
            row[f"ce/{name}"] = float(table["ce"][i, k])
            row[f"ce_per_byte/{name}"] = float(per_byte[i, k])
            row[f"weight/{name}"] = float(sel.weights[i, k])
        out.append(row)
    write_rows(ctx.path(SELECTION), out)
    share = win_share(sel.winner, len(names))
    share_byte = win_share(
        get_training_rule("min_ce_per_byte")(
            table["ce"], num_bytes=table["n_bytes"], token_counts=table["n_tokens"]
        ).winner,
        len(names),
    )
    return {
        "rule": cfg.advantage.training_rule,
        "win_share": {n: round(float(s), 4) for n, s in zip(names, share, strict=True)},
        "win_share_per_byte": {
            n: round(float(s), 4) for n, s in zip(names, share_byte, strict=True)
        },
        "no_winner": int((sel.winner < 0).sum()),
        "counts": counts,
    }
