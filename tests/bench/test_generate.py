"""The ``generate`` benchmark runs on the demo's settings and gives sane figures."""

from __future__ import annotations

import math

from profuser.bench import registry
from profuser.bench.generate import bench_generate


def test_bench_generate_gives_positive_figures_and_identical_answers(world_dir) -> None:
    out = bench_generate(rounds=1, all_sources=False)
    for key in (
        "generate.batched_speedup",
        "generate.batched_speedup_without_prefix_sharing",
        "generate.tokens_per_s_batched",
        "score.answers_per_s",
    ):
        assert isinstance(out[key], float) and math.isfinite(out[key]) and out[key] > 0, key
    assert out["generate.same_answer_share_batched_vs_single"] == 1.0
    assert set(out["score.answers_per_s_by_rm"]) == {"verifier", "tiny-rm", "reference"}
    assert "generate" in registry.available()
