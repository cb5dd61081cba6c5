"""seq_cls: any one-output AutoModelForSequenceClassification (FsfairX-LLaMA3-RM's structure)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForSequenceClassification

from profuser.config import RewardModelConfig
from profuser.errors import UserError
from profuser.reward import REWARD_KINDS, RewardModel, SeqClsRewardModel, load_reward_model
from tests.reward.helpers import POISON, make_tokenizer, poison_rows, prompts_answers, save_dir
from tests.tiny import TINY_DECODER


def tiny_llama_cls(tok, num_labels: int = 1, max_pos: int = 256) -> LlamaForSequenceClassification:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        **TINY_DECODER,
        max_position_embeddings=max_pos,
        num_labels=num_labels,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return LlamaForSequenceClassification(cfg)


@pytest.fixture(scope="module")
def rm_dir(tmp_path_factory, world_texts):
    tok = make_tokenizer(world_texts, "chatml")
    return save_dir(tmp_path_factory.mktemp("fsfairx-like"), tiny_llama_cls(tok), tok)


def load(path, batch_size: int | None = None, **kw) -> SeqClsRewardModel:
    cfg = RewardModelConfig(name="rm", kind="seq_cls", path=str(path), **kw)
    return load_reward_model(cfg, batch_size=batch_size)


def test_scores_shape_finite_deterministic(rm_dir, examples):
    rm = load(rm_dir)
    assert isinstance(rm, RewardModel) and REWARD_KINDS["seq_cls"]
    prompts, answers = prompts_answers(examples)
    first = rm.score(prompts, answers)
    assert first.shape == (len(examples),) and first.dtype == np.float64
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, rm.score(prompts, answers))
    assert len(set(first.round(6))) > 1  # the answer matters
    assert rm.failures == 0


def test_batched_equals_one_at_a_time(rm_dir, examples):
    prompts, answers = prompts_answers(examples)
    batched = load_reward_model(
        RewardModelConfig(name="rm", kind="seq_cls", path=str(rm_dir)), batch_size=4
    ).score(prompts, answers)
    single = load_reward_model(
        RewardModelConfig(name="rm", kind="seq_cls", path=str(rm_dir)), batch_size=1
    ).score(prompts, answers)
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_score_equals_model_on_rendered_chat(rm_dir, examples):
    rm = load(rm_dir)
    e = examples[0]
    msgs = [
        {"role": "system", "content": e.system},
        {"role": "user", "content": e.instruction},
        {"role": "assistant", "content": e.short},
    ]
    text = rm.tokenizer.apply_chat_template(msgs, tokenize=False)
    ids = torch.tensor([rm.tokenizer(text)["input_ids"]])
    with torch.no_grad():
        want = rm.model(input_ids=ids).logits[0, 0].item()
    assert rm.score([(e.system, e.instruction)], [e.short])[0] == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize("mode", ["nan", "raise"])
def test_one_bad_row_is_nan_not_an_error(rm_dir, examples, mode):
    rm = load(rm_dir, batch_size=8)
    prompts, answers = prompts_answers(examples)
    clean = rm.score(prompts, answers)
    poison_rows(rm.model, rm.tokenizer.convert_tokens_to_ids(POISON), mode)
    bad = list(answers)
    bad[2] = f"{answers[2]} {POISON}"
    got = rm.score(prompts, bad)
    assert np.isnan(got[2])
    keep = [i for i in range(len(bad)) if i != 2]
    np.testing.assert_allclose(got[keep], clean[keep], atol=1e-5)
    assert rm.failures == 1


def test_missing_answer_is_nan(rm_dir, examples):
    rm = load(rm_dir)
    prompts, answers = prompts_answers(examples)
    answers[0] = None
    got = rm.score(prompts, answers)
    assert np.isnan(got[0]) and np.isfinite(got[1:]).all() and rm.failures == 1


def test_long_rows_are_truncated_to_the_model(tmp_path, world_texts, examples):
    tok = make_tokenizer(world_texts, "chatml")
    rm = load(save_dir(tmp_path, tiny_llama_cls(tok, max_pos=48), tok))
    assert rm.max_length == 48
    got = rm.score([(None, examples[0].instruction)], [" ".join([examples[0].response] * 20)])
    assert np.isfinite(got).all()


def test_pad_token_missing_from_config(tmp_path, world_texts, examples):
    tok = make_tokenizer(world_texts, "chatml")
    path = save_dir(tmp_path, tiny_llama_cls(tok), tok)
    cfg = json.loads((path / "config.json").read_text())
    cfg["pad_token_id"] = None
    (path / "config.json").write_text(json.dumps(cfg))
    rm = load(path, batch_size=4)
    assert rm.model.config.pad_token_id == tok.pad_token_id
    prompts, answers = prompts_answers(examples)
    assert np.isfinite(rm.score(prompts, answers)).all()


def test_named_template_when_tokenizer_has_none(tmp_path, world_texts, examples):
    tok = make_tokenizer(world_texts, None)
    path = save_dir(tmp_path, tiny_llama_cls(tok), tok)
    with pytest.raises(UserError, match="no chat template; set chat_template"):
        load(path)
    with pytest.raises(UserError, match="unknown chat template 'nope'"):
        load(path, chat_template="nope")
    rm = load(path, chat_template="llama-2")
    assert "[INST]" in rm.render("sys", "hi", "there")
    assert np.isfinite(rm.score(*prompts_answers(examples))).all()


def test_errors(tmp_path, world_texts):
    with pytest.raises(UserError, match="not found"):
        load(tmp_path / "missing")
    tok = make_tokenizer(world_texts, "chatml")
    two = save_dir(tmp_path / "two", tiny_llama_cls(tok, num_labels=2), tok)
    with pytest.raises(UserError, match="has 2 outputs"):
        load(two)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="cannot load a tokenizer"):
        load(tmp_path / "empty")


NO_SYSTEM = (
    "{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('system role not supported') }}{% endif %}"
    "{{ '[' + m['role'] + '] ' + m['content'] + ' ' }}{% endfor %}"
)


def test_template_without_system_role_gets_it_folded_into_the_user_turn(tmp_path, world_texts):
    tok = make_tokenizer(world_texts, None)
    tok.chat_template = NO_SYSTEM
    rm = load(save_dir(tmp_path, tiny_llama_cls(tok), tok))
    assert rm.render("Be brief.", "What is 2 + 2?", "4") == (
        "[user] Be brief.\n\nWhat is 2 + 2? [assistant] 4 "
    )
    assert rm.render(None, "What is 2 + 2?", "4") == "[user] What is 2 + 2? [assistant] 4 "
    assert np.isfinite(rm.score([("Be brief.", "What is 2 + 2?")], ["4"])).all()
