"""Tokenizers without offset mappings: spans recovered from token strings alone."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hypothesis import given, settings

from profuser.align import TokenAligner
from profuser.align.chars import TextIndex
from profuser.align.dtw import dtw_align, edit_distance
from profuser.align.spans import exact_anchors
from tests.align.conftest import KINDS, UNICODE_LINES, SlowLike, world_texts
from tests.align.strategies import texts

EXACT_KINDS = ("byte_bpe", "metaspace_bpe")  # byte-exact tokenizers: no offsets needed


@pytest.fixture(scope="module")
def slow(tokenizers):
    return {k: SlowLike(t) for k, t in tokenizers.items()}


def test_slow_like_has_no_offsets(slow):
    tok = slow["byte_bpe"]
    with pytest.raises(NotImplementedError):
        tok("abc", return_offsets_mapping=True)
    al = TokenAligner(tok, slow["wordpiece"])
    assert not al.source_offsets and not al.target_offsets


@pytest.mark.parametrize(
    "pair",
    list(itertools.permutations(EXACT_KINDS, 2)) + [(k, k) for k in EXACT_KINDS],
    ids=lambda p: f"{p[0]}->{p[1]}",
)
@settings(max_examples=80, deadline=None)
@given(text=texts)
def test_fallback_equals_offsets_for_byte_exact_tokenizers(tokenizers, slow, pair, text):
    src, tgt = pair
    fast = TokenAligner(tokenizers[src], tokenizers[tgt]).align(text)
    walked = TokenAligner(slow[src], slow[tgt]).align(text)
    assert walked.source_ids.tolist() == fast.source_ids.tolist()
    assert walked.source_anchors.tolist() == fast.source_anchors.tolist()
    assert walked.target_anchors.tolist() == fast.target_anchors.tolist()
    assert walked.target_to_source.tolist() == fast.target_to_source.tolist()


@settings(max_examples=80, deadline=None)
@given(text=texts)
def test_fallback_invariants_with_wordpiece(tokenizers, slow, text):
    for src, tgt in (("wordpiece", "byte_bpe"), ("metaspace_bpe", "wordpiece")):
        al = TokenAligner(slow[src], slow[tgt]).align(text)
        t2s = al.target_to_source
        assert len(t2s) == len(al.target_ids)
        aligned = t2s[t2s >= 0]
        assert np.all(np.diff(aligned) > 0) and np.all(aligned < len(al.source_ids))
        for anc in (al.source_anchors, al.target_anchors):
            kept = anc[anc >= 0]
            assert np.all(np.diff(kept) > 0)


def _sample_texts(n_random: int = 40) -> list[str]:
    rng = random.Random(1)
    palette = list("abcdefghij ABC.,;'!?-\n\t") + list("éèàüÉßçñ") + ["中", "文", "😀", "  "]
    out = [t[:300] for t in world_texts(30)] + UNICODE_LINES
    for _ in range(n_random):
        out.append("".join(rng.choice(palette) for _ in range(rng.randint(20, 120))))
    return out


def _agreement(pred: np.ndarray, exact: np.ndarray) -> float:
    return float((pred == exact).mean()) if len(exact) else 1.0


@pytest.mark.parametrize(
    "pair", list(itertools.permutations(KINDS, 2)), ids=lambda p: f"{p[0]}->{p[1]}"
)
def test_fallback_at_least_as_exact_as_dtw(tokenizers, slow, pair):
    src, tgt = pair
    exact_al = TokenAligner(tokenizers[src], tokenizers[tgt])
    walk_al = TokenAligner(slow[src], slow[tgt])
    ours, dtw = [], []
    for text in _sample_texts():
        exact = exact_al.align(text)
        walked = walk_al.align(text)
        s_str = [
            exact_al.source_table.surfaces[i].decode("utf-8", "replace") for i in exact.source_ids
        ]
        t_str = [
            exact_al.target_table.surfaces[i].decode("utf-8", "replace") for i in exact.target_ids
        ]
        ours.append(_agreement(walked.target_to_source, exact.target_to_source))
        dtw.append(_agreement(dtw_align(s_str, t_str), exact.target_to_source))
    assert np.mean(ours) >= np.mean(dtw)
    assert np.mean(ours) >= 0.99


def test_dtw_baseline_is_a_monotone_pairing():
    src = ["The", " cap", "ital", " is", " Paris", "."]
    tgt = ["The", " capital", " is", " Par", "is", "."]
    t2s = dtw_align(src, tgt)
    assert t2s.tolist()[0] == 0 and t2s.tolist()[-1] == 5
    assert np.all(np.diff(t2s) >= 0)
    assert edit_distance("kitten", "sitting") == 3
    assert dtw_align([], tgt).tolist() == [-1] * len(tgt)


def test_given_ids_without_offsets(tokenizers, slow):
    text = "The capital of France is Paris."
    ids = tokenizers["wordpiece"](text, add_special_tokens=False)["input_ids"]
    al = TokenAligner(slow["byte_bpe"], slow["wordpiece"]).align(text, target_ids=ids)
    exact = TokenAligner(tokenizers["byte_bpe"], tokenizers["wordpiece"]).align(text)
    assert al.target_to_source.tolist() == exact.target_to_source.tolist()


def test_exact_bytes_shortcut_applies_only_when_bytes_spell_the_text(tokenizers):
    for kind in EXACT_KINDS:
        al = TokenAligner(tokenizers[kind], tokenizers[kind])
        for text in ("The capital of France.", "é x", "\u0915 \U0001f9ec\n\n  end "):
            index = TextIndex(text)
            ids = tokenizers[kind](text, add_special_tokens=False)["input_ids"]
            anc = exact_anchors(index, al.source_table, ids)
            assert anc is not None, (kind, text)
            assert anc.tolist() == al.align(text).source_anchors.tolist()
        other = tokenizers[kind]("Another text", add_special_tokens=False)["input_ids"]
        assert exact_anchors(TextIndex("The capital"), al.source_table, other) is None
    wp = TokenAligner(tokenizers["wordpiece"], tokenizers["wordpiece"])
    ids = tokenizers["wordpiece"]("the capital", add_special_tokens=False)["input_ids"]
    assert exact_anchors(TextIndex("the capital"), wp.source_table, ids) is None
