"""Stage `align`: the chosen teachers' distributions, moved into the target's positions and vocabulary.

For every example, training mode takes the MinCE source's distribution along
the GT answer and inference mode the voted answer's generating source's
distribution along that answer; `profuser.align` maps each onto the target's
tokens of the same text. Stores ``align/train_mode`` and ``align/infer_mode``
(distribution stores in the target vocabulary, one row per target answer token;
rows with no slot carry no KL, per ``advantage.unaligned``).

Each stored example also carries where its teacher's mass went
(`profuser.align.project.count_mass`: target positions, anchored positions and
the mass that maps exactly, through a prefix, to unk or is dropped), and the
summary gives these per source (``mass``), read back from the whole store so a
resumed run reports every example. A source's end-of-turn tokens (eos and its
chat template's marker) map to the target's own end-of-turn token.

Answers go through in chunks of ``ALIGN_BATCH``: each tokenizer encodes a chunk's
answers in one batch call (`TokenAligner.encode`; the ids the answer alone
encodes to, as in `profuser.models.chat.encode_turn`) and each source's share is
aligned together (`TokenAligner.align_batch`); rows are stored in job order.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow.parquet as pq

from profuser.align import Alignment, TokenAligner
from profuser.align.project import count_mass, mass_shares
from profuser.align.vocab_map import MAP_KINDS
from profuser.io.shards import read_rows_file
from profuser.models.chat import end_of_turn_ids
from profuser.models.loading import load_tokenizer
from profuser.pipeline import StageContext, stage
from profuser.stages.common import StoreView, read_data, target_source
from profuser.stages.contracts import ALIGNED, CHOSEN, FUSION_ROWS, SELECTION, TEACHER_STORE
from profuser.teacher.storage import DistributionReader, DistributionWriter

log = logging.getLogger("profuser")

MASS_COLUMNS = tuple(f"mass_{k}" for k in MAP_KINDS)  # per-example scalars, see count_mass
COUNT_COLUMNS = ("source", "aligned", "positions", "anchored", "stored_mass", *MASS_COLUMNS)
ALIGN_BATCH = 64  # answers encoded (one batch call per tokenizer) and aligned together


def turn_end_pairs(source_tok, target_tok) -> dict[int, int]:
    """The source's end-of-turn ids -> the token the target ends a turn with (its chat
    template's special marker, else its eos); {} where the target has neither."""
    ends = end_of_turn_ids(target_tok)
    marker = [i for i in ends if i != target_tok.eos_token_id]
    end = marker[0] if marker else target_tok.eos_token_id
    return {} if end is None else dict.fromkeys(end_of_turn_ids(source_tok), end)


def store_counts(store) -> tuple[float | None, dict[str, dict]]:
    """(aligned fraction, per-source `mass_shares`) from an aligned store's per-example
    columns, so that a resumed run counts the examples stored before it too."""
    sums: dict[str, list] = {}
    aligned = 0
    for entry in store.manifest["shards"]:
        path = store.directory / entry["file"]
        table = pq.read_table(path, columns=list(COUNT_COLUMNS)).slice(0, entry["rows"])
        cols = table.to_pydict()
        aligned += sum(cols["aligned"])
        for i, src in enumerate(cols["source"]):
            acc = sums.setdefault(src, [0, 0, 0.0, np.zeros(len(MAP_KINDS))])
            acc[0] += cols["positions"][i]
            acc[1] += cols["anchored"][i]
            acc[2] += cols["stored_mass"][i]
            acc[3] += [cols[c][i] for c in MASS_COLUMNS]
    total = sum(acc[0] for acc in sums.values())
    mass = {src: mass_shares(p, a, m, st) for src, (p, a, st, m) in sorted(sums.items())}
    return (round(aligned / total, 4) if total else None), mass


