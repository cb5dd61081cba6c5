"""Sparse KL, SFT and the ProFuser objective against plain dense float64 references."""

from __future__ import annotations

import pytest
import torch

from profuser.train.losses import (
    COMPONENTS,
    IGNORE_INDEX,
    ModeBatch,
    ModeTargets,
    PhaseWeights,
    fusion_counts,
    fusion_loss,
    next_token_labels,
    sft_loss,
    sft_loss_sum,
    sparse_kl,
    sparse_kl_sum,
)

B, L, V, K = 3, 7, 50, 5


def make_teacher(
    b: int = B, seq: int = L, v: int = V, k: int = K, empty: float = 0.3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct ids per position, some slots -1, one fully empty row, unnormalised fp16 logprobs."""
    ids = torch.stack([torch.randperm(v)[:k] for _ in range(b * seq)]).view(b, seq, k)
    ids = ids.masked_fill(torch.rand(b, seq, k) < empty, -1)
    ids[0, 1] = -1  # a position with no teacher at all
    logprobs = (torch.randn(b, seq, k) - 1.0).to(torch.float16)  # not normalised on purpose
    return ids, logprobs


def dense_kl_reference(logits, ids, logprobs, mask) -> torch.Tensor:
    """Float64 KL over a dense teacher: p scattered over V, Σ_{p>0} p (log p − log q), mean."""
    logits = logits.double()
    dense = torch.zeros(logits.shape, dtype=torch.float64)
    total = logits.new_zeros(())
    count = 0
    for b in range(ids.shape[0]):
        for t in range(ids.shape[1]):
            keep = ids[b, t] >= 0
            if not mask[b, t] or not keep.any():
                continue
            w = logprobs[b, t][keep].double().exp()
            dense[b, t, ids[b, t][keep]] = w / w.sum()
            p = dense[b, t]
            log_q = torch.log_softmax(logits[b, t], dim=-1)
            on = p > 0
            total = total + (p[on] * (p[on].log() - log_q[on])).sum()
            count += 1
    return total / max(count, 1)


def test_sparse_kl_matches_dense_reference_value_and_grad():
    torch.manual_seed(0)
    logits = torch.randn(B, L, V, requires_grad=True)
    ids, logprobs = make_teacher()
    mask = torch.rand(B, L) < 0.8
    mask[0, 1] = True  # the all-empty row is masked in: it must still not count

    ours = sparse_kl(logits, ids, logprobs, mask)
    ref = dense_kl_reference(logits, ids, logprobs, mask)
    assert ours.item() == pytest.approx(ref.item(), abs=1e-6)

    (g_ours,) = torch.autograd.grad(ours, logits)
    (g_ref,) = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(g_ours, g_ref, atol=1e-6, rtol=0)


def test_sparse_kl_float64_is_exact():
    torch.manual_seed(1)
    logits = torch.randn(B, L, V, dtype=torch.float64, requires_grad=True)
    ids, logprobs = make_teacher()
    mask = torch.ones(B, L, dtype=torch.bool)
    ours = sparse_kl(logits, ids, logprobs.double(), mask)
    ref = dense_kl_reference(logits, ids, logprobs.double(), mask)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, ref, atol=1e-12, rtol=0)


def test_sparse_kl_is_zero_with_graph_when_nothing_counts():
    torch.manual_seed(2)
    logits = torch.randn(B, L, V, requires_grad=True)
    ids, logprobs = make_teacher()
    for mask, tids in [
        (torch.zeros(B, L, dtype=torch.bool), ids),  # nothing masked in
        (torch.ones(B, L, dtype=torch.bool), torch.full_like(ids, -1)),  # no valid slot
    ]:
        loss = sparse_kl(logits, tids, logprobs, mask)
        assert loss.item() == 0.0
        loss.backward()
        assert logits.grad is not None and torch.count_nonzero(logits.grad) == 0
        logits.grad = None


def test_sparse_kl_ignores_empty_slot_logprobs_and_zero_prob_slots():
    torch.manual_seed(3)
    logits = torch.randn(1, 2, V, requires_grad=True)
    ids = torch.tensor([[[3, 7, -1], [4, -1, 9]]])
    lp1 = torch.tensor([[[-0.5, -1.0, 5.0], [-0.2, 100.0, float("-inf")]]])
    lp2 = torch.tensor([[[-0.5, -1.0, -99.0], [-0.2, -3.0, float("-inf")]]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    a = sparse_kl(logits, ids, lp1, mask)
    b = sparse_kl(logits, ids, lp2, mask)
    assert torch.isfinite(a) and a.item() == pytest.approx(b.item(), abs=1e-7)
    a.backward()
    assert torch.isfinite(logits.grad).all()


def test_sparse_kl_is_invariant_to_teacher_scale():
    # stored top-k/top-p log-probs are unnormalised: a constant shift must not matter
    torch.manual_seed(4)
    logits = torch.randn(B, L, V)
    ids, logprobs = make_teacher()
    mask = torch.ones(B, L, dtype=torch.bool)
    a = sparse_kl(logits, ids, logprobs.float(), mask)
    b = sparse_kl(logits, ids, logprobs.float() - 2.5, mask)
    assert a.item() == pytest.approx(b.item(), abs=1e-6)


def test_sum_form_under_micro_batches_equals_full_batch_mean():
    torch.manual_seed(5)
    logits = torch.randn(4, L, V, requires_grad=True)
    ids, logprobs = make_teacher(b=4)
    mask = torch.rand(4, L) < 0.7
    labels = torch.randint(0, V, (4, L)).masked_fill(torch.rand(4, L) < 0.3, IGNORE_INDEX)

    full_kl = sparse_kl(logits, ids, logprobs, mask)
    full_sft = sft_loss(logits, labels)
    (g_full,) = torch.autograd.grad(full_kl + full_sft, logits)

    chunks = [slice(0, 1), slice(1, 3), slice(3, 4)]  # uneven micro-batches
    kl_n = sum(sparse_kl_sum(logits[c], ids[c], logprobs[c], mask[c])[1] for c in chunks)
    sft_n = sum(sft_loss_sum(logits[c], labels[c])[1] for c in chunks)
    acc_kl = acc_sft = 0.0
    grad = torch.zeros_like(logits)
    for c in chunks:
        kl_sum, _ = sparse_kl_sum(logits[c], ids[c], logprobs[c], mask[c])
        sft_sum, _ = sft_loss_sum(logits[c], labels[c])
        part = kl_sum / kl_n + sft_sum / sft_n
        (g,) = torch.autograd.grad(part, logits)
        grad += g
        acc_kl += (kl_sum / kl_n).item()
        acc_sft += (sft_sum / sft_n).item()
    assert acc_kl == pytest.approx(full_kl.item(), abs=1e-6)
    assert acc_sft == pytest.approx(full_sft.item(), abs=1e-6)
    torch.testing.assert_close(grad, g_full, atol=1e-7, rtol=1e-5)


def test_sft_loss_matches_cross_entropy():
    torch.manual_seed(6)
    logits = torch.randn(B, L, V, requires_grad=True)
    labels = torch.randint(0, V, (B, L)).masked_fill(torch.rand(B, L) < 0.4, IGNORE_INDEX)
    ref = torch.nn.functional.cross_entropy(logits.view(-1, V), labels.view(-1))
    ours = sft_loss(logits, labels)
    assert ours.item() == pytest.approx(ref.item(), abs=1e-6)
    torch.testing.assert_close(
        torch.autograd.grad(ours, logits)[0], torch.autograd.grad(ref, logits)[0]
    )
    nothing = sft_loss(logits, torch.full_like(labels, IGNORE_INDEX))
    assert nothing.item() == 0.0 and nothing.requires_grad


def test_next_token_labels_shifts_left():
    labels = torch.tensor([[-100, 5, 6, 7]])
    assert next_token_labels(labels).tolist() == [[5, 6, 7, -100]]


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="mask has shape"):
        sparse_kl(
            torch.randn(2, 3, 10), torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), torch.ones(3, 2)
        )
    with pytest.raises(ValueError, match="together"):
        ModeTargets(labels=torch.zeros(2, 3, dtype=torch.long), teacher_ids=torch.zeros(2, 3, 4))


# ---------------------------------------------------------------------------------------------
# fusion_loss
# ---------------------------------------------------------------------------------------------


def make_mode(seq: int, seed: int) -> tuple[torch.Tensor, ModeTargets]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, seq, V, generator=g, requires_grad=True)
    labels = torch.randint(0, V, (B, seq), generator=g)
    labels[:, :2] = IGNORE_INDEX  # the prompt
    ids, logprobs = make_teacher(seq=seq)
    return logits, ModeTargets(labels=labels, teacher_ids=ids, teacher_logprobs=logprobs)


def test_fusion_loss_is_the_weighted_combination_of_components():
    torch.manual_seed(7)
    li, ti = make_mode(6, seed=1)  # inference and training sequences differ in length
    lt, tt = make_mode(9, seed=2)
    w = PhaseWeights(w1=0.1, w2=1.0, lam=0.5, beta=0.25)
    out = fusion_loss(ModeBatch(li, ti), ModeBatch(lt, tt), w)

    sft_i = sft_loss(li, ti.labels)
    kl_i = sparse_kl(li, ti.teacher_ids, ti.teacher_logprobs, ti.labels != IGNORE_INDEX)
    sft_t = sft_loss(lt, tt.labels)
    kl_t = sparse_kl(lt, tt.teacher_ids, tt.teacher_logprobs, tt.labels != IGNORE_INDEX)
    expect = 0.1 * (sft_i + 0.5 * kl_i) + 1.0 * (sft_t + 0.25 * kl_t)

    assert set(out.components) == set(COMPONENTS)
    for key, ref in zip(COMPONENTS, (sft_i, kl_i, sft_t, kl_t), strict=True):
        assert out.components[key].item() == pytest.approx(ref.item(), abs=1e-6)
        assert not out.components[key].requires_grad
    assert out.total.item() == pytest.approx(expect.item(), abs=1e-6)
    got = torch.autograd.grad(out.total, (li, lt))
    want = torch.autograd.grad(expect, (li, lt))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-7, rtol=1e-5)


def test_fusion_loss_skips_a_zero_weight_mode():
    torch.manual_seed(8)
    lt, tt = make_mode(5, seed=3)
    w = PhaseWeights(w1=0.0, w2=1.0, lam=0.1, beta=0.5)
    out = fusion_loss(None, ModeBatch(lt, tt), w)
    assert set(out.components) == {"sft_train", "kl_train"}

    # a batch passed for a zero-weight mode is ignored, not computed
    li, ti = make_mode(5, seed=4)
    out2 = fusion_loss(ModeBatch(li, ti), ModeBatch(lt, tt), w)
    assert "sft_infer" not in out2.components
    assert out2.total.item() == pytest.approx(out.total.item())
    assert li.grad is None
    out2.total.backward()
    assert li.grad is None


def test_fusion_loss_zero_kl_coefficient_logs_but_does_not_train_kl():
    torch.manual_seed(9)
    lt, tt = make_mode(5, seed=5)
    out = fusion_loss(None, ModeBatch(lt, tt), PhaseWeights(w1=0, w2=1, lam=0, beta=0))
    assert out.components["kl_train"].item() > 0
    assert out.total.item() == pytest.approx(out.components["sft_train"].item())
    (g,) = torch.autograd.grad(out.total, lt)
    (g_sft,) = torch.autograd.grad(sft_loss(lt, tt.labels), lt)
    torch.testing.assert_close(g, g_sft)

    no_teacher = ModeTargets(labels=tt.labels)
    out = fusion_loss(None, ModeBatch(lt, no_teacher), PhaseWeights(w1=0, w2=1, lam=0, beta=0))
    assert set(out.components) == {"sft_train"}


def test_fusion_loss_errors_are_clear():
    lt, tt = make_mode(5, seed=6)
    with pytest.raises(ValueError, match="no infer-mode batch"):
        fusion_loss(None, ModeBatch(lt, tt), PhaseWeights(w1=1, w2=1, lam=0.1, beta=0.5))
    with pytest.raises(ValueError, match="no teacher"):
        fusion_loss(None, ModeBatch(lt, ModeTargets(labels=tt.labels)), PhaseWeights(0, 1, 0, 0.5))
    with pytest.raises(ValueError, match="both mode weights are 0"):
        fusion_loss(None, None, PhaseWeights(0, 0, 0, 0))
    with pytest.raises(ValueError, match="denominators lack"):
        fusion_loss(None, ModeBatch(lt, tt), PhaseWeights(0, 1, 0, 0.5), {"sft_train": 3})
    with pytest.raises(ValueError, match=">= 0"):
        PhaseWeights(w1=-1, w2=1, lam=0, beta=0)


def test_fusion_loss_with_window_denominators_accumulates_to_full_batch():
    torch.manual_seed(10)
    li, ti = make_mode(6, seed=7)
    lt, tt = make_mode(8, seed=8)
    w = PhaseWeights(w1=0.1, w2=1.0, lam=0.5, beta=0.5)
    full = fusion_loss(ModeBatch(li, ti), ModeBatch(lt, tt), w)

    def part(t: ModeTargets, s: slice) -> ModeTargets:
        return ModeTargets(t.labels[s], t.teacher_ids[s], t.teacher_logprobs[s])

    chunks = [slice(0, 2), slice(2, 3)]
    window: dict[str, torch.Tensor] = {}
    for s in chunks:
        for key, n in fusion_counts(part(ti, s), part(tt, s)).items():
            window[key] = window.get(key, 0) + n
    total = 0.0
    comps = dict.fromkeys(COMPONENTS, 0.0)
    for s in chunks:
        out = fusion_loss(
            ModeBatch(li[s], part(ti, s)), ModeBatch(lt[s], part(tt, s)), w, denominators=window
        )
        total = total + out.total
        for key, value in out.components.items():
            comps[key] += value.item()
    assert total.item() == pytest.approx(full.total.item(), abs=1e-6)
    for key in COMPONENTS:
        assert comps[key] == pytest.approx(full.components[key].item(), abs=1e-6)
    got = torch.autograd.grad(total, (li, lt))
    want = torch.autograd.grad(full.total, (li, lt))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-7, rtol=1e-5)


def test_fusion_loss_accepts_a_schedule_phase_as_weights():
    from profuser.train.schedules import get_schedule

    lt, tt = make_mode(5, seed=9)
    li, ti = make_mode(5, seed=10)
    phase = get_schedule("profuser")[1]
    out = fusion_loss(ModeBatch(li, ti), ModeBatch(lt, tt), phase)
    ref = fusion_loss(ModeBatch(li, ti), ModeBatch(lt, tt), PhaseWeights(0.1, 1.0, 0.5, 0.5))
    assert out.total.item() == pytest.approx(ref.total.item())


def test_half_precision_logits_are_upcast():
    torch.manual_seed(11)
    logits = torch.randn(B, L, V).to(torch.bfloat16)
    ids, logprobs = make_teacher()
    mask = torch.ones(B, L, dtype=torch.bool)
    ours = sparse_kl(logits, ids, logprobs, mask)
    ref = dense_kl_reference(logits.float(), ids, logprobs, mask)
    assert ours.dtype == torch.float32
    assert ours.item() == pytest.approx(ref.item(), abs=1e-5)
