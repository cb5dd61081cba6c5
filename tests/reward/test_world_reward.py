"""The tiny world's trained RM: seeded, loadable like a hub RM, and better than chance."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from profuser.config import RewardModelConfig
from profuser.reward import SeqClsRewardModel, load_reward_model
from profuser.world.answers import is_correct
from profuser.world.reward import heldout_pairs, make_pairs, train_world_reward_model
from profuser.world.skills import generate_examples


@pytest.fixture(scope="module")
def world_rm(tmp_path_factory, world_texts):
    return train_world_reward_model(tmp_path_factory.mktemp("world-rm"), world_texts, seed=0)


def test_pairs_are_correct_versus_wrong():
    exs = generate_examples(200, 5, "rm-test-pairs")
    pairs = make_pairs(exs, 5)
    assert pairs == make_pairs(exs, 5)
    for p in pairs:
        assert p.chosen != p.rejected
        assert is_correct(p.chosen, p.example.answer)
        assert not is_correct(p.rejected, p.example.answer)
    short = [p for p in pairs if p.chosen == p.example.short]
    assert 0.3 < len(short) / len(pairs) < 0.7  # both formats occur
    lengths = [(len(p.chosen) > 30) != (len(p.rejected) > 30) for p in pairs]
    assert 0.1 < np.mean(lengths) < 0.4  # some pairs mix the formats


def test_same_seed_same_weights(tmp_path, world_texts):
    def weights(path):
        return load_file(path / "model.safetensors")

    a = weights(train_world_reward_model(tmp_path / "a", world_texts, seed=3, steps=3))
    b = weights(train_world_reward_model(tmp_path / "b", world_texts, seed=3, steps=3))
    c = weights(train_world_reward_model(tmp_path / "c", world_texts, seed=4, steps=3))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_loads_as_a_sequence_classifier(world_rm):
    model = AutoModelForSequenceClassification.from_pretrained(world_rm)
    assert model.config.num_labels == 1
    log = json.loads((world_rm / "training_log.json").read_text())
    assert log["steps"] == len(log["losses"])
    assert np.mean(log["losses"][-50:]) < np.mean(log["losses"][:50]) - 0.2


def test_scores_heldout_correct_answers_above_wrong_ones(world_rm):
    rm = load_reward_model(
        RewardModelConfig(name="rm", kind="seq_cls", path=str(world_rm)), device="cpu"
    )
    assert isinstance(rm, SeqClsRewardModel)
    pairs = heldout_pairs(200, 1)
    prompts = [p.prompt for p in pairs]
    chosen = rm.score(prompts, [p.chosen for p in pairs])
    rejected = rm.score(prompts, [p.rejected for p in pairs])
    assert np.isfinite(chosen).all() and np.isfinite(rejected).all()
    accuracy = float(np.mean(chosen > rejected))
    # Measured 0.81 for seed 0 (0.795-0.81 over seeds 0-2); chance is 0.5.
    assert accuracy > 0.72, accuracy
    one_by_one = load_reward_model(
        RewardModelConfig(name="rm", kind="seq_cls", path=str(world_rm)), batch_size=1
    ).score(prompts[:10], [p.chosen for p in pairs[:10]])
    np.testing.assert_allclose(one_by_one, chosen[:10], atol=1e-5)  # padding changes nothing
