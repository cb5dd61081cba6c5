"""Stage `align`: the chosen teachers' distributions, moved into the target's positions and vocabulary.

For every example, training mode takes the MinCE source's distribution along
the GT answer and inference mode the voted answer's generating source's
distribution along that answer; `profuser.align` maps each onto the target's
tokens of the same text. Stores ``align/train_mode`` and ``align/infer_mode``
(distribution stores in the target vocabulary, one row per target answer token;
rows with no slot carry no KL, per ``advantage.unaligned``).
"""

from __future__ import annotations

import logging

import numpy as np

from profuser.align import TokenAligner
from profuser.io.shards import read_rows_file
from profuser.models.chat import encode_turn
from profuser.models.loading import load_tokenizer
from profuser.pipeline import StageContext, stage
from profuser.stages.common import StoreView, read_data, target_source
from profuser.stages.contracts import ALIGNED, CHOSEN, DATA_ROWS, SELECTION, TEACHER_STORE
from profuser.teacher.storage import DistributionReader, DistributionWriter

log = logging.getLogger("profuser")


def _store_mode(
    ctx: StageContext,
    mode: str,
    jobs: list[tuple[dict, str, str]],
    teacher_sub: str,
    toks: dict,
    target_tok,
    vocab: int,
) -> dict:
    """jobs: (row, answer text, source name) -> aligned target rows in ``align/<mode>``."""
    adv = ctx.cfg.advantage
    writer = DistributionWriter(
        ctx.path(ALIGNED, mode=mode),
        shard_size=adv.shard_size,
        vocab_size=vocab,
        logprob_format=adv.logprob_format,
        resume=True,
    )
    readers: dict[str, StoreView] = {}
    aligners: dict[str, TokenAligner] = {}
    aligned = total = missing = 0
    for row, answer, src in jobs:
        if row["id"] in writer.stored_ids:
            continue
        reader = readers.get(src) or readers.setdefault(
            src, StoreView(ctx.path(TEACHER_STORE, source=src, mode=teacher_sub))
        )
        if row["id"] not in reader:
            missing += 1  # the source's logits were not finite or the answer too long: no teacher
            continue
        rec = reader.get(row["id"])
        stok = toks[src]
        s_ids = encode_turn(stok, row["system"], row["instruction"], answer).answer_ids[
            : len(rec.ids)
        ]
        t_ids = encode_turn(target_tok, row["system"], row["instruction"], answer).answer_ids
        al = aligners.get(src) or aligners.setdefault(src, TokenAligner(stok, target_tok))
        alignment = al.align(answer, source_ids=s_ids, target_ids=t_ids)
        proj = al.project(alignment, rec.ids, rec.logprobs, policy=adv.unaligned)
        ids = np.where(proj.mask[:, None], proj.ids, -1)
        lps = np.where(ids >= 0, proj.logprobs, -np.inf).astype(np.float32)
        # empty slots must trail the real ones for storage
        order = np.argsort(ids < 0, axis=1, kind="stable")
        ids = np.take_along_axis(ids, order, 1)
        lps = np.take_along_axis(lps, order, 1)
        writer.add(row["id"], ids, lps, source=src, aligned=int(proj.aligned.sum()))
        aligned += int(proj.aligned.sum())
        total += len(t_ids)
    writer.close()
    return {
        "examples": len(DistributionReader(ctx.path(ALIGNED, mode=mode))),
        "no_teacher": missing,
        "aligned_fraction": round(aligned / total, 4) if total else None,
    }


@stage(
    "align",
    reads=(
        "advantage.unaligned",
        "advantage.logprob_format",
        "advantage.shard_size",
        "target",
        "target_path",
        "sources",
    ),
    upstream=("data", "teacher", "score"),
    inputs=(DATA_ROWS, TEACHER_STORE, SELECTION, CHOSEN),
    outputs=(ALIGNED,),
)
def run(ctx: StageContext) -> dict:
    cfg = ctx.cfg
    ctx.upstream("teacher")
    rows = read_data(ctx)
    tgt = target_source(cfg)
    target_tok = load_tokenizer(tgt.path, tgt.chat_template, tgt.trust_remote_code)
    toks = {
        s.name: load_tokenizer(s.path, s.chat_template, s.trust_remote_code) for s in cfg.sources
    }
    vocab = len(target_tok)  # target ids past the tokenizer are never teacher candidates
    winners = {r["id"]: r["winner"] for r in read_rows_file(ctx.path(SELECTION))}
    train_jobs = [(r, r["response"], winners[r["id"]]) for r in rows if winners.get(r["id"])]
    out = {"train_mode": _store_mode(ctx, "train_mode", train_jobs, "gt", toks, target_tok, vocab)}
    chosen = ctx.path(CHOSEN)
    if chosen.is_file():
        picks = {r["id"]: r for r in read_rows_file(chosen) if r["winner"]}
        infer_jobs = [
            (r, picks[r["id"]]["answer"], picks[r["id"]]["winner"])
            for r in rows
            if r["id"] in picks
        ]
        out["infer_mode"] = _store_mode(
            ctx, "infer_mode", infer_jobs, "own", toks, target_tok, vocab
        )
    return out
