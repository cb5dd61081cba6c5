"""The preference loop: its reference is the stored starting log-probs, the accumulation
split does not change the update, and an interrupted run resumes to the same weights."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from profuser.config import TrainConfig
from profuser.models.loading import load_causal_lm, load_tokenizer
from profuser.train.preference_data import pair_examples, response_logprobs
from profuser.train.preference_loop import train_preference
from profuser.train.schedules import get_schedule
from profuser.world.check import read_jsonl

PHASE = get_schedule("implicit")[-1]


def _pairs(world: Path, n: int = 8) -> tuple[list, object, str]:
    src = str(world / "models" / "vicuna-like")
    tok = load_tokenizer(src)
    rows = read_jsonl(world / "data" / "train.jsonl")[:n]
    pairs = [
        {
            "id": r["id"],
            "system": r["system_prompt"],
            "instruction": r["question"],
            "chosen": r["response"],
            "rejected": r["short"] + " maybe",
        }
        for r in rows
    ]
    items = [(p["system"], p["instruction"], p[s]) for p in pairs for s in ("chosen", "rejected")]
    vals = response_logprobs(load_causal_lm(src), tok, items, 512, 600)
    logps = {
        p["id"]: {"target/chosen": vals[2 * i], "target/rejected": vals[2 * i + 1]}
        for i, p in enumerate(pairs)
    }
    return pair_examples(tok, pairs, logps, [], "target"), tok, src


def _cfg(**kw) -> TrainConfig:
    base = dict(lr=1e-3, effective_batch=4, micro_batch=2, max_length=512, warmup_ratio=0.0)
    return TrainConfig(**{**base, "checkpoint_every": 1, **kw})


def _log(d: Path) -> list[dict]:
    with (d / "log.csv").open() as f:
        return list(csv.DictReader(f))


def test_the_first_step_starts_at_the_reference(mini_world: Path, tmp_path: Path) -> None:
    pex, tok, src = _pairs(mini_world)
    # batched by length or one at a time: the same log-probs
    one = response_logprobs(load_causal_lm(src), tok, [("", "q?", "an answer")], 512, 1)
    assert one[0] < 0 and math.isfinite(one[0])
    res = train_preference(load_causal_lm(src), tok, pex, PHASE, _cfg(), tmp_path / "a", seed=0)
    first = _log(tmp_path / "a")[0]
    # the policy is the reference at step 0: margin 0, loss log 2
    assert float(first["dpo"]) == pytest.approx(math.log(2), abs=1e-4)
    assert float(first["margin"]) == pytest.approx(0.0, abs=1e-3)
    assert res.steps == len(_log(tmp_path / "a")) == 2  # one epoch of 8 pairs, 4 a step
    assert float(_log(tmp_path / "a")[-1]["dpo"]) < math.log(2)


def test_resume_and_accumulation_give_the_same_weights(mini_world: Path, tmp_path: Path) -> None:
    pex, tok, src = _pairs(mini_world)
    phase = PHASE.model_copy(update={"epochs": 2})
    full = train_preference(load_causal_lm(src), tok, pex, phase, _cfg(), tmp_path / "f", seed=1)
    cut = tmp_path / "c"
    part = train_preference(load_causal_lm(src), tok, pex, phase, _cfg(), cut, seed=1, stop_after=2)
    assert not part.final_dir.exists()
    resumed = train_preference(load_causal_lm(src), tok, pex, phase, _cfg(), cut, seed=1)
    split = train_preference(
        load_causal_lm(src), tok, pex, phase, _cfg(micro_batch=4), tmp_path / "s", seed=1
    )
    a = load_file(str(full.final_dir / "model.safetensors"))
    for other in (resumed, split):
        b = load_file(str(other.final_dir / "model.safetensors"))
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
    assert len(_log(cut)) == len(_log(tmp_path / "f")) == full.steps == 4


def test_a_preference_phase_trains_lora_adapters(mini_world: Path, tmp_path: Path) -> None:
    from profuser.config import LoraOptions

    pex, tok, src = _pairs(mini_world, 4)
    cfg = _cfg(lora=LoraOptions(rank=4, alpha=8))
    res = train_preference(load_causal_lm(src), tok, pex, PHASE, cfg, tmp_path / "l", seed=0)
    assert (res.final_dir / "adapter").is_dir()
    merged = load_file(str(res.final_dir / "model.safetensors"))
    start = load_file(str(Path(src) / "model.safetensors"))
    assert any(not torch.equal(merged[k], start[k]) for k in start if k in merged)
