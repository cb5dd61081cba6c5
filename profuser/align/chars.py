"""Character-level facts about a text that every tokenizer sees the same way.

Alignment compares tokenizations of one string, so everything that depends
only on the string (where the whitespace is, which characters glue into words,
where each character's UTF-8 bytes lie) is computed once per text here and
shared by both sides. All per-character work is vectorised over code points;
only non-ASCII characters fall back to `unicodedata`, once per distinct
character.
"""

from __future__ import annotations

import unicodedata
from functools import cached_property, lru_cache

import numpy as np

# Character classes, as a BERT-style pre-tokenizer sees them. CONTROL characters
# are deleted by BERT's clean-up, so they neither join nor split words.
WS, WORD, BOUNDARY, CONTROL = 0, 1, 2, 3

# Contexts of a token start (see `TextIndex.contexts`): the three ways a
# marker-less tokenizer (WordPiece) can continue the text at that point.
CTX_OTHER, CTX_SPACE, CTX_GLUED = 0, 1, 2
N_CONTEXTS = 3

# `str.isspace` is true for exactly these code points (Unicode White_Space plus
# the ASCII separators 0x1c-0x1f); listed so a whole text is classified at once.
WS_CODEPOINTS = np.array(
    [
        *range(0x09, 0x0E),
        *range(0x1C, 0x21),
        0x85,
        0xA0,
        0x1680,
        *range(0x2000, 0x200B),
        0x2028,
        0x2029,
        0x202F,
        0x205F,
        0x3000,
    ],
    dtype=np.uint32,
)

# Whether each code point up to the last whitespace one is whitespace; one past it
# (False) stands for every higher code point.
_WS_LOOKUP = np.zeros(int(WS_CODEPOINTS.max()) + 2, dtype=bool)
_WS_LOOKUP[WS_CODEPOINTS] = True

# Blocks of CJK ideographs: each ideograph is a word of its own for BERT.
_CJK_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0x2F800, 0x2FA1F),
)


def _is_control(ch: str) -> bool:
    """Characters BERT's clean-up deletes: every "C*" category except tab/newline/return."""
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


@lru_cache(maxsize=65536)
def char_class(ch: str) -> int:
    """WS, WORD, BOUNDARY (punctuation, ASCII symbols, CJK ideographs) or CONTROL."""
    if _is_control(ch):
        return CONTROL
    if ch.isspace():
        return WS
    cp = ord(ch)
    if cp < 128:
        # BERT splits on every ASCII non-alphanumeric symbol, not only Unicode P*.
        return WORD if ch.isalnum() else BOUNDARY
    if any(lo <= cp <= hi for lo, hi in _CJK_RANGES):
        return BOUNDARY
    return BOUNDARY if unicodedata.category(ch).startswith("P") else WORD


_ASCII_CLASS = np.array([char_class(chr(c)) for c in range(128)], dtype=np.int8)


@lru_cache(maxsize=65536)
def fold_char(ch: str, lowercase: bool, strip_accents: bool) -> str:
    """One character as a lower-casing / accent-stripping normaliser (BERT's) leaves it."""
    if ch in "\t\n\r":
        return " "
    if _is_control(ch) or ch == "\ufffd":
        return ""  # BERT's clean-up drops these outright
    if ch.isspace():
        return " "
    if strip_accents:
        ch = "".join(c for c in unicodedata.normalize("NFD", ch) if unicodedata.category(c) != "Mn")
    return ch.lower() if lowercase else ch


def fold_text(text: str, lowercase: bool, strip_accents: bool) -> str:
    """``text`` folded character by character (see `fold_char`)."""
    if not (lowercase or strip_accents):
        return text
    return "".join(fold_char(c, lowercase, strip_accents) for c in text)


def utf8_lengths(codepoints: np.ndarray) -> np.ndarray:
    """UTF-8 byte length of each code point.  # [L] -> [L]"""
    return (
        1 + (codepoints >= 0x80).astype(np.int64) + (codepoints >= 0x800) + (codepoints >= 0x10000)
    )


