"""Benchmark area ``align``: character-anchor alignment against FuseLLM-style DTW.

Figures (one run, same texts for both methods):

* ``align.ms_per_2048_pair``: median milliseconds of `TokenAligner.align` (both
  encodings included, vocabulary map already built) on texts of about
  ``target_tokens`` target tokens; source byte-level BPE, target Metaspace BPE
  with byte fallback, both ``vocab_size`` entries. ``..._tokenizers_only`` is
  what the two tokenizers' own encode calls take on such a text
  (`TokenAligner.encode`: offsets only for a side that reads them).
* ``align.speedup_vs_dtw``: pure-Python DTW over the same token strings
  (`profuser.align.dtw`, edit-distance cell cost) on the first ``dtw_texts``
  texts, divided by our median on those same texts. DTW is handed both
  tokenizations; ours pays for encoding the text twice, so the ratio is
  conservative. ``..._given_tokens`` (and ``ms_per_2048_pair_given_tokens``)
  hand ours the same token ids, as the align stage does.
* ``align.ms_per_2048_pair_batched``: milliseconds per text of aligning a batch of
  ``batch_size`` such texts as the align stage does (`TokenAligner.encode` each
  side's batch in one call, both tokenisations included, then
  `TokenAligner.align_batch`), the median over ``batch_repeats`` batches. Wall
  clock, since the backend encodes a batch in threads; ``..._cpu`` is process CPU
  time, and ``..._tokenizers`` (``_cpu``) the two encode calls' part of it.
  ``align.speedup_vs_dtw_batched``: DTW's CPU milliseconds on the first
  ``dtw_texts`` texts of that batch over ours (CPU, per text of the batch).
* ``align.vocab_map_s_32k``: seconds to build that pair's vocabulary map from
  scratch (token tables included, no cache).
* ``align.aligned_fraction.<corpus>.<source>-><target>``: share of target
  positions aligned, for every ordered pair of the three tokenizer kinds, on
  tiny-world text and on the shipped English prose (``bench/data/prose.txt``),
  with the ``vocab_size`` tokenizers; ``world_small`` repeats the world text with
  tokenizers of the tiny world's own sizes.
* ``align.mass.<corpus>.<source>-><target>.<kind>``: for the same pairs and texts,
  the share of teacher mass at the anchored target positions that maps
  ``exact``, through a ``prefix``, to ``unk`` or is ``dropped``
  (`profuser.align.project.count_mass`). Without models, the teacher is the
  source tokenization's own bigram counts on that text (`bigram_teacher`).

Times are process CPU time (other processes on shared cores do not enter), except
the batched wall-clock figures.
The ``vocab_size`` tokenizers are trained on world text, the prose and (the
two BPEs, so that they reach 32k entries) seeded pseudo-words, then cached
under ``$PROFUSER_CACHE/bench_align``; the WordPiece one stops where the
natural text runs out of words.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import json
import os
import random
import shutil
import statistics
import time
from importlib import resources
from typing import Any

import numpy as np

from profuser.align import TokenAligner, build_vocab_map
from profuser.align.dtw import dtw_align, edit_distance
from profuser.align.project import count_mass, mass_shares
from profuser.align.vocab_map import MAP_KINDS
from profuser.bench.registry import register
from profuser.io import cache_root

KINDS = ("byte_bpe", "metaspace_bpe", "wordpiece")
SOURCE, TARGET = "byte_bpe", "metaspace_bpe"  # mpt-like source -> llama-like target
CORPUS_VERSION = 2
_SYLLABLES = [
    a + b
    for a in "b c d f g h k l m n p r s t v w br ch cl dr fl gr pl st th tr".split()
    for b in "a e i o u ai ea ee oo ou".split()
]


def prose() -> str:
    """The shipped English prose sample (our own text)."""
    return resources.files("profuser.bench").joinpath("data/prose.txt").read_text("utf-8")


def world_text(n: int, seed: int = 0) -> str:
    """Tiny-world examples, as the pipeline sees them (system, instruction, GT answer)."""
    from profuser.world.skills import generate_examples

    return "\n\n".join(
        f"{e.system}\n{e.instruction}\n{e.response}" for e in generate_examples(n, seed, "bench")
    )


def _pseudo_words(n_lines: int, seed: int = 0) -> list[str]:
    """Seeded made-up words: enough distinct material for a 32k BPE vocabulary."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        words = (
            "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((1, 2, 2, 3, 3, 4))))
            for _ in range(80)
        )
        lines.append(" ".join(w.capitalize() if rng.random() < 0.1 else w for w in words))
    return lines


