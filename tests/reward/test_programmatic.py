"""verifier and reference kinds: scorers without a reward network."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from profuser.advantage.reference import ReferenceScorer, bleu_scores, rouge_scores
from profuser.config import RewardModelConfig
from profuser.errors import UserError
from profuser.reward import LexicalScorer, RewardModel, load_reward_model
from profuser.reward import reference as reference_kind

pytest.importorskip("sacrebleu")
pytest.importorskip("rouge_score")


def refs_of(examples) -> list[dict]:
    return [e.to_dict() for e in examples]


def test_verifier(examples):
    rm = load_reward_model(RewardModelConfig(name="check", kind="verifier", strongest=True))
    assert isinstance(rm, RewardModel)
    prompts = [(e.system, e.instruction) for e in examples]
    ex = examples
    answers = [ex[0].short, ex[1].response, "no idea", f"The answer is {ex[3].answer}.", "x", None]
    refs = refs_of(examples)
    refs[4] = {"response": "no answer field"}
    got = rm.score(prompts, answers, refs)
    np.testing.assert_array_equal(got[:4], [1.0, 1.0, 0.0, 1.0])
    assert np.isnan(got[4]) and np.isnan(got[5]) and rm.failures == 2
    assert np.isnan(rm.score(prompts[:2], answers[:2])).all()  # no references at all
    with pytest.raises(ValueError, match="2 prompts but 1 answers"):
        rm.score(prompts[:2], answers[:1])


def test_reference_without_embedding_model_is_bleu_rouge(examples, caplog, monkeypatch):
    monkeypatch.setattr(reference_kind, "_warned_fallback", False)
    cfg = RewardModelConfig(name="ref", kind="reference")
    with caplog.at_level(logging.WARNING):
        rm = load_reward_model(cfg)
        load_reward_model(cfg)
    assert sum("0.5 BLEU + 0.5 ROUGE-L" in r.message for r in caplog.records) == 1  # once
    assert isinstance(rm.scorer, LexicalScorer)
    prompts = [(e.system, e.instruction) for e in examples]
    ex = examples
    answers = [ex[0].response, ex[1].short, ex[0].response, "", ex[4].short, ex[5].short]
    refs = refs_of(examples)
    refs[4] = {"answer": "7"}  # no GT response
    got = rm.score(prompts, answers, refs)
    gts = [r.get("response", "") for r in refs]
    want = 0.5 * bleu_scores(answers[:4], gts[:4]) + 0.5 * rouge_scores(answers[:4], gts[:4])
    np.testing.assert_allclose(got[:4], want)
    assert got[0] == pytest.approx(1.0) and got[2] < got[0]
    assert np.isnan(got[4]) and np.isfinite(got[5]) and rm.failures == 1


def test_reference_with_the_worlds_encoder(mini_world, tmp_path, examples):
    path = mini_world / "encoder" / "tiny-bert"
    rm = load_reward_model(RewardModelConfig(name="ref", kind="reference", path=str(path)))
    assert isinstance(rm.scorer, ReferenceScorer) and rm.scorer.weights == (0.25, 0.25, 0.5)
    prompts = [(e.system, e.instruction) for e in examples]
    gts = [e.response for e in examples]
    answers = [gts[0], examples[1].short, gts[1], "", *[e.short for e in examples[4:]]]
    got = rm.score(prompts, answers, refs_of(examples))
    assert np.isfinite(got).all() and rm.failures == 0
    assert ((got >= 0) & (got <= 1 + 1e-6)).all()
    assert got[0] == pytest.approx(1.0, abs=1e-5)  # the GT answer itself
    assert got[1] < got[0] and got[2] > got[1] and got[3] == 0.0
    lexical = 0.25 * bleu_scores(answers, gts) + 0.25 * rouge_scores(answers, gts)
    bert = (got - lexical) / 0.5  # the BERTScore part, by the weights
    assert ((bert >= 0) & (bert <= 1 + 1e-6)).all() and bert[0] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(UserError, match="not found"):
        load_reward_model(RewardModelConfig(name="ref", kind="reference", path=str(tmp_path / "x")))


def test_reference_row_failure_is_nan(examples, monkeypatch):
    rm = load_reward_model(RewardModelConfig(name="ref", kind="reference"))
    inner = rm.scorer.score

    def score(cands, refs):
        if any("BOOM" in c for c in cands):
            raise RuntimeError("scorer failed")
        return inner(cands, refs)

    monkeypatch.setattr(rm.scorer, "score", score)
    answers = [e.short for e in examples]
    answers[2] = "BOOM"
    got = rm.score([(None, e.instruction) for e in examples], answers, refs_of(examples))
    assert np.isnan(got[2]) and np.isfinite(np.delete(got, 2)).all() and rm.failures == 1


def test_reference_needs_the_score_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sacrebleu", None)  # import fails as if not installed
    with pytest.raises(UserError, match=r"pip install sacrebleu"):
        load_reward_model(RewardModelConfig(name="ref", kind="reference"))
