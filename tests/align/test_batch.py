"""Batched alignment (`TokenAligner.encode`, `TokenAligner.align_batch`) gives what `align`
gives text by text, whichever way each side is encoded; `encode_texts` gives the
tokenizer's own ids."""

from __future__ import annotations

import numpy as np
import pytest

from profuser.align import TokenAligner, match_anchors
from profuser.align.encode import TokenBatch, encode_texts
from tests.align.conftest import UNICODE_LINES, SlowLike
from tests.align.families import corpus

PAIRS = [
    ("llama3", "llama2"),
    ("qwen2", "t5"),
    ("bert", "gemma"),
    ("neox", "meta_nfkd"),
    ("bytes_nfkc", "wordpiece_nfd"),
    ("unigram_nfkc", "llama3"),
]
EDGE = ["", " ", "  two", " leading", "\n", "x", "a\tb\nc", "<|im_end|> and </s> [SEP] <unk>"]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    lines = corpus(40, seed=11) + UNICODE_LINES + EDGE
    return [*lines, "\n\n".join(lines)]


FIELDS = ("source_ids", "target_ids", "source_anchors", "target_anchors", "target_to_source")


def assert_same(got, want) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.text == w.text
        for f in FIELDS:
            assert np.array_equal(getattr(g, f), getattr(w, f)), (f, w.text)


def pessimist(src, tgt) -> TokenAligner:
    """An aligner that has seen token bytes fail to spell every text: it asks for offsets."""
    al = TokenAligner(src, tgt, cache=False)
    al._exact_counts = {"source": [100, 0], "target": [100, 0]}
    return al


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}->{p[1]}")
def test_batch_equals_text_by_text(families, texts, pair):
    src, tgt = families[pair[0]], families[pair[1]]
    one = TokenAligner(src, tgt, cache=False)
    want = [one.align(t) for t in texts]
    assert_same(TokenAligner(src, tgt, cache=False).align_batch(texts), want)
    assert_same(pessimist(src, tgt).align_batch(texts), want)
    # given ids, with the encodings `encode` made (with or without offsets)
    for al in (TokenAligner(src, tgt, cache=False), pessimist(src, tgt)):
        s, t = al.encode(texts, "source"), al.encode(texts, "target")
        assert s.ids == [a.source_ids.tolist() for a in want]
        assert t.ids == [a.target_ids.tolist() for a in want]
        assert_same(al.align_batch(texts, s, t), want)
        # ids cut short (a teacher's rows for a truncated answer) are placed as given
        cut = [max(len(i) - 2, 0) for i in s.ids]
        parts = zip(texts, s.ids, cut, t.ids, strict=True)
        short = [one.align(x, i[:n], j) for x, i, n, j in parts]
        assert_same(al.align_batch(texts, s.take(range(len(texts)), cut), t.ids), short)


def test_a_trimming_tokenizer_is_encoded_once_with_its_own_ids_and_offsets(families, texts):
    # GPT-NeoX's post-processor trims whitespace off the offsets, so its offsets come from a
    # copy without it; `encode` asks that copy once for the ids and the offsets together.
    src, tgt = families["neox"], families["llama2"]
    al = pessimist(src, tgt)
    copy = al._backends[id(src)]
    assert copy is not src.backend_tokenizer
    got = al.encode(texts, "source")
    assert got.backend is copy and got.encodings is not None
    assert got.ids == [list(src(x, add_special_tokens=False)["input_ids"]) for x in texts]
    want = [TokenAligner(src, tgt, cache=False).align(x) for x in texts]
    assert_same(al.align_batch(texts, got, al.encode(texts, "target")), want)


def test_slow_tokenizers_batch(tokenizers, texts):
    src, tgt = SlowLike(tokenizers["metaspace_bpe"]), tokenizers["wordpiece"]
    al = TokenAligner(src, tgt, cache=False)
    assert_same(al.align_batch(texts), [al.align(t) for t in texts])
    s = al.encode(texts, "source")
    assert s.encodings is None
    want = [al.align(t, i) for t, i in zip(texts, s.ids, strict=True)]
    assert_same(al.align_batch(texts, s), want)


def test_encode_texts_gives_the_tokenizers_own_ids(families, tokenizers, texts):
    toks = [*families.values(), *tokenizers.values(), SlowLike(tokenizers["wordpiece"])]
    for tok in toks:
        want = [tok(t, add_special_tokens=False)["input_ids"] if t else [] for t in texts]
        for offsets in (False, True):
            got = encode_texts(tok, texts, offsets=offsets)
            assert got.ids == want
            if got.encodings is not None:
                kept = [i for i, t in enumerate(texts) if t]
                assert [got.encodings[i].ids for i in kept] == [want[i] for i in kept]
    assert encode_texts(tokenizers["wordpiece"], []).ids == []


def test_encode_texts_follows_the_tokenizers_settings(tokenizers):
    """Special-token splitting and truncation set on the tokenizer: its own call decides."""
    from transformers import AutoTokenizer

    tok = tokenizers["metaspace_bpe"]
    text = ["say <|im_end|> twice <|im_end|>"]
    split = AutoTokenizer.from_pretrained(tok.name_or_path, split_special_tokens=True)
    for t in (tok, split):
        assert encode_texts(t, text).ids == [t(text[0], add_special_tokens=False)["input_ids"]]
    assert encode_texts(split, text).ids != encode_texts(tok, text).ids
    short = AutoTokenizer.from_pretrained(tok.name_or_path)
    short.backend_tokenizer.enable_truncation(3)  # its call turns this off
    got = encode_texts(short, text).ids
    assert got == short(text, add_special_tokens=False)["input_ids"] and len(got[0]) > 3


def test_token_batch_take():
    b = TokenBatch([[1, 2, 3], [4], [5, 6]], ["e0", "e1", "e2"], "backend")
    got = b.take([2, 0], [1, 5])
    assert got.ids == [[5], [1, 2, 3]] and got.encodings == ["e2", "e0"]
    assert got.backend == "backend" and len(got) == 2


def test_match_anchors_dense_and_sparse():
    rng = np.random.default_rng(0)
    for top in (50, 10**7):  # a table by anchor, and a sorted merge for sparse anchors
        for _ in range(20):
            src = np.sort(rng.choice(top, size=30, replace=False))
            tgt = np.sort(rng.choice(top, size=40, replace=False))
            src[rng.random(30) < 0.2] = -1
            tgt[rng.random(40) < 0.2] = -1
            where = {int(a): i for i, a in enumerate(src) if a >= 0}
            want = [where.get(int(a), -1) if a >= 0 else -1 for a in tgt]
            assert match_anchors(src, tgt).tolist() == want
    empty = np.zeros(0, dtype=np.int64)
    assert match_anchors(empty, np.array([3, -1])).tolist() == [-1, -1]
    assert match_anchors(np.array([0, 2]), empty).tolist() == []
