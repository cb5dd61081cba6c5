"""Pairing rules on hand-made candidates."""

from __future__ import annotations

import math

import pytest

from profuser.advantage.pairing import (
    PAIRING_RULES,
    Candidate,
    get_pairing_rule,
    needs_samples,
    register_pairing_rule,
)

NAN = math.nan


def _c(source: str, sample: int, score: float, answer: str | None = None) -> Candidate:
    return Candidate(source, sample, answer if answer is not None else f"{source}-{sample}", score)


CANDS = [
    _c("a", 0, 0.9),
    _c("a", 1, 0.2),
    _c("b", 0, 0.95),
    _c("b", 1, 0.9),
    _c("c", 0, 0.1),
    _c("c", 1, NAN),
]


def test_intra_source_pairs_within_the_strongest_source() -> None:
    pair = get_pairing_rule("intra_source")(CANDS, 0.0)
    # b's best (0.95) is the highest best of a source with a pair: b's own pair, gap 0.05
    assert (pair.chosen.source, pair.chosen.sample) == ("b", 0)
    assert (pair.rejected.source, pair.rejected.sample) == ("b", 1)
    assert pair.margin == pytest.approx(0.05)
    # a margin of 0.1 rules b's pair out: a's, gap 0.7
    pair = get_pairing_rule("intra_source")(CANDS, 0.1)
    assert (pair.chosen.answer, pair.rejected.answer) == ("a-0", "a-1")
    assert get_pairing_rule("intra_source")(CANDS, 0.8) is None


def test_cross_source_pairs_the_best_and_worst_of_all() -> None:
    pair = get_pairing_rule("cross_source")(CANDS, 0.0)
    assert (pair.chosen.answer, pair.rejected.answer) == ("b-0", "c-0")  # NaN never takes part
    assert get_pairing_rule("cross_source")(CANDS, 0.9) is None


def test_ties_empty_answers_and_equal_texts_give_no_pair() -> None:
    intra = get_pairing_rule("intra_source")
    assert intra([_c("a", 0, 0.5), _c("a", 1, 0.5)], 0.0) is None  # no gap
    assert intra([_c("a", 0, 0.9), _c("a", 1, 0.1, answer="  ")], 0.0) is None  # empty
    assert intra([_c("a", 0, 0.9, "x"), _c("a", 1, 0.1, "x")], 0.0) is None  # one text
    assert intra([_c("a", 0, 0.9)], 0.0) is None


def test_registry_names_the_rules_and_the_samples_they_need() -> None:
    with pytest.raises(ValueError, match="unknown pairing rule 'best'; choose from intra_source"):
        get_pairing_rule("best")
    with pytest.raises(ValueError, match="already registered"):
        register_pairing_rule("intra_source")(lambda c, m: None)
    assert {"intra_source", "cross_source"} <= set(PAIRING_RULES)
    assert needs_samples("intra_source") == 2 and needs_samples("cross_source") == 1
