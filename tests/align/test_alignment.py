"""Position alignment: property tests against a brute-force reference, and unit cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings

from profuser.align import TokenAligner
from profuser.align.chars import TextIndex
from profuser.align.spans import anchors, exact_anchors, offset_spans
from profuser.align.walk import walk_spans
from tests.align.conftest import KINDS
from tests.align.reference import ref_anchors, ref_target_to_source
from tests.align.strategies import texts

PAIRS = list(itertools.permutations(KINDS, 2)) + [(k, k) for k in KINDS]


@pytest.fixture(scope="module")
def aligners(tokenizers):
    return {(a, b): TokenAligner(tokenizers[a], tokenizers[b]) for a, b in PAIRS}


def check_paths(aligner, side, text, ref_ids, ref_anc, kind):
    """Each way of placing tokens agrees with the reference: offsets, exact bytes, walk."""
    tok = aligner.source if side == "source" else aligner.target
    table = aligner.source_table if side == "source" else aligner.target_table
    index = TextIndex(text)
    enc = tok.backend_tokenizer.encode(text, add_special_tokens=False)
    ids = np.asarray(enc.ids, dtype=np.int64)
    facts = TokenAligner._token_facts(table, ids)
    assert anchors(index, offset_spans(enc), *facts).tolist() == ref_anc
    exact = exact_anchors(index, table, enc.ids)
    if kind == "wordpiece":
        assert exact is None  # folds case: its bytes do not spell the text
    elif exact is not None:
        assert exact.tolist() == ref_anc
    if kind != "wordpiece":  # byte-exact tokenizers: the walk is exact too
        assert anchors(index, walk_spans(index, table, ids), *facts).tolist() == ref_anc


def check_alignment(aligners, tokenizers, pair, text):
    src, tgt = pair
    al = aligners[pair].align(text)
    s_ids, s_anc = ref_anchors(tokenizers[src], src, text)
    t_ids, t_anc = ref_anchors(tokenizers[tgt], tgt, text)
    check_paths(aligners[pair], "source", text, s_ids, s_anc, src)
    check_paths(aligners[pair], "target", text, t_ids, t_anc, tgt)
    assert al.source_ids.tolist() == s_ids
    assert al.target_ids.tolist() == t_ids
    assert al.source_anchors.tolist() == s_anc
    assert al.target_anchors.tolist() == t_anc
    assert al.target_to_source.tolist() == ref_target_to_source(s_anc, t_anc)
    t2s = al.target_to_source
    assert t2s.shape == (len(t_ids),)
    assert t2s.dtype.kind == "i"
    aligned = t2s[t2s >= 0]
    assert np.all(np.diff(aligned) > 0)
    assert np.all(aligned < len(s_ids))
    if src == tgt:
        # The same tokenizer aligns every anchored token to itself.
        anchored = np.flatnonzero(al.target_anchors >= 0)
        assert t2s[anchored].tolist() == anchored.tolist()
    return al


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}->{p[1]}")
@settings(max_examples=100, deadline=None)
@given(text=texts)
def test_alignment_matches_bruteforce(aligners, tokenizers, pair, text):
    check_alignment(aligners, tokenizers, pair, text)


def _pieces(tok, al_ids):
    return tok.convert_ids_to_tokens(al_ids.tolist())


def test_leading_space_markers_start_at_the_word(aligners, tokenizers):
    text = "The answer is Paris."
    for pair in [
        ("byte_bpe", "metaspace_bpe"),
        ("metaspace_bpe", "wordpiece"),
        ("wordpiece", "byte_bpe"),
    ]:
        al = check_alignment(aligners, tokenizers, pair, text)
        # Every word start of the text is an anchor on both sides.
        words = [text.index(w) for w in ("The", "answer", "is", "Paris")]
        assert set(words) <= set(al.target_anchors.tolist())
        for w in words:
            j = al.target_anchors.tolist().index(w)
            assert al.source_anchors[al.target_to_source[j]] == w


def test_byte_level_pieces_align_one_to_one_with_byte_fallback(aligners, tokenizers):
    # Devanagari and a musical symbol (F0 9D ..): bytes no training text merges.
    text = "x\u0915\u0916\u0917 \U0001d11e!"
    al = check_alignment(aligners, tokenizers, ("byte_bpe", "metaspace_bpe"), text)
    tgt = _pieces(tokenizers["metaspace_bpe"], al.target_ids)
    fallback = [j for j, t in enumerate(tgt) if t.startswith("<0x")]
    assert len(fallback) >= 12
    # Every byte piece has its own anchor (one byte each) ...
    assert all(al.target_anchors[j] >= 0 for j in fallback)
    anchors = al.target_anchors[fallback]
    assert np.all(np.diff(anchors) >= 1)
    # ... and a source partner exactly where a source token starts at that byte (the
    # byte-level source may merge the bytes of a character it has seen often).
    src_starts = set(al.source_anchors.tolist())
    for j in fallback:
        assert (al.target_to_source[j] >= 0) == (al.target_anchors[j] in src_starts)
    assert sum(al.target_to_source[j] >= 0 for j in fallback) >= 12


def test_metaspace_inserted_marker_has_no_anchor(aligners, tokenizers):
    tok = tokenizers["metaspace_bpe"]
    al = check_alignment(aligners, tokenizers, ("byte_bpe", "metaspace_bpe"), "\u0915x")
    pieces = _pieces(tok, al.target_ids)
    assert pieces[0] == "▁"  # prepended by the tokenizer, stands for no text
    assert al.target_anchors[0] == -1
    assert al.target_anchors[1] == 0 and al.target_to_source[1] == 0


def test_whitespace_runs_and_newlines(aligners, tokenizers):
    text = "a  b\n\n\tc   \n d"
    al = check_alignment(aligners, tokenizers, ("byte_bpe", "metaspace_bpe"), text)
    byte_of = {i: i for i in range(len(text))}  # ASCII text: bytes are characters
    for w in "abcd":
        j = al.target_anchors.tolist().index(byte_of[text.index(w)])
        assert al.target_to_source[j] >= 0
    al = check_alignment(aligners, tokenizers, ("metaspace_bpe", "wordpiece"), text)
    assert (al.target_to_source >= 0).all()  # WordPiece keeps only the words


def test_wordpiece_lowercase_and_accents_keep_original_offsets(aligners, tokenizers):
    text = "ÉCLAIR Café"
    al = check_alignment(aligners, tokenizers, ("byte_bpe", "wordpiece"), text)
    pieces = _pieces(tokenizers["wordpiece"], al.target_ids)
    assert pieces[0].startswith("e") and pieces[0] == pieces[0].lower()
    assert al.target_anchors[0] == 0
    cafe = len("ÉCLAIR ".encode())
    j = al.target_anchors.tolist().index(cafe)
    assert pieces[j].startswith("c") and al.target_to_source[j] >= 0


def test_cjk_and_emoji(aligners, tokenizers):
    text = "中文 😀 and 👍🏽."
    for pair in PAIRS:
        check_alignment(aligners, tokenizers, pair, text)
    al = aligners[("wordpiece", "metaspace_bpe")].align(text)
    assert al.aligned_fraction > 0


def test_special_and_added_tokens(aligners, tokenizers):
    text = "<|im_start|>assistant\nParis<|im_end|> </s>"
    al = check_alignment(aligners, tokenizers, ("byte_bpe", "metaspace_bpe"), text)
    pieces = _pieces(tokenizers["metaspace_bpe"], al.target_ids)
    assert "<|im_start|>" in pieces and "<|im_end|>" in pieces and "</s>" in pieces
    j = pieces.index("</s>")
    assert al.target_anchors[j] == text.index("</s>")
    assert al.target_to_source[j] >= 0  # byte_bpe also has </s> (its eos)


def test_empty_text(aligners):
    al = aligners[("byte_bpe", "wordpiece")].align("")
    assert al.target_to_source.shape == (0,)
    assert al.aligned_fraction == 1.0


def test_given_ids_in_context_are_placed(aligners, tokenizers):
    """Ids tokenized inside a template (no prepended marker) differ from text alone."""
    tok = tokenizers["metaspace_bpe"]
    text = "Paris is the answer."
    prefix = tok("(", add_special_tokens=False)["input_ids"]
    full = tok("(" + text, add_special_tokens=False)["input_ids"]
    alone = tok(text, add_special_tokens=False)["input_ids"]
    assert full[: len(prefix)] == prefix
    ctx_ids = full[len(prefix) :]
    assert ctx_ids != alone  # no "▁" before "Paris" inside the larger text
    aligner = aligners[("byte_bpe", "metaspace_bpe")]
    al = aligner.align(text, target_ids=ctx_ids)
    assert al.target_ids.tolist() == ctx_ids
    j = al.target_anchors.tolist().index(text.index("answer"))
    assert al.target_to_source[j] >= 0
