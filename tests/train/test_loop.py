from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from profuser.config import TrainConfig
from profuser.models.loading import load_causal_lm, load_tokenizer
from profuser.train.examples import FusionExample, collate, make_sequence
from profuser.train.loop import train_fusion
from profuser.train.losses import IGNORE_INDEX
from profuser.train.schedules import get_schedule
from profuser.world.check import read_jsonl


def _teacher(n: int, vocab: int, rng: np.random.Generator, k: int = 4):
    ids = np.stack([rng.choice(vocab, size=k, replace=False) for _ in range(n)])
    lps = np.log(rng.dirichlet(np.ones(k), size=n)).astype(np.float32)
    ids[:, -1] = -1  # one empty slot everywhere
    lps[:, -1] = -np.inf
    return ids, lps


def _examples(world: Path, n: int = 12) -> tuple[list[FusionExample], object]:
    d = world / "models" / "vicuna-like"
    tok = load_tokenizer(str(d))
    rng = np.random.default_rng(0)
    out = []
    for r in read_jsonl(world / "data" / "train.jsonl")[:n]:
        gt = make_sequence(tok, r["system_prompt"], r["question"], r["response"], None)
        gt = make_sequence(
            tok,
            r["system_prompt"],
            r["question"],
            r["response"],
            _teacher(len(gt.answer_ids), len(tok), rng),
        )
        ans = r["short"]
        inf = make_sequence(tok, r["system_prompt"], r["question"], ans, None)
        inf = make_sequence(
            tok,
            r["system_prompt"],
            r["question"],
            ans,
            _teacher(len(inf.answer_ids), len(tok), rng),
        )
        out.append(FusionExample(r["id"], len(r["response"]), gt, inf))
    return out, tok


def test_collate_aligns_labels_and_teachers_to_logits(mini_world: Path) -> None:
    exs, tok = _examples(mini_world, 3)
    batch = collate([e.train for e in exs], tok.pad_token_id, 2048, k=4)
    for r, e in enumerate(exs):
        p, n = len(e.train.prompt_ids), len(e.train.answer_ids)
        lab = batch.targets.labels[r]
        assert (lab[: p - 1] == IGNORE_INDEX).all()
        assert lab[p - 1 : p - 1 + n].tolist() == e.train.answer_ids
        assert torch.equal(
            batch.targets.teacher_ids[r, p - 1 : p - 1 + n], torch.from_numpy(e.train.teacher_ids)
        )
        assert (batch.targets.teacher_ids[r, p - 1 + n :] == -1).all()


def _weights(d: Path) -> dict:
    return load_file(str(d / "model.safetensors"))


def _cfg(**kw) -> TrainConfig:
    base = dict(
        lr=1e-3,
        effective_batch=4,
        micro_batch=2,
        max_length=512,
        warmup_ratio=0.0,
        checkpoint_every=2,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_resume_gives_the_same_final_weights(mini_world: Path, tmp_path: Path) -> None:
    exs, tok = _examples(mini_world)
    phases = get_schedule("profuser")
    src = str(mini_world / "models" / "vicuna-like")
    full = train_fusion(
        load_causal_lm(src), tok, exs, phases, _cfg(), tmp_path / "full", seed=1, k=4
    )
    part = train_fusion(
        load_causal_lm(src), tok, exs, phases, _cfg(), tmp_path / "cut", seed=1, k=4, stop_after=5
    )
    assert not part.final_dir.exists()
    resumed = train_fusion(
        load_causal_lm(src), tok, exs, phases, _cfg(), tmp_path / "cut", seed=1, k=4
    )
    assert resumed.steps == full.steps
    a, b = _weights(full.final_dir), _weights(resumed.final_dir)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    log_full = (tmp_path / "full" / "log.csv").read_text().splitlines()
    log_cut = (tmp_path / "cut" / "log.csv").read_text().splitlines()
    assert len(log_full) == len(log_cut) == full.steps + 1
    # the final model loads through the Auto classes with its chat template
    reloaded = load_tokenizer(str(resumed.final_dir))
    assert reloaded.chat_template == tok.chat_template


def test_gradient_accumulation_split_does_not_change_the_update(
    mini_world: Path, tmp_path: Path
) -> None:
    exs, tok = _examples(mini_world, 8)
    phases = get_schedule("simulfuse")
    src = str(mini_world / "models" / "vicuna-like")
    one = train_fusion(
        load_causal_lm(src),
        tok,
        exs,
        phases,
        _cfg(micro_batch=4),
        tmp_path / "a",
        seed=2,
        k=4,
        stop_after=None,
    )
    four = train_fusion(
        load_causal_lm(src), tok, exs, phases, _cfg(micro_batch=1), tmp_path / "b", seed=2, k=4
    )
    a, b = _weights(one.final_dir), _weights(four.final_dir)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_loss_components_logged_per_phase(mini_world: Path, tmp_path: Path) -> None:
    exs, tok = _examples(mini_world, 8)
    src = str(mini_world / "models" / "vicuna-like")
    train_fusion(
        load_causal_lm(src), tok, exs, get_schedule("profuser"), _cfg(), tmp_path / "p", seed=0, k=4
    )
    import csv

    rows = list(csv.DictReader((tmp_path / "p" / "log.csv").open()))
    assert list((tmp_path / "p" / "tensorboard").glob("events.out.tfevents.*")), (
        "TensorBoard events written"
    )
    first = [r for r in rows if r["phase"] == rows[0]["phase"]]
    last = [r for r in rows if r["phase"] == rows[-1]["phase"]]
    assert all(float(r["sft_infer"]) > 0 and float(r["sft_train"]) == 0 for r in first)
    assert all(
        float(r["sft_infer"]) > 0 and float(r["sft_train"]) > 0 and float(r["kl_train"]) > 0
        for r in last
    )


def test_logits_from_the_first_answer_position_give_the_full_loss_and_gradient(
    mini_world: Path,
) -> None:
    from accelerate import Accelerator

    from profuser.train.loop import _first_counted, _forward, _keeps_logits
    from profuser.train.losses import ModeBatch, PhaseWeights, fusion_loss

    exs, tok = _examples(mini_world, 4)
    src = str(mini_world / "models" / "vicuna-like")
    weights = PhaseWeights(0.5, 1.0, 0.3, 0.7)
    infer = collate([e.infer for e in exs], tok.pad_token_id, 2048, k=4)
    train = collate([e.train for e in exs], tok.pad_token_id, 2048, k=4)
    start = _first_counted(train.targets)
    assert start == min(len(e.train.prompt_ids) for e in exs) - 1 > 0  # the prompts are cut

    def loss_and_grads(trimmed: bool) -> tuple[torch.Tensor, dict]:
        torch.manual_seed(0)
        model = load_causal_lm(src)
        if trimmed:
            assert _keeps_logits(model)
            ib, tb = (_forward(model, b, Accelerator(cpu=True), True) for b in (infer, train))
            assert tb.logits.shape[1] == train.input_ids.shape[1] - start
        else:  # every position's logits, as a plain forward gives them
            ib, tb = (
                ModeBatch(
                    model(input_ids=b.input_ids, attention_mask=b.attention_mask).logits, b.targets
                )
                for b in (infer, train)
            )
        res = fusion_loss(ib, tb, weights)
        res.total.backward()
        return res.total.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    full, g_full = loss_and_grads(False)
    cut, g_cut = loss_and_grads(True)
    torch.testing.assert_close(cut, full, rtol=1e-5, atol=1e-6)
    for name, g in g_full.items():
        torch.testing.assert_close(g_cut[name], g, rtol=1e-4, atol=1e-6)