class TextIndex:
    """Per-text arrays shared by both tokenizations of ``text``."""

    def __init__(self, text: str) -> None:
        self.text = text
        # Code points via UTF-32 is a single C call, far cheaper than iterating over str.
        self.codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # [L]
        cps = np.minimum(self.codepoints, len(_WS_LOOKUP) - 1)
        self.is_ws = _WS_LOOKUP[cps]  # [L]

    def __len__(self) -> int:
        return len(self.text)

    @cached_property
    def byte_of_char(self) -> np.ndarray:
        """UTF-8 byte offset of each character; entry L is the byte length.  # [L + 1]"""
        out = np.zeros(len(self.text) + 1, dtype=np.int64)
        if self.codepoints.size and self.codepoints.max() >= 0x80:
            np.cumsum(utf8_lengths(self.codepoints), out=out[1:])
        else:
            out[1:] = np.arange(1, len(self.text) + 1)
        return out

    @cached_property
    def char_of_byte(self) -> np.ndarray:
        """The character holding each UTF-8 byte; entry nb is L.  # [nb + 1]"""
        boc = self.byte_of_char
        out = np.empty(boc[-1] + 1, dtype=np.int64)
        out[:-1] = np.repeat(np.arange(len(self.text)), np.diff(boc))
        out[-1] = len(self.text)
        return out

    @cached_property
    def nonws_positions(self) -> np.ndarray:
        """Indices of the non-whitespace characters.  # [L']"""
        return np.flatnonzero(~self.is_ws)

    @cached_property
    def nonws_bytes(self) -> np.ndarray:
        """Byte offsets where the non-whitespace characters start.  # [L']"""
        return self.byte_of_char[self.nonws_positions]

    @cached_property
    def next_nonws_byte(self) -> np.ndarray:
        """Where the first non-whitespace character at or after each byte starts (the byte
        length nb where none does).  # [nb + 1]"""
        nb = int(self.byte_of_char[-1])
        out = np.full(nb + 1, nb, dtype=np.int64)
        out[self.nonws_bytes] = self.nonws_bytes
        return np.minimum.accumulate(out[::-1])[::-1]

    @cached_property
    def utf8(self) -> bytes:
        """The text in UTF-8."""
        return self.text.encode("utf-8")

    @cached_property
    def char_starts(self) -> np.ndarray:
        """Whether each byte begins a character.  # [nb] bool"""
        out = np.zeros(int(self.byte_of_char[-1]), dtype=bool)
        out[self.byte_of_char[:-1]] = True
        return out

    @cached_property
    def classes(self) -> np.ndarray:
        """WS / WORD / BOUNDARY for every character.  # [L] int8"""
        cps = self.codepoints
        out = np.full(len(cps), WORD, dtype=np.int8)
        ascii_ = cps < 128
        out[ascii_] = _ASCII_CLASS[cps[ascii_]]
        rest = np.flatnonzero(~ascii_)
        if len(rest):
            uniq, inverse = np.unique(cps[rest], return_inverse=True)
            out[rest] = np.array([char_class(chr(c)) for c in uniq], dtype=np.int8)[inverse]
        return out

    def contexts(self, byte_starts: np.ndarray) -> np.ndarray:
        """Context of a token starting at each byte in ``byte_starts`` (-1: none).  # [n] int8

        CTX_SPACE: the previous character is whitespace (a marker-less word-initial
        token stands for " word"); CTX_GLUED: the previous and this character are
        both word characters (a WordPiece target continues with "##" pieces);
        CTX_OTHER: anything else (start of text, after punctuation, unanchored).
        """
        out = np.full(len(byte_starts), CTX_OTHER, dtype=np.int8)
        starts = np.where(byte_starts >= 0, self.char_of_byte[np.maximum(byte_starts, 0)], -1)
        # A token starting inside a character (a byte piece) continues it: not a word start.
        inside = (byte_starts >= 0) & (self.byte_of_char[np.maximum(starts, 0)] != byte_starts)
        out[inside] = CTX_GLUED
        ok = (starts > 0) & ~inside
        if not ok.any():
            return out
        cls = self.classes
        s = starts[ok]
        prev, cur = cls[s - 1], cls[s]
        ctx = np.where(prev == WS, CTX_SPACE, CTX_OTHER)
        ctx = np.where((prev == WORD) & (cur == WORD), CTX_GLUED, ctx)
        out[ok] = ctx
        return out


