"""Per-text character facts: classes, contexts, byte offsets, folding."""

from __future__ import annotations

import numpy as np

from profuser.align.chars import (
    BOUNDARY,
    CONTROL,
    CTX_GLUED,
    CTX_OTHER,
    CTX_SPACE,
    WORD,
    WS,
    TextIndex,
    fold_text,
)


def test_classes_and_byte_offsets():
    text = "a é,中\t\x07x"
    index = TextIndex(text)
    assert index.classes.tolist() == [WORD, WS, WORD, BOUNDARY, BOUNDARY, WS, CONTROL, WORD]
    assert index.byte_of_char.tolist() == [0, 1, 2, 4, 5, 8, 9, 10, 11]
    assert index.char_of_byte[[0, 2, 3, 5, 7, 11]].tolist() == [0, 2, 2, 4, 4, 8]
    assert index.nonws_bytes.tolist() == [0, 2, 4, 5, 9, 10]
    assert index.utf8 == text.encode()


def test_contexts_at_token_starts():
    text = "ab cd(ef) é"
    index = TextIndex(text)
    starts = np.array([0, 1, 3, 5, 6, 10, 11, -1])  # bytes; 11 is inside "é"
    assert index.contexts(starts).tolist() == [
        CTX_OTHER,  # start of text
        CTX_GLUED,  # "b" after "a"
        CTX_SPACE,  # "c" after a space
        CTX_OTHER,  # "(" after "d": punctuation starts its own word
        CTX_OTHER,  # "e" after "("
        CTX_SPACE,  # "é" after a space
        CTX_GLUED,  # second byte of "é"
        CTX_OTHER,  # no anchor
    ]


def test_fold_like_bert():
    assert fold_text("ÉCLAIR\tCafé\x00", lowercase=True, strip_accents=True) == "eclair cafe"
    assert fold_text("ÉCLAIR", lowercase=False, strip_accents=False) == "ÉCLAIR"
