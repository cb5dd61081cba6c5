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

    from profuser.bench.train import WEIGHTS, BenchSize, _batch, _dense_kl_loss, _targets
    from profuser.train.losses import ModeBatch, fusion_loss

    size = BenchSize(batch=2, seq=12, vocab=40, k=5)
    batch = _batch(size, torch.device("cpu"))
    torch.manual_seed(0)
    logits = (
        torch.randn(1, 12, 40, requires_grad=True),
        torch.randn(1, 12, 40, requires_grad=True),
    )
    dense = _dense_kl_loss(logits, batch)
    sparse = fusion_loss(
        ModeBatch(logits[0], _targets(batch, slice(0, 1))),
        ModeBatch(logits[1], _targets(batch, slice(1, None))),
        WEIGHTS,
    ).total
    got, want = torch.autograd.grad(dense, logits), torch.autograd.grad(sparse, logits)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
