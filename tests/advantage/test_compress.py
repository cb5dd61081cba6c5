"""compress_logits: top-k of the temperature-scaled log-softmax, exact top-p prefix."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from profuser.advantage import NonFiniteLogitsError, compress_logits


def reference_keep(logprobs_row: list[float], top_p: float) -> int:
    """How many of the sorted candidates the smallest prefix reaching top_p holds."""
    total = 0.0
    for i, lp in enumerate(logprobs_row):
        total += math.exp(lp)
        if total >= top_p:
            return i + 1
    return len(logprobs_row)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_candidates_equal_topk_of_scaled_log_softmax(temperature):
    torch.manual_seed(0)
    logits = torch.randn(300, 500) * 4
    ids, lps = compress_logits(logits, temperature=temperature, top_k=10, top_p=None)
    ref_lp, ref_ids = torch.topk(torch.log_softmax(logits / temperature, dim=-1), 10)
    assert ids.dtype == torch.int64 and lps.dtype == torch.float32
    assert torch.equal(ids, ref_ids)
    torch.testing.assert_close(lps, ref_lp)
    assert bool((lps[:, :-1] >= lps[:, 1:]).all())


def test_top_p_on_crafted_distributions():
    probs = torch.tensor(
        [
            [0.5, 0.3, 0.16, 0.04] + [0.0] * 4,  # 0.5, 0.8, 0.96 -> 3 kept
            [0.96, 0.02, 0.01, 0.01] + [0.0] * 4,  # the top token alone reaches 0.95
            [0.45, 0.45, 0.1] + [0.0] * 5,  # 0.9 < 0.95 -> the third crosses it
            [0.125] * 8,  # uniform: top-4 reach only 0.5 -> all 4 kept
        ]
    )
    logits = torch.log(probs.clamp_min(1e-30))
    ids, lps = compress_logits(logits, temperature=1.0, top_k=4, top_p=0.95)
    kept = (ids >= 0).sum(dim=1).tolist()
    assert kept == [3, 1, 3, 4]
    assert ids[0].tolist() == [0, 1, 2, -1]
    assert lps[0, 3].item() == float("-inf")
    torch.testing.assert_close(lps[0, :3], torch.log(probs[0, :3]))


def test_top_p_prefix_on_random_distributions():
    gen = torch.Generator().manual_seed(1)
    # Mix peaky and flat rows so the cut lands everywhere between 1 and k.
    scale = torch.rand(2000, 1, generator=gen) * 12
    logits = torch.randn(2000, 300, generator=gen) * scale
    ids, lps = compress_logits(logits, temperature=2.0, top_k=10, top_p=0.95)
    full_lp, full_ids = torch.topk(torch.log_softmax(logits / 2.0, dim=-1), 10)
    counts = (ids >= 0).sum(dim=1)
    assert set(counts.tolist()) >= {1, 10} and len(set(counts.tolist())) > 5
    for row in range(2000):
        n = reference_keep(full_lp[row].double().tolist(), 0.95)
        assert counts[row].item() == n
        assert torch.equal(ids[row, :n], full_ids[row, :n])
        assert bool((ids[row, n:] == -1).all()) and bool(torch.isinf(lps[row, n:]).all())


def test_chunking_and_leading_dims_do_not_change_results():
    torch.manual_seed(2)
    logits = torch.randn(3, 37, 200)
    whole = compress_logits(logits.reshape(-1, 200), chunk_positions=10_000)
    for chunk in (1, 7, 64):
        ids, lps = compress_logits(logits, chunk_positions=chunk)
        assert ids.shape == (3, 37, 10)
        assert torch.equal(ids.reshape(-1, 10), whole[0])
        assert torch.equal(lps.reshape(-1, 10), whole[1])


def test_bfloat16_input():
    logits = torch.randn(5, 100).bfloat16()
    ids, lps = compress_logits(logits, top_p=None)
    ref = torch.topk(torch.log_softmax(logits.float() / 2, dim=-1), 10)
    assert torch.equal(ids, ref.indices)


def test_non_finite_rows_are_named():
    logits = torch.randn(10, 50)
    logits[3, 7] = float("nan")
    logits[8, 0] = float("inf")
    with pytest.raises(NonFiniteLogitsError, match=r"2 position\(s\): 3, 8") as info:
        compress_logits(logits, chunk_positions=4)
    assert isinstance(info.value, ValueError)
    assert info.value.rows == [(3,), (8,)]
    batched = torch.zeros(2, 3, 50)
    batched[1, 2, 5] = float("-inf")
    with pytest.raises(ValueError, match=r"\(1, 2\)"):
        compress_logits(batched)


def test_valid_vocab_masks_padded_ids():
    torch.manual_seed(3)
    logits = torch.randn(20, 128)
    logits[:, 100:] = 50.0  # padded rows of the embedding would win if not masked
    logits[0, 110] = float("nan")  # garbage past the real vocabulary is ignored
    ids, lps = compress_logits(logits, top_p=None, valid_vocab=100)
    assert int(ids.max()) < 100
    ref_lp, ref_ids = torch.topk(torch.log_softmax(logits[:, :100] / 2, dim=-1), 10)
    assert torch.equal(ids, ref_ids)
    torch.testing.assert_close(lps, ref_lp)


def test_vocab_smaller_than_k_pads():
    ids, lps = compress_logits(torch.tensor([[0.0, 1.0, 2.0]]), top_k=5, top_p=None)
    assert ids.tolist() == [[2, 1, 0, -1, -1]]
    assert torch.isinf(lps[0, 3:]).all()
    np.testing.assert_allclose(lps[0, :3].exp().sum().item(), 1.0, rtol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="temperature"):
        compress_logits(torch.zeros(2, 5), temperature=0)
    with pytest.raises(ValueError, match="top_p"):
        compress_logits(torch.zeros(2, 5), top_p=0.0)
    with pytest.raises(ValueError, match="shape"):
        compress_logits(torch.zeros(5))