def trained_tokenizers(vocab_size: int, pseudo_lines: int | None = None) -> dict[str, Any]:
    """The three tokenizer kinds at ``vocab_size``, trained once and cached on disk."""
    from transformers import AutoTokenizer

    from profuser.world.tokenizers import build_tokenizer

    pseudo_lines = pseudo_lines if pseudo_lines is not None else max(50, vocab_size // 10)
    spec = json.dumps([CORPUS_VERSION, vocab_size, pseudo_lines, KINDS])
    folder = cache_root() / "bench_align" / hashlib.sha256(spec.encode()).hexdigest()[:12]
    if not all((folder / k / "tokenizer.json").is_file() for k in KINDS):
        natural = [prose()] * 20 + world_text(1500).split("\n\n")
        for kind in KINDS:
            if (folder / kind / "tokenizer.json").is_file():
                continue
            # WordPiece training is very slow on many distinct made-up words (and the
            # timed pair is the two BPEs), so it learns only the natural text.
            extra = [] if kind == "wordpiece" else _pseudo_words(pseudo_lines)
            tok = build_tokenizer(kind, natural + extra, vocab_size)
            tmp = folder / f".{kind}.tmp-{os.getpid()}"
            tok.save_pretrained(tmp)
            try:
                os.replace(tmp, folder / kind)  # atomic; a concurrent run may have won
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
    return {k: AutoTokenizer.from_pretrained(folder / k) for k in KINDS}


def world_size_tokenizers() -> dict[str, Any]:
    """The three kinds at the tiny world's own sizes, trained on world text (quick)."""
    from profuser.world.build import TOKENIZER_SIZES
    from profuser.world.tokenizers import build_tokenizer

    corpus = world_text(1200, seed=1).split("\n")
    return {k: build_tokenizer(k, corpus, TOKENIZER_SIZES[k]) for k in KINDS}


def text_windows(tok: Any, text: str, n_tokens: int, count: int) -> list[str]:
    """``count`` slices of ``text`` holding about ``n_tokens`` of ``tok``'s tokens each."""
    enc = tok.backend_tokenizer.encode(text, add_special_tokens=False)
    offsets = enc.offsets
    if len(offsets) < n_tokens:
        raise ValueError(f"text has {len(offsets)} tokens, fewer than {n_tokens}")
    last = len(offsets) - n_tokens
    starts = [round(i * last / max(count - 1, 1)) for i in range(count)]
    return [text[offsets[s][0] : offsets[s + n_tokens - 1][1]] for s in starts]


def _cpu_ms(fn: Any) -> float:
    t0 = time.process_time_ns()
    fn()
    return (time.process_time_ns() - t0) / 1e6


def _token_strings(aligner: TokenAligner, text: str) -> tuple[list[str], list[str]]:
    """Both tokenizations as strings with markers undone, as DTW compares them."""
    al = aligner.align(text)
    src = [aligner.source_table.surfaces[i].decode("utf-8", "replace") for i in al.source_ids]
    tgt = [aligner.target_table.surfaces[i].decode("utf-8", "replace") for i in al.target_ids]
    return src, tgt


def _batched(aligner: TokenAligner, texts: list[str], repeats: int) -> dict[str, float]:
    """Per-pair milliseconds of aligning ``texts`` as the align stage does: each side's
    batch encoded in one call (`TokenAligner.encode`), then `TokenAligner.align_batch`.
    Wall clock (the backend encodes a batch in threads) and process CPU time, the
    median over ``repeats`` batches; ``..._tokenizers`` is the two encode calls' share."""
    n = len(texts)

    def once() -> tuple[float, float, float, float]:
        w0, c0 = time.perf_counter_ns(), time.process_time_ns()
        s_ids, t_ids = aligner.encode(texts, "source"), aligner.encode(texts, "target")
        w1, c1 = time.perf_counter_ns(), time.process_time_ns()
        aligner.align_batch(texts, s_ids, t_ids)
        w2, c2 = time.perf_counter_ns(), time.process_time_ns()
        return (w2 - w0) / 1e6 / n, (c2 - c0) / 1e6 / n, (w1 - w0) / 1e6 / n, (c1 - c0) / 1e6 / n

    once()  # warm: vocabulary arrays, and which sides need offsets
    runs = [once() for _ in range(repeats)]
    wall, cpu, enc_wall, enc_cpu = (statistics.median(r[i] for r in runs) for i in range(4))
    return {
        "align.batch_size": n,
        "align.ms_per_2048_pair_batched": round(wall, 3),
        "align.ms_per_2048_pair_batched_cpu": round(cpu, 3),
        "align.ms_per_2048_pair_batched_tokenizers": round(enc_wall, 3),
        "align.ms_per_2048_pair_batched_tokenizers_cpu": round(enc_cpu, 3),
    }


def bigram_teacher(ids: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in teacher for a text without a model.  # [n] -> [n, k], [n, k]

    Row i (which predicts token i) holds the ``k`` tokens that most often follow
    token i-1 in the same token sequence (row 0: the most frequent tokens), with the
    log of their share of all followers (not renormalised over the ``k``, like a
    stored top-k); ties go to the token seen first.
    """
    ids = [int(i) for i in ids]
    follow: dict[int | None, collections.Counter] = collections.defaultdict(collections.Counter)
    for prev, nxt in zip([None, *ids[:-1]], ids, strict=True):
        follow[prev][nxt] += 1
    follow[None] = collections.Counter(ids)
    out_ids = np.full((len(ids), k), -1, dtype=np.int64)
    out_lp = np.full((len(ids), k), -np.inf, dtype=np.float32)
    rows: dict[int | None, tuple[list[int], list[float]]] = {}
    for i, prev in enumerate([None, *ids[:-1]]):
        if prev not in rows:
            counts = follow[prev]
            total = sum(counts.values())
            top = counts.most_common(k)
            rows[prev] = ([t for t, _ in top], [float(np.log(c / total)) for _, c in top])
        top_ids, top_lp = rows[prev]
        out_ids[i, : len(top_ids)] = top_ids
        out_lp[i, : len(top_lp)] = top_lp
    return out_ids, out_lp


def _fractions(
    toks: dict[str, Any], corpus: str, text: str, aligners: dict | None = None
) -> dict[str, float]:
    """Aligned fraction and teacher-mass shares (bigram teacher) of every ordered pair."""
    out = {}
    for a, b in itertools.permutations(KINDS, 2):
        al = (aligners or {}).get((a, b)) or TokenAligner(toks[a], toks[b], cache=False)
        if aligners is not None:
            aligners[(a, b)] = al
        res = al.align(text)
        out[f"align.aligned_fraction.{corpus}.{a}->{b}"] = round(res.aligned_fraction, 4)
        t_ids, t_lp = bigram_teacher(res.source_ids)
        how = al.vocab_map.lookup_how(t_ids, res.source_contexts())
        c = count_mass(res.target_to_source, t_ids, t_lp, how)
        shares = mass_shares(c.positions, c.anchored, c.mass, c.stored)
        for kind in MAP_KINDS:
            out[f"align.mass.{corpus}.{a}->{b}.{kind}"] = shares[kind]
    return out


@register("align")
def bench_align(
    vocab_size: int = 32000,
    target_tokens: int = 2048,
    n_texts: int = 4,
    repeats: int = 25,
    dtw_texts: int = 1,
    world_small: bool = True,
    pseudo_lines: int | None = None,
    batch_size: int = 64,
    batch_repeats: int = 5,
) -> dict[str, float | int | str]:
    """Time alignment and the vocabulary map against DTW; aligned fractions per pair."""
    toks = trained_tokenizers(vocab_size, pseudo_lines)
    src, tgt = toks[SOURCE], toks[TARGET]
    out: dict[str, float | int | str] = {
        "align.pair": f"{SOURCE}->{TARGET}",
        "align.source_vocab": len(src),
        "align.target_vocab": len(tgt),
    }

    # Vocabulary map, from scratch (tables included).
    t0 = time.process_time()
    vmap = build_vocab_map(src, tgt, cache=False)
    out["align.vocab_map_s_32k"] = round(time.process_time() - t0, 3)
    out["align.vocab_map_unmapped_share"] = round(float((vmap.ids[0] < 0).mean()), 4)

    # Alignment on long texts, ours against DTW on the same texts.
    aligner = TokenAligner(src, tgt, cache=False)  # align() never needs the map
    long_text = "\n\n".join([prose(), world_text(120), prose()])
    windows = text_windows(tgt, long_text, target_tokens, n_texts)
    ours: list[list[float]] = []  # align(text): both encodings included
    given: list[list[float]] = []  # align(text, ids, ids): the token ids DTW is given too
    encodes: list[float] = []  # the two tokenizers' own encode calls, timed alongside
    for w in windows:
        first = aligner.align(w)  # also warms caches
        s_ids, t_ids = first.source_ids, first.target_ids
        runs, runs_given = [], []
        for _ in range(repeats):
            runs.append(_cpu_ms(lambda w=w: aligner.align(w)))
            runs_given.append(
                _cpu_ms(lambda w=w, s=s_ids, t=t_ids: aligner.align(w, source_ids=s, target_ids=t))
            )
            encodes.append(
                _cpu_ms(lambda w=w: (aligner.encode([w], "source"), aligner.encode([w], "target")))
            )
        ours.append(runs)
        given.append(runs_given)
    out["align.ms_per_2048_pair"] = round(statistics.median(itertools.chain(*ours)), 3)
    out["align.ms_per_2048_pair_tokenizers_only"] = round(statistics.median(encodes), 3)
    out["align.ms_per_2048_pair_given_tokens"] = round(
        statistics.median(itertools.chain(*given)), 3
    )
    out["align.text_target_tokens"] = int(
        statistics.median(len(aligner.align(w).target_ids) for w in windows)
    )

    batch = text_windows(tgt, long_text, target_tokens, batch_size)
    out.update(_batched(aligner, batch, batch_repeats))

    dtw_ms = []
    for w in batch[:dtw_texts]:  # the first texts of the batch
        s_str, t_str = _token_strings(aligner, w)
        edit_distance.cache_clear()  # each run pays for its own cell costs
        dtw_ms.append(_cpu_ms(lambda s=s_str, t=t_str: dtw_align(s, t)))
    dtw = statistics.median(dtw_ms)
    per_text = [aligner.align(w) for w in batch[:dtw_texts]]  # warm
    ours_same = statistics.median(
        _cpu_ms(lambda w=w: aligner.align(w)) for w in batch[:dtw_texts] for _ in range(repeats)
    )
    given_same = statistics.median(
        _cpu_ms(lambda w=w, a=a: aligner.align(w, a.source_ids, a.target_ids))
        for w, a in zip(batch[:dtw_texts], per_text, strict=True)
        for _ in range(repeats)
    )
    out["align.dtw_ms_per_pair"] = round(dtw, 1)
    out["align.speedup_vs_dtw"] = round(dtw / max(ours_same, 1e-6), 1)
    out["align.speedup_vs_dtw_given_tokens"] = round(dtw / max(given_same, 1e-6), 1)
    out["align.speedup_vs_dtw_batched"] = round(
        dtw / max(out["align.ms_per_2048_pair_batched_cpu"], 1e-6), 1
    )

    # Aligned fractions, every ordered pair, on world text and prose.
    world = world_text(60, seed=7)
    pairs: dict = {}  # one aligner (and vocabulary map) per pair for both texts
    out.update(_fractions(toks, "world", world, pairs))
    out.update(_fractions(toks, "prose", prose(), pairs))
    if world_small:
        out.update(_fractions(world_size_tokenizers(), "world_small", world))
    return out


def _main() -> None:  # pragma: no cover - manual use
    print(json.dumps(bench_align(), indent=1))


if __name__ == "__main__":  # pragma: no cover
    _main()
