"""Smoke test of `profuser bench align` at a tiny size (keys only, never timings)."""

from __future__ import annotations

import itertools

from profuser.bench import registry
from profuser.bench.align import bench_align


def test_bench_align_reports_every_figure():
    assert registry._BENCHES["align"] is bench_align
    out = bench_align(
        vocab_size=400, target_tokens=48, n_texts=1, repeats=2, world_small=False, pseudo_lines=20
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
    ):
        assert isinstance(out[key], (int, float)) and out[key] >= 0, key
    kinds = ("byte_bpe", "metaspace_bpe", "wordpiece")
    for corpus in ("world", "prose"):
        for a, b in itertools.permutations(kinds, 2):
            frac = out[f"align.aligned_fraction.{corpus}.{a}->{b}"]
            assert 0.0 <= frac <= 1.0
    assert all(k.startswith("align.") for k in out)
