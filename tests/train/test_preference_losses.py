"""The preference losses against plain references written here, on hand-made numbers, and
their gradients on a tiny model against finite differences."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from profuser.train.losses import IGNORE_INDEX
from profuser.train.preference_losses import (
    dpo_loss,
    fused_dpo_loss,
    fused_reference,
    get_fuse_rule,
    sequence_logprobs,
)


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def _plain_dpo(pc, pr, rc, rr, beta, eps=0.0) -> float:
    out = []
    for a, b, c, d in zip(pc, pr, rc, rr, strict=True):
        z = beta * ((a - c) - (b - d))
        out.append(-(1 - eps) * _log_sigmoid(z) - eps * _log_sigmoid(-z))
    return sum(out) / len(out)


PC, PR = [-3.0, -5.0, -2.5], [-4.0, -4.5, -6.0]
RC, RR = [-3.5, -5.2, -2.0], [-3.8, -4.0, -6.5]


@pytest.mark.parametrize(("beta", "eps"), [(0.1, 0.0), (0.5, 0.0), (0.1, 0.2)])
def test_dpo_loss_matches_the_plain_formula(beta: float, eps: float) -> None:
    t = [torch.tensor(v, dtype=torch.float64) for v in (PC, PR, RC, RR)]
    got = dpo_loss(*t, beta=beta, label_smoothing=eps)
    assert got.loss.item() == pytest.approx(_plain_dpo(PC, PR, RC, RR, beta, eps), rel=1e-12)
    # margins: (−3 + 3.5) − (−4 + 3.8) = 0.7; (−5 + 5.2) − (−4.5 + 4) = 0.7; −0.5 − 0.5 = −1
    assert got.margins.tolist() == pytest.approx([0.7, 0.7, -1.0])
    assert got.accuracy.item() == pytest.approx(2 / 3)


def test_dpo_loss_refuses_bad_settings() -> None:
    t = [torch.zeros(2) for _ in range(4)]
    with pytest.raises(ValueError, match="beta must be > 0"):
        dpo_loss(*t, beta=0.0)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 0.5\)"):
        dpo_loss(*t, beta=0.1, label_smoothing=0.5)


def test_fused_reference_mean_max_clip_and_missing_sources() -> None:
    nan = float("nan")
    sources = torch.tensor([[-4.0, -2.0], [-9.0, -7.0], [nan, -3.0], [nan, nan]])
    target = torch.tensor([-5.0, -8.0, -6.0, -4.0])
    # mean: −3, −8, −3 (one source), the target's −4; clipped at target + 1: −4, −7, −5, −3
    assert fused_reference(sources, target, "mean", 1.0).tolist() == [-4.0, -8.0, -5.0, -4.0]
    assert fused_reference(sources, target, "max", 10.0).tolist() == [-2.0, -7.0, -3.0, -4.0]
    assert fused_reference(sources, target, "max", 0.0).tolist() == [-5.0, -8.0, -6.0, -4.0]
    with pytest.raises(ValueError, match="unknown reference rule 'median'; choose from mean, max"):
        get_fuse_rule("median")


def test_fused_dpo_is_dpo_against_the_clipped_fused_reference() -> None:
    pc, pr = torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -4.5])
    tc, tr = torch.tensor([-3.5, -5.0]), torch.tensor([-3.8, -4.0])
    sc = torch.tensor([[-2.0, -3.0], [-6.0, -4.0]])
    sr = torch.tensor([[-5.0, -4.0], [-3.0, -3.4]])
    got = fused_dpo_loss(pc, pr, tc, tr, sc, sr, beta=0.2, rule="mean", clip=0.5)
    # by hand: the mean, then min(·, target + 0.5): chosen −2.5 -> −3.0, −5.0 stays;
    # rejected −4.5 stays, −3.2 -> −3.5
    want = _plain_dpo([-3.0, -5.0], [-4.0, -4.5], [-3.0, -5.0], [-4.5, -3.5], 0.2)
    assert got.loss.item() == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="clip must be a finite number >= 0"):
        fused_dpo_loss(pc, pr, tc, tr, sc, sr, beta=0.2, clip=-1.0)


def test_sequence_logprobs_sums_the_labelled_tokens() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 7, dtype=torch.float64)
    labels = torch.tensor([[3, 1, IGNORE_INDEX, IGNORE_INDEX], [IGNORE_INDEX, 6, 0, 2]])
    got = sequence_logprobs(logits, labels)
    for b in range(2):
        want = 0.0
        for j in range(4):
            if labels[b, j] != IGNORE_INDEX:
                row = logits[b, j].tolist()
                norm = math.log(sum(math.exp(v) for v in row))
                want += row[int(labels[b, j])] - norm
        assert got[b].item() == pytest.approx(want, rel=1e-12)


def _tiny_model() -> GPT2LMHeadModel:
    # GPT-2, not Llama: Llama's RMSNorm computes in float32 whatever the model's dtype, which
    # leaves finite differences of the layers below it at float32 noise.
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=16, n_embd=8, n_layer=1, n_head=2, n_positions=16)
    return GPT2LMHeadModel(cfg).double().eval()


@pytest.mark.parametrize("fused", [False, True])
def test_gradients_on_a_tiny_model_match_finite_differences(fused: bool) -> None:
    model = _tiny_model()
    chosen = torch.tensor([[1, 2, 3, 4, 5], [1, 6, 7, 8, 9]])
    rejected = torch.tensor([[1, 2, 3, 10, 11], [1, 6, 12, 13, 14]])
    # the prompt is the first two tokens; labels are aligned to the logits
    labels_c = torch.full_like(chosen, IGNORE_INDEX)
    labels_c[:, 1:4] = chosen[:, 2:]
    labels_r = torch.full_like(rejected, IGNORE_INDEX)
    labels_r[:, 1:4] = rejected[:, 2:]
    ref = torch.tensor([-9.0, -8.0], dtype=torch.float64), torch.tensor([-7.5, -9.5]).double()
    src = (
        torch.tensor([[-8.0, -9.5], [-7.0, -8.0]]).double(),
        torch.tensor([[-8.0, -7.0], [-9.0, -10.0]]).double(),
    )

    def loss() -> torch.Tensor:
        pc = sequence_logprobs(model(chosen).logits, labels_c)
        pr = sequence_logprobs(model(rejected).logits, labels_r)
        if fused:
            return fused_dpo_loss(pc, pr, *ref, *src, beta=0.3, rule="max", clip=0.7).loss
        return dpo_loss(pc, pr, *ref, beta=0.3, label_smoothing=0.1).loss

    model.zero_grad()
    loss().backward()
    weight = model.transformer.h[0].mlp.c_proj.weight
    attn = model.transformer.h[0].attn.c_attn.weight
    h = 1e-6
    for param, idx in ((weight, (0, 1)), (weight, (13, 7)), (attn, (4, 2)), (attn, (5, 11))):
        with torch.no_grad():
            old = param[idx].item()
            param[idx] = old + h
            up = loss().item()
            param[idx] = old - h
            down = loss().item()
            param[idx] = old
        numeric = (up - down) / (2 * h)
        assert param.grad[idx].item() == pytest.approx(numeric, rel=1e-5, abs=1e-9)
