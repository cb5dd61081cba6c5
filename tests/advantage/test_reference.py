"""Reference scorer: BLEU/ROUGE match the libraries; BERTScore (the bert-score package) on
the tiny world's kind of encoder, a seeded random BERT, has BERTScore's properties."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("sacrebleu")
pytest.importorskip("rouge_score")

import sacrebleu  # noqa: E402
from rouge_score import rouge_scorer  # noqa: E402

from profuser.advantage.reference import (  # noqa: E402
    BertScorer,
    MissingExtraError,
    ReferenceScorer,
    bleu_scores,
    rouge_scores,
)
from profuser.advantage.selection import get_inference_rule  # noqa: E402
from profuser.world.encoder import save_encoder  # noqa: E402

WORDS = (
    "the a cat dog sat on mat ran in park paris is capital of france answer "
    "sum two plus three equals five seven sorted list and numbers".split()
)
PAIRS = [
    ("the cat sat on the mat", "the cat sat on the mat"),
    ("the dog ran in the park", "a cat sat on a mat"),
    ("paris is the capital of france", "the capital of france is paris"),
    ("two plus three equals five", "two plus three equals seven"),
]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory) -> str:
    """The tiny world's kind of BERTScore encoder (seeded random BERT), trained on WORDS."""
    texts = [" ".join(WORDS), *(t for pair in PAIRS for t in pair)]
    return str(save_encoder(tmp_path_factory.mktemp("tiny-bert"), texts))


@pytest.fixture(scope="module")
def scorer(bert_dir) -> ReferenceScorer:
    return ReferenceScorer(bert_dir)


def test_bleu_and_rouge_match_libraries():
    cands, refs = zip(*PAIRS, strict=True)
    expected_bleu = [sacrebleu.sentence_bleu(c, [r]).score / 100 for c, r in PAIRS]
    direct = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    expected_rouge = [direct.score(r, c)["rougeL"].fmeasure for c, r in PAIRS]
    np.testing.assert_allclose(bleu_scores(cands, refs), expected_bleu)
    np.testing.assert_allclose(rouge_scores(cands, refs), expected_rouge)


def test_bertscore_identical_is_one_symmetric_bounded(scorer):
    bert = scorer.bert
    same = bert.score(["the cat sat on the mat", "paris"], ["the cat sat on the mat", "paris"])
    np.testing.assert_allclose(same, 1.0, atol=1e-5)
    forward = bert.score(["the dog ran in the park"], ["a cat sat on a mat"])
    backward = bert.score(["a cat sat on a mat"], ["the dog ran in the park"])
    np.testing.assert_allclose(forward, backward, atol=1e-6)
    assert forward[0] < 1 - 1e-3
    assert bert.score([""], ["the cat"]).tolist() == [0.0]
    cands, refs = zip(*PAIRS, strict=True)
    every = bert.score(cands, refs)
    assert ((every >= 0) & (every <= 1 + 1e-6)).all()


def test_bertscore_unrelated_scores_lower(scorer):
    ref = "paris is the capital of france"
    close, far = scorer.bert.score(["the capital of france is paris", "two plus three"], [ref] * 2)
    assert 1 - 1e-5 > close > far


def test_bertscore_batching_does_not_change_scores(bert_dir):
    cands, refs = zip(*PAIRS, strict=True)
    one = BertScorer(bert_dir, batch_size=1).score(cands, refs)
    many = BertScorer(bert_dir, batch_size=16).score(cands, refs)
    np.testing.assert_allclose(one, many, atol=1e-5)


def test_combined_score_identical_high_disjoint_low(scorer):
    cands, refs = zip(*PAIRS, strict=True)
    parts = scorer.components(cands, refs)
    combined = scorer.score(cands, refs)
    np.testing.assert_allclose(combined, parts @ np.array([0.25, 0.25, 0.5]))
    np.testing.assert_allclose(combined[0], 1.0, atol=1e-5)
    assert parts[1, 0] < 0.05 and parts[1, 1] == 0.0  # disjoint: no n-gram overlap
    assert combined[1] < 0.5 < combined[0]
    assert combined[0] > combined[2] > combined[1]


def test_score_candidates_feeds_reference_rule(scorer):
    candidates = [
        ["the dog ran in the park", "the cat sat on the mat", None],
        [None, None, None],
    ]
    refs = ["the cat sat on the mat", "paris is the capital of france"]
    table = scorer.score_candidates(candidates, refs)
    assert table.shape == (2, 3)
    assert np.isnan(table[0, 2]) and np.isnan(table[1]).all()
    assert get_inference_rule("reference")(table, 0).winner.tolist() == [1, -1]


def test_missing_dependency_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sacrebleu", None)
    with pytest.raises(MissingExtraError, match=r"pip install sacrebleu"):
        bleu_scores(["a"], ["a"])