def normal_units(text: str, form: str) -> list[tuple[int, int, str]]:
    """``(start, end, normalised)`` for each stretch of ``text`` that Unicode normal form
    ``form`` ("NFC", "NFKC", ...) rewrites; the rest it leaves as it is.

    A stretch is a character with the combining marks after it (canonical
    reordering and composition stay inside one), merged with its neighbour where
    the two compose across (Hangul jamo, half-width voiced marks), less the
    characters at either end that it keeps. Empty when the text is already in
    ``form``: the common case costs one C call.
    """
    if unicodedata.is_normalized(form, text):
        return []
    units: list[list] = []  # [start, end, piece]
    for i, ch in enumerate(text):
        if units and unicodedata.combining(ch):
            units[-1][1] = i + 1
            continue
        if units and ord(ch) >= 0x80:
            prev = text[units[-1][0] : units[-1][1]]
            pair = unicodedata.normalize(form, prev + ch)
            if pair != unicodedata.normalize(form, prev) + unicodedata.normalize(form, ch):
                units[-1][1] = i + 1
                continue
        units.append([i, i + 1])
    out = []
    for a, b in units:
        piece = text[a:b]
        norm = unicodedata.normalize(form, piece)
        if norm == piece:
            continue
        # Characters the form leaves in place at either end stay characters of their own.
        k = 0
        while k < min(len(piece), len(norm)) - 1 and piece[k] == norm[k]:
            k += 1
        z = 0
        while z < min(len(piece), len(norm)) - k - 1 and piece[-1 - z] == norm[-1 - z]:
            z += 1
        out.append((a + k, b - z, norm[k : len(norm) - z]))
    return out


def seen_bytes(
    index: TextIndex, lowercase: bool, strip_accents: bool, form: str | None
) -> tuple[bytes, np.ndarray, np.ndarray]:
    """The text's bytes as a tokenizer's normaliser writes them, and where each came from.

    ``form``: the Unicode normal form it applies first (None: none); then it folds
    case and accents (`fold_char`). Returns ``(tb, char_of, end_of)``: byte ``b``
    of ``tb`` was written for the original characters ``char_of[b]`` up to
    ``end_of[b]`` (one character, or a whole stretch that ``form`` rewrote);
    ``char_of[len(tb)] == len(text)``.  # [len(tb)], [len(tb) + 1], [len(tb)]
    """
    text = index.text
    units = normal_units(text, form) if form else []
    folds = lowercase or strip_accents
    if not units and not folds:
        tb = index.utf8
        char_of = index.char_of_byte
        return tb, char_of, char_of[:-1] + 1
    pieces = list(text)
    ends = np.arange(1, len(text) + 1, dtype=np.int64)
    for a, b, norm in units:
        pieces[a] = norm
        pieces[a + 1 : b] = [""] * (b - a - 1)
        ends[a] = b
    if folds:
        pieces = [fold_text(p, lowercase, strip_accents) for p in pieces]
    encoded = [p.encode("utf-8") for p in pieces]
    tb = b"".join(encoded)
    lens = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    char_of = np.empty(len(tb) + 1, dtype=np.int64)
    char_of[:-1] = np.repeat(np.arange(len(text), dtype=np.int64), lens)
    char_of[-1] = len(text)
    return tb, char_of, ends[char_of[:-1]]


def word_runs(index: TextIndex, lo: int, hi: int, marks_vanish: bool) -> list[tuple[int, int]]:
    """Character ranges of the words in text[lo:hi] (runs of word characters; each
    punctuation mark or ideograph alone), as a WordPiece [UNK] would cover them.
    Control characters (and combining marks, for accent-stripping tokenizers) are
    deleted before such a tokenizer splits words, so they neither join nor end a run."""
    cls = index.classes
    text = index.text

    def kind(i: int) -> int:
        if marks_vanish and ord(text[i]) >= 0x300 and unicodedata.category(text[i]) == "Mn":
            return CONTROL
        return int(cls[i])

    runs: list[tuple[int, int]] = []
    i = lo
    while i < hi:
        c = kind(i)
        if c == WS or c == CONTROL:
            i += 1
            continue
        j = end = i + 1
        if c == WORD:
            while j < hi and (cj := kind(j)) in (WORD, CONTROL):
                if cj == WORD:
                    end = j + 1
                j += 1
        runs.append((i, end))
        i = j
    return runs