def _alignments(
    work: list[tuple[dict, str, str, object]], toks: dict, target_tok, aligners: dict
) -> list[Alignment]:
    """Alignments of (row, answer, source name, teacher record) items: each side encoded
    in one batch call, each source's items aligned together. The source's answer ids
    are cut to the teacher's rows, as `encode_turn`'s answer ids were."""
    for src in dict.fromkeys(w[2] for w in work):
        if src not in aligners:
            al = aligners[src] = TokenAligner(toks[src], target_tok)
            # cached_property: the instance attribute replaces the plain map
            al.vocab_map = al.vocab_map.with_pairs(turn_end_pairs(toks[src], target_tok))
    answers = [w[1] for w in work]
    targets = aligners[work[0][2]].encode(answers, "target")
    out: list[Alignment | None] = [None] * len(work)
    for src in dict.fromkeys(w[2] for w in work):
        rows = [i for i, w in enumerate(work) if w[2] == src]
        al = aligners[src]
        sources = al.encode([answers[i] for i in rows], "source")
        sources = sources.take(range(len(rows)), [len(work[i][3].ids) for i in rows])
        got = al.align_batch([answers[i] for i in rows], sources, targets.take(rows))
        for i, alignment in zip(rows, got, strict=True):
            out[i] = alignment
    return out


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
    missing = 0
    stored = set(writer.stored_ids)
    work: list[tuple[dict, str, str]] = []  # jobs with a teacher, in order
    for row, answer, src in jobs:
        if row["id"] in stored:
            continue
        reader = readers.get(src) or readers.setdefault(
            src, StoreView(ctx.path(TEACHER_STORE, source=src, mode=teacher_sub))
        )
        if row["id"] not in reader:
            missing += 1  # the source's logits were not finite or the answer too long: no teacher
            continue
        stored.add(row["id"])
        work.append((row, answer, src))
    for start in range(0, len(work), ALIGN_BATCH):
        chunk = [(*w, readers[w[2]].get(w[0]["id"])) for w in work[start : start + ALIGN_BATCH]]
        for (row, _, src, rec), alignment in zip(
            chunk, _alignments(chunk, toks, target_tok, aligners), strict=True
        ):
            _add(writer, row["id"], src, rec, alignment, aligners[src], adv.unaligned)
    writer.close()
    store = DistributionReader(ctx.path(ALIGNED, mode=mode))
    aligned_fraction, mass = store_counts(store)
    return {
        "examples": len(store),
        "no_teacher": missing,
        "aligned_fraction": aligned_fraction,  # target positions given a teacher row
        "mass": mass,  # per source, see `profuser.align.project.mass_shares`
    }


def _add(writer, example_id: str, src: str, rec, alignment, al: TokenAligner, policy: str) -> None:
    """One example's teacher rows, projected along ``alignment``, and its mass counts."""
    proj = al.project(alignment, rec.ids, rec.logprobs, policy=policy)
    n = len(alignment.source_ids)
    how = al.vocab_map.lookup_how(rec.ids[:n], alignment.source_contexts())
    count = count_mass(alignment.target_to_source, rec.ids[:n], rec.logprobs[:n], how)
    ids = np.where(proj.mask[:, None], proj.ids, -1)
    lps = np.where(ids >= 0, proj.logprobs, -np.inf).astype(np.float32)
    # empty slots must trail the real ones for storage
    order = np.argsort(ids < 0, axis=1, kind="stable")
    ids = np.take_along_axis(ids, order, 1)
    lps = np.take_along_axis(lps, order, 1)
    writer.add(
        example_id,
        ids,
        lps,
        source=src,
        aligned=int(proj.aligned.sum()),
        positions=count.positions,
        anchored=count.anchored,
        stored_mass=count.stored,
        **{c: float(m) for c, m in zip(MASS_COLUMNS, count.mass, strict=True)},
    )


@stage(
    "align",
    version=3,  # 2: end-of-turn tokens map to the target's, per-example mass counts; 3: a
    # marker merged with the text's whitespace ("▁\n") is aligned
    reads=(
        "advantage.unaligned",
        "advantage.logprob_format",
        "advantage.shard_size",
        "target",
        "target_path",
        "sources",
    ),
    upstream=("select", "teacher", "score"),
    inputs=(FUSION_ROWS, TEACHER_STORE, SELECTION, CHOSEN),
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
