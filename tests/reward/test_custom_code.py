"""custom_code: a model with its own modeling file, loaded with trust_remote_code (Eurus-RM-7b)."""

from __future__ import annotations

import importlib.util
import json
import sys
import types

import numpy as np
import pytest
import torch

from profuser.config import RewardModelConfig
from profuser.errors import UserError
from profuser.reward import CustomCodeRewardModel, load_reward_model
from profuser.reward.hf import reward_tensor
from tests.reward.helpers import POISON, make_tokenizer, poison_rows, prompts_answers, save_dir
from tests.tiny import TINY_DECODER

# Eurus-RM-7b's structure: a decoder body, a linear regression head, and a forward that
# returns the reward at each row's last real token, [batch, 1].
MODELING = """
import torch
from torch import nn
from transformers import LlamaConfig, LlamaModel, PreTrainedModel


class TinyEurusConfig(LlamaConfig):
    model_type = "tiny_eurus_rm"


class TinyEurusRewardModel(PreTrainedModel):
    config_class = TinyEurusConfig
    base_model_prefix = "model"

    def __init__(self, config):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.regression_head = nn.Linear(config.hidden_size, 1, bias=False)
        self.post_init()

    def forward(self, input_ids, attention_mask=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.model(input_ids, attention_mask=attention_mask).last_hidden_state
        rewards = self.regression_head(hidden).squeeze(-1)  # [b, L]
        ends = attention_mask.cumsum(dim=1).argmax(dim=1).view(-1, 1)  # [b, 1]
        return torch.gather(rewards, 1, ends)  # [b, 1]
"""


def _import(path):
    spec = importlib.util.spec_from_file_location("tiny_eurus_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def eurus_dir(tmp_path_factory, world_texts):
    path = tmp_path_factory.mktemp("eurus-like")
    (path / "modeling_tiny_eurus.py").write_text(MODELING)
    mod = _import(path / "modeling_tiny_eurus.py")
    tok = make_tokenizer(world_texts, None)  # like Eurus: name the template in the config
    torch.manual_seed(1)
    cfg = mod.TinyEurusConfig(
        vocab_size=len(tok),
        **TINY_DECODER,
        max_position_embeddings=256,
        pad_token_id=tok.pad_token_id,
    )
    save_dir(path, mod.TinyEurusRewardModel(cfg), tok)
    config = json.loads((path / "config.json").read_text())
    config["auto_map"] = {
        "AutoConfig": "modeling_tiny_eurus.TinyEurusConfig",
        "AutoModel": "modeling_tiny_eurus.TinyEurusRewardModel",
    }
    (path / "config.json").write_text(json.dumps(config))
    return path


def load(path, batch_size=None) -> CustomCodeRewardModel:
    cfg = RewardModelConfig(
        name="eurus", kind="custom_code", path=str(path), chat_template="llama-2"
    )
    return load_reward_model(cfg, batch_size=batch_size)


def test_loads_remote_code_and_scores(eurus_dir, examples):
    rm = load(eurus_dir, batch_size=4)
    assert type(rm.model).__name__ == "TinyEurusRewardModel"
    assert type(rm.model).__module__.startswith("transformers_modules")  # from the directory
    prompts, answers = prompts_answers(examples)
    got = rm.score(prompts, answers)
    assert got.shape == (len(examples),) and np.isfinite(got).all()
    np.testing.assert_array_equal(got, rm.score(prompts, answers))
    single = load(eurus_dir, batch_size=1).score(prompts, answers)
    np.testing.assert_allclose(got, single, atol=1e-5)


def test_score_is_the_models_own_output(eurus_dir, examples):
    rm = load(eurus_dir)
    e = examples[0]
    text = rm.render(e.system, e.instruction, e.short)
    assert text.startswith("<s>[INST] <<SYS>>")  # the named llama-2 template
    ids = torch.tensor([rm.encode(text)])
    with torch.no_grad():
        want = rm.model(input_ids=ids)[0, 0].item()
    assert rm.score([(e.system, e.instruction)], [e.short])[0] == pytest.approx(want, abs=1e-5)


def test_nan_row(eurus_dir, examples):
    rm = load(eurus_dir, batch_size=8)
    prompts, answers = prompts_answers(examples)
    poison_rows(rm.model, rm.tokenizer.convert_tokens_to_ids(POISON))
    answers[3] = POISON
    got = rm.score(prompts, answers)
    assert np.isnan(got[3]) and np.isfinite(np.delete(got, 3)).all() and rm.failures == 1


def test_wrong_number_of_outputs_is_a_user_error(eurus_dir, examples):
    rm = load(eurus_dir)
    rm.model.forward = lambda input_ids, attention_mask: torch.zeros(input_ids.shape[0], 3)
    with pytest.raises(UserError, match="exactly one output"):
        rm.score(*prompts_answers(examples))


def test_no_auto_map_is_a_user_error(tmp_path, eurus_dir):
    for f in eurus_dir.iterdir():
        if f.is_file():
            (tmp_path / f.name).write_bytes(f.read_bytes())
    config = json.loads((tmp_path / "config.json").read_text())
    del config["auto_map"]
    config["model_type"] = "llama"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="maps no custom model class"):
        load(tmp_path)


def test_reward_tensor_accepts_common_outputs():
    r = torch.tensor([1.0, 2.0])
    for out in (r, r[:, None], (r[:, None], None), {"rewards": r}, types.SimpleNamespace(logits=r)):
        torch.testing.assert_close(reward_tensor(out, 2, "x"), r)
    torch.testing.assert_close(reward_tensor(torch.tensor(3.0), 1, "x"), torch.tensor([3.0]))
    with pytest.raises(UserError, match="not a reward tensor"):
        reward_tensor("nope", 2, "x")
    with pytest.raises(UserError, match=r"got shape \[2, 2\]"):
        reward_tensor(torch.zeros(2, 2), 2, "x")
