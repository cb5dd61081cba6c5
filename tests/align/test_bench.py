"""Smoke test of `profuser bench align` at a tiny size (keys only, never timings)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from profuser.align.vocab_map import MAP_KINDS
from profuser.bench import registry
from profuser.bench.align import bench_align, bigram_teacher


def test_bench_align_reports_every_figure():
    assert registry._BENCHES["align"] is bench_align
    out = bench_align(
        vocab_size=400,
        target_tokens=48,
        n_texts=1,
        repeats=2,
        world_small=False,
        pseudo_lines=20,
        batch_size=4,
        batch_repeats=1,
    )
    for key in (
        "align.ms_per_2048_pair",
        "align.speedup_vs_dtw",
        "align.vocab_map_s_32k",
        "align.dtw_ms_per_pair",
        "align.text_target_tokens",
        "align.ms_per_2048_pair_tokenizers_only",
        "align.ms_per_2048_pair_given_tokens",
        "align.speedup_vs_dtw_given_tokens",
        "align.ms_per_2048_pair_batched",
        "align.ms_per_2048_pair_batched_cpu",
        "align.ms_per_2048_pair_batched_tokenizers",
        "align.ms_per_2048_pair_batched_tokenizers_cpu",
        "align.speedup_vs_dtw_batched",
    ):
        assert isinstance(out[key], (int, float)) and out[key] >= 0, key
    kinds = ("byte_bpe", "metaspace_bpe", "wordpiece")
    for corpus in ("world", "prose"):
        for a, b in itertools.permutations(kinds, 2):
            frac = out[f"align.aligned_fraction.{corpus}.{a}->{b}"]
            assert 0.0 <= frac <= 1.0
            shares = [out[f"align.mass.{corpus}.{a}->{b}.{k}"] for k in MAP_KINDS]
            assert sum(shares) == pytest.approx(1.0, abs=5e-5) and min(shares) >= 0.0
        # a byte-level source proposes whitespace that WordPiece cannot spell
        assert out[f"align.mass.{corpus}.byte_bpe->wordpiece.dropped"] > 0.0
    assert out["align.batch_size"] == 4
    assert out["align.ms_per_2048_pair_batched_tokenizers"] <= out["align.ms_per_2048_pair_batched"]
    assert all(k.startswith("align.") for k in out)


def test_bigram_teacher():
    ids, lps = bigram_teacher(np.array([5, 6, 5, 7, 5, 6]), k=2)
    # row 0: the most frequent tokens (5: 3/6, 6: 2/6); after 5: 6 twice, 7 once; after 6: 5
    assert ids.tolist() == [[5, 6], [6, 7], [5, -1], [6, 7], [5, -1], [6, 7]]
    p = np.exp(lps)
    assert p[0].tolist() == pytest.approx([0.5, 1 / 3]) and p[1].tolist() == pytest.approx(
        [2 / 3, 1 / 3]
    )
    assert p[2, 0] == pytest.approx(1.0) and np.isneginf(lps[2, 1])
