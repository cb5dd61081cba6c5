"""The ``generate`` benchmark runs on the demo's settings and gives sane figures."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from profuser.bench import registry
from profuser.bench.generate import (
    _tokens_to_stop,
    bench_generate,
    hf_generate_tokens,
)
from profuser.generate.prefill import left_pad


def _positive(x: object) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


def test_bench_generate_gives_positive_figures_and_identical_answers(world_dir) -> None:
    # 48 prompts: one full batch of 32 and a partial one, for both loops
    out = bench_generate(rounds=1, all_sources=False, prompts=48, batch_size=32)
    for key in (
        "generate.batched_speedup",
        "generate.batched_speedup_without_prefix_sharing",
        "generate.tokens_per_s_batched",
        "generate.hf_generate_tokens_per_s",
        "generate.ratio_vs_hf_generate",
        "score.answers_per_s",
    ):
        assert _positive(out[key]), key
    ours, hf = out["generate.tokens_per_s_batched"], out["generate.hf_generate_tokens_per_s"]
    assert out["generate.ratio_vs_hf_generate"] == pytest.approx(ours / hf, rel=0.02)
    lengths = out["generate.mean_answer_tokens"]
    assert set(lengths) == {"batched", "hf_generate"}
    assert all(_positive(v) and v <= 96 for v in lengths.values())  # demo's max_new_tokens
    assert "48 prompts, batch 32" in out["generate.setup"]
    assert out["generate.same_answer_share_batched_vs_single"] == 1.0
    assert set(out["score.answers_per_s_by_rm"]) == {"verifier", "tiny-rm", "reference"}
    assert "generate" in registry.available()


def test_left_padded_puts_padding_and_mask_zeros_on_the_left() -> None:
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_tokens_to_stop_counts_new_tokens_before_the_first_stop_id() -> None:
    assert _tokens_to_stop([4, 5, 1, 6, 2, 2], {1, 2}) == 2
    assert _tokens_to_stop([2, 2], {1, 2}) == 0
    assert _tokens_to_stop([4, 5, 6], {1}) == 3


def _tiny_llama(vocab: int = 40) -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(cfg).eval()


def test_hf_generate_tokens_counts_to_the_stop_id_and_skips_suppressed_ids() -> None:
    model = _tiny_llama(vocab=40)
    prompts = [[3, 4, 5], [6, 7], [8, 9, 10, 11], [12]]
    kw = dict(batch_size=3, temperature=1.0, top_p=0.95, max_new_tokens=6, pad_id=0)
    # the only stop id lies past the usable vocabulary, so it is never drawn: every row runs out
    never = hf_generate_tokens(model, prompts, stop_ids=[39], valid_vocab=30, **kw)
    assert never == [6, 6, 6, 6]
    # every usable id stops a row: each row stops at its first token
    always = hf_generate_tokens(model, prompts, stop_ids=list(range(30)), valid_vocab=30, **kw)
    assert always == [0, 0, 0, 0]
    # a common stop id: counts within bounds, the same for the same seed
    first = hf_generate_tokens(model, prompts, stop_ids=[1, 2], valid_vocab=40, seed=3, **kw)
    again = hf_generate_tokens(model, prompts, stop_ids=[1, 2], valid_vocab=40, seed=3, **kw)
    assert first == again and all(0 <= c <= 6 for c in first)


def test_hf_generate_tokens_leaves_the_global_random_stream_alone() -> None:
    model = _tiny_llama()
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    hf_generate_tokens(
        model,
        [[3, 4], [5]],
        batch_size=2,
        temperature=0.7,
        top_p=0.95,
        max_new_tokens=3,
        stop_ids=[1],
        pad_id=0,
        valid_vocab=40,
    )
    assert torch.equal(torch.rand(3), expected)
