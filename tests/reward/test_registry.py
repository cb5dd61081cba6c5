"""The registry of reward-model kinds."""

from __future__ import annotations

import pytest

from profuser.config import RewardModelConfig
from profuser.errors import UserError
from profuser.reward import REWARD_KINDS, load_reward_model


def test_every_documented_kind_has_a_loader():
    # `kind` is any string at load; profuser.config_checks checks it against the registry,
    # which plugins extend (the tiny world adds `verifier`)
    assert RewardModelConfig.model_fields["kind"].default in REWARD_KINDS
    assert {"seq_cls", "custom_code", "value_head", "reference", "verifier"} <= set(REWARD_KINDS)


def test_unknown_kind_is_a_user_error():
    cfg = RewardModelConfig.model_construct(name="odd", kind="oracle", path=None)
    with pytest.raises(UserError, match="unknown kind 'oracle'; choose one of custom_code"):
        load_reward_model(cfg)


def test_model_kinds_need_a_path():
    for kind in ("seq_cls", "custom_code", "value_head"):
        with pytest.raises(ValueError, match="needs a path"):
            RewardModelConfig(name="x", kind=kind)
