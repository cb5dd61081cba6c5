"""The ``train`` benchmark runs at tiny sizes and returns finite positive figures."""

from __future__ import annotations

import math

from profuser.bench import registry
from profuser.bench.train import bench_train

KEYS = (
    "train.step_ratio_vs_sft",
    "train.mem_ratio_vs_sft",
    "train.mem_ratio_dense_over_sparse",
    "train.sft_step_ms",
    "train.fusion_step_ms",
    "train.sft_peak_mb",
    "train.fusion_peak_mb",
    "train.dense_peak_mb",
    "train.lora_step_ratio_vs_full",
    "train.lora_mem_ratio_vs_full",
    "train.full_train_peak_mb",
    "train.lora_train_peak_mb",
    "train.preference_step_ratio_vs_sft",
    "train.preference_mem_ratio_vs_sft",
    "train.preference_step_ms",
    "train.preference_peak_mb",
)


def test_bench_train_tiny_sizes_give_finite_positive_figures():
    out = bench_train(batch=2, seq=48, vocab=700, hidden=32, layers=1, k=4, repeats=1)
    for key in KEYS:
        value = out[key]
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (key, value)
    assert all(key.startswith("train.") for key in out)


def test_bench_train_is_registered():
    # the registry itself, not available(): that imports every area, others' included
    assert registry._BENCHES["train"] is bench_train


def test_dense_baseline_has_the_sparse_loss_gradient():
    # the dense baseline differs from ours by the teacher entropy, a constant: same gradient
    import torch

    from profuser.bench.step import WEIGHTS, BenchSize, bench_batch, dense_kl_loss, mode_targets
    from profuser.train.losses import ModeBatch, fusion_loss

    size = BenchSize(batch=2, seq=12, vocab=40, k=5)
    batch = bench_batch(size, torch.device("cpu"))
    torch.manual_seed(0)
    logits = (
        torch.randn(1, 12, 40, requires_grad=True),
        torch.randn(1, 12, 40, requires_grad=True),
    )
    dense = dense_kl_loss(logits, batch)
    sparse = fusion_loss(
        ModeBatch(logits[0], mode_targets(batch, slice(0, 1))),
        ModeBatch(logits[1], mode_targets(batch, slice(1, None))),
        WEIGHTS,
    ).total
    got, want = torch.autograd.grad(dense, logits), torch.autograd.grad(sparse, logits)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_lora_bench_trains_only_the_adapters_from_the_same_start():
    import torch

    from profuser.bench.lora import _trainee
    from profuser.bench.step import BenchSize

    size = BenchSize(batch=2, seq=8, vocab=50, hidden=32, layers=1, k=2)
    full, full_opt = _trainee(size, torch.device("cpu"), "full", rank=4)
    lora, lora_opt = _trainee(size, torch.device("cpu"), "lora", rank=4)
    n_full = sum(p.numel() for g in full_opt.param_groups for p in g["params"])
    n_lora = sum(p.numel() for g in lora_opt.param_groups for p in g["params"])
    assert n_full == sum(p.numel() for p in full.parameters())
    assert 0 < n_lora < n_full / 4
    ids = torch.tensor([[1, 2, 3, 4]])
    # adapters start at zero (B = 0): the wrapped model computes what the full one does
    torch.testing.assert_close(lora(input_ids=ids).logits, full(input_ids=ids).logits)
