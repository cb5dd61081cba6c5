"""value_head: an AutoModel body plus a v_head from a state dict (Starling-RM-7B-alpha)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaModel

from profuser.config import RewardModelConfig
from profuser.errors import UserError
from profuser.reward import ValueHeadRewardModel, load_reward_model
from tests.reward.helpers import POISON, make_tokenizer, poison_rows, prompts_answers, save_dir

HIDDEN = 32


def tiny_body(tok, seed: int) -> LlamaModel:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,  # no row is truncated
        pad_token_id=tok.pad_token_id,
    )
    return LlamaModel(cfg)


@pytest.fixture(scope="module")
def tok(world_texts):
    return make_tokenizer(world_texts, "llama-2")


@pytest.fixture(scope="module")
def body_dir(tmp_path_factory, tok):
    return save_dir(tmp_path_factory.mktemp("starling-like"), tiny_body(tok, 0), tok)


HEAD = {"v_head.weight": torch.linspace(-1, 1, HIDDEN)[None, :]}  # [1, hidden], no bias


def load(path, head_file, batch_size=None) -> ValueHeadRewardModel:
    cfg = RewardModelConfig(
        name="starling", kind="value_head", path=str(path), value_head_file=str(head_file)
    )
    return load_reward_model(cfg, batch_size=batch_size)


def manual(body: LlamaModel, tok, head: torch.Tensor, text: str, bias: float = 0.0) -> float:
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        hidden = body(input_ids=ids).last_hidden_state[0, -1]  # [hidden]
    return float(hidden @ head[0] + bias)


def test_head_only_file(body_dir, tok, examples, tmp_path):
    torch.save(HEAD, tmp_path / "v_head.pt")
    rm = load(body_dir, tmp_path / "v_head.pt", batch_size=4)
    prompts, answers = prompts_answers(examples)
    got = rm.score(prompts, answers)
    assert got.shape == (len(examples),) and np.isfinite(got).all()
    np.testing.assert_array_equal(got, rm.score(prompts, answers))
    body = tiny_body(tok, 0)
    for i in (0, 1):
        text = rm.render(*prompts[i], answers[i])
        assert got[i] == pytest.approx(manual(body, tok, HEAD["v_head.weight"], text), abs=1e-4)
    single = load(body_dir, tmp_path / "v_head.pt", batch_size=1).score(prompts, answers)
    np.testing.assert_allclose(got, single, atol=1e-5)


def test_prefixed_head_with_bias_relative_to_model_dir(body_dir, examples):
    head = {"model.v_head.weight": HEAD["v_head.weight"], "model.v_head.bias": torch.tensor([2.0])}
    save_file(head, body_dir / "head.safetensors")
    plain_dir = body_dir / "plain.pt"
    torch.save(HEAD, plain_dir)
    prompts, answers = prompts_answers(examples)
    with_bias = load(body_dir, "head.safetensors").score(prompts, answers)
    plain = load(body_dir, "plain.pt").score(prompts, answers)
    np.testing.assert_allclose(with_bias, plain + 2.0, atol=1e-5)


def test_body_weights_in_the_file_replace_the_body(body_dir, tok, examples, tmp_path):
    # Starling's file holds the fine-tuned body as transformer.* next to v_head.*
    tuned = tiny_body(tok, 7)
    sd = {f"transformer.{k}": v for k, v in tuned.state_dict().items()} | HEAD
    torch.save(sd, tmp_path / "pytorch_model.bin")
    rm = load(body_dir, tmp_path / "pytorch_model.bin")
    e = examples[0]
    text = rm.render(e.system, e.instruction, e.short)
    want = manual(tuned, tok, HEAD["v_head.weight"], text)
    assert rm.score([(e.system, e.instruction)], [e.short])[0] == pytest.approx(want, abs=1e-4)
    partial = dict(list(sd.items())[:5]) | HEAD
    torch.save(partial, tmp_path / "partial.bin")
    with pytest.raises(UserError, match="holds only 5 of the body's"):
        load(body_dir, tmp_path / "partial.bin")


def test_nan_row(body_dir, tok, examples, tmp_path):
    torch.save(HEAD, tmp_path / "v_head.pt")
    rm = load(body_dir, tmp_path / "v_head.pt", batch_size=8)
    poison_rows(rm.body, tok.convert_tokens_to_ids(POISON))
    prompts, answers = prompts_answers(examples)
    answers[0] = f"{POISON} {answers[0]}"
    got = rm.score(prompts, answers)
    assert np.isnan(got[0]) and np.isfinite(got[1:]).all() and rm.failures == 1


def test_errors(body_dir, tmp_path):
    with pytest.raises(UserError, match="value_head_file 'nope.pt' not found"):
        load(body_dir, "nope.pt")
    cfg = RewardModelConfig(name="starling", kind="value_head", path=str(body_dir))
    with pytest.raises(UserError, match="needs value_head_file"):
        load_reward_model(cfg)
    torch.save({"score.weight": torch.zeros(1, HIDDEN)}, tmp_path / "nohead.pt")
    with pytest.raises(UserError, match="no key ending in 'v_head.weight'"):
        load(body_dir, tmp_path / "nohead.pt")
    torch.save({"v_head.weight": torch.zeros(2, HIDDEN)}, tmp_path / "two.pt")
    with pytest.raises(UserError, match="has 2 outputs"):
        load(body_dir, tmp_path / "two.pt")
    torch.save({"v_head.weight": torch.zeros(1, HIDDEN + 1)}, tmp_path / "wide.pt")
    with pytest.raises(UserError, match="expects hidden size 33"):
        load(body_dir, tmp_path / "wide.pt")
    (tmp_path / "junk.bin").write_bytes(b"not a state dict")
    with pytest.raises(UserError, match="cannot load a state dict"):
        load(body_dir, tmp_path / "junk.bin")
