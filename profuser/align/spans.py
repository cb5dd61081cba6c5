"""Where each token of a text starts: character spans and anchors.

A token's *span* is the half-open character range of the original text it
covers: from a fast tokenizer's offset mapping, or, for tokenizers without
one, recovered by `walk_spans` from the token strings alone.

A token's *anchor* is the place it starts at, as a byte offset into the UTF-8
text, by one rule that both sides of an alignment share:

1. a token starts at the first non-whitespace character of its span, so
   ``Ġfoo`` / ``▁foo`` / ``foo`` all start at ``f``; a span of whitespace only
   starts where it starts;
2. byte pieces of one multi-byte character (byte-level ``Ã`` ``©``, byte
   fallback ``<0xC3>`` ``<0xA9>``) report the same character span; a token whose
   span overlaps the previous tokens' starts where their bytes end (the second
   piece of "é" starts at its second byte), so byte-level and byte-fallback
   pieces align one to one;
3. a token with an empty span starts nowhere, and so does a whitespace-only
   token whose span does not begin with the whitespace it stands for: a
   marker the tokenizer inserted itself (SentencePiece's leading ``▁``);
4. a token keeps its anchor only if it lies strictly past every earlier
   token's (of several starting at one place the first wins), so anchors
   increase strictly.

Anchors are -1 where a token has none.
"""

from __future__ import annotations

import itertools
import unicodedata
from typing import Any

import numpy as np

from profuser.align.chars import CONTROL, WORD, WS, TextIndex, fold_char, utf8_lengths
from profuser.align.surface import TokenTable

# Bytes searched ahead to re-synchronise after a token that does not match at
# the cursor; bounds the fallback to linear time.
RESYNC_WINDOW = 256


def has_offsets(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` is a fast tokenizer that reports offset mappings."""
    return bool(getattr(tokenizer, "is_fast", False)) and (
        getattr(tokenizer, "backend_tokenizer", None) is not None
    )


def offset_spans(encoding: Any) -> np.ndarray:
    """Character spans from a `tokenizers.Encoding`'s offsets.  # -> [n, 2]"""
    offsets = encoding.offsets
    # fromiter over the flattened pairs is about twice as fast as asarray on tuples.
    flat = np.fromiter(
        itertools.chain.from_iterable(offsets), dtype=np.int64, count=2 * len(offsets)
    )
    return flat.reshape(-1, 2)


def _byte_anchors(
    index: TextIndex, bs: np.ndarray, be: np.ndarray, inside: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """Anchors from byte spans (rules 1 and 4).  # [n] x4 -> [n]

    ``inside``: the token starts inside a character (a byte piece), so it starts
    at its first byte; other tokens start at their first non-whitespace character.
    """
    n = len(bs)
    out = np.full(n, -1, dtype=np.int64)
    rows = np.flatnonzero(valid)
    if len(rows) == 0:
        return out
    bsv, bev = bs[rows], be[rows]
    nonws = index.nonws_bytes
    anchor = bsv
    if len(nonws):
        k = np.searchsorted(nonws, bsv)
        first = nonws[np.minimum(k, len(nonws) - 1)]
        anchor = np.where((k < len(nonws)) & (first < bev) & ~inside[rows], first, bsv)
    # Keep a token's anchor only if it lies past every earlier one.
    prev_max = np.empty(len(rows), dtype=np.int64)
    prev_max[0] = -1
    np.maximum.accumulate(anchor[:-1], out=prev_max[1:])
    out[rows] = np.where(anchor > prev_max, anchor, -1)
    return out


def anchors(
    index: TextIndex, spans: np.ndarray, ws_first: np.ndarray, surface_len: np.ndarray
) -> np.ndarray:
    """Anchor byte of each token (module rules) from character spans, -1 for none.

    ``spans`` are character spans; ``ws_first`` / ``surface_len`` per-token facts
    from the token table (first code point of a whitespace-only surface or -1;
    surface length in bytes).  # [n, 2], [n], [n] -> [n]
    """
    n = len(spans)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    s, e = spans[:, 0], spans[:, 1]
    valid = (s >= 0) & (e > s) & (e <= len(index))
    first_cp = index.codepoints[np.clip(s, 0, max(len(index) - 1, 0))] if len(index) else s
    valid &= ~((ws_first >= 0) & (first_cp != ws_first))
    boc = index.byte_of_char
    bs = boc[np.clip(s, 0, len(index))]
    be = boc[np.clip(e, 0, len(index))]
    inside = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(valid)
    if len(rows) > 1:
        # Byte pieces: a span overlapping the previous tokens' continues the same
        # character(s), so it starts where the previous pieces' bytes end.
        sv, ev, lv = s[rows], e[rows], surface_len[rows]
        prev_end = np.empty(len(rows), dtype=np.int64)
        prev_end[0] = -1
        np.maximum.accumulate(ev[:-1], out=prev_end[1:])
        ins = sv < prev_end
        if ins.any():
            excl = np.zeros(len(rows), dtype=np.int64)  # bytes of earlier tokens
            np.cumsum(lv[:-1], out=excl[1:])
            heads = np.flatnonzero(~ins)
            group = np.cumsum(~ins) - 1  # the head each token continues
            piece = boc[sv[heads]][group] + excl - excl[heads][group]
            bs[rows[ins]] = piece[ins]
            inside[rows[ins]] = True
            # Pieces cannot start past their own span (a normaliser changed lengths).
            valid[rows[ins & (piece >= be[rows])]] = False
    return _byte_anchors(index, bs, be, inside, valid)


def exact_anchors(index: TextIndex, table: TokenTable, ids: list[int]) -> np.ndarray | None:
    """Anchors without offsets, for tokenizers whose token bytes spell the text exactly.

    Byte-level and byte-fallback tokenizers (that do not fold case) reproduce the
    text byte for byte, so each token's byte span is the running sum of surface
    lengths; this checks that (allowing one space the tokenizer prepended) and
    returns None when it does not hold. The anchors equal those of `anchors` on
    the offset mapping, for about a third of the cost.  # [n] -> [n]
    """
    if table.kind not in ("byte_level", "metaspace") or table.folds or not ids:
        return None
    surfaces = table.surfaces
    try:
        joined = b"".join([surfaces[i] for i in ids])
    except IndexError:
        return None
    text = index.utf8
    if joined == text:
        shift = 0
    elif len(joined) == len(text) + 1 and joined[0] == 0x20 and joined[1:] == text:
        shift = 1  # a prepended marker space, which stands for no text
    else:
        return None
    lens = table.surface_len[np.asarray(ids, dtype=np.int64)]  # [n]
    be = np.cumsum(lens) - shift
    bs = np.maximum(be - lens, 0)
    be = np.maximum(be, 0)
    nb = len(text)
    inside = np.zeros(len(ids), dtype=bool)
    mid = bs < nb
    inside[mid] = ~index.char_starts[bs[mid]]
    return _byte_anchors(index, bs, be, inside, be > bs)


def _byte_map(index: TextIndex, table: TokenTable) -> tuple[bytes, np.ndarray]:
    """Text bytes as the tokenizer sees them, and the original character of each byte.

    Returns ``(tb, char_of)``: ``char_of[b]`` is the character holding byte ``b``
    of ``tb``; ``char_of[len(tb)] == len(text)``.  # [len(tb) + 1]
    """
    text = index.text
    if table.folds:
        pieces = [fold_char(c, table.lowercase, table.strip_accents) for c in text]
        tb = "".join(pieces).encode("utf-8")
        lens = np.fromiter(
            (len(p.encode("utf-8")) for p in pieces), dtype=np.int64, count=len(pieces)
        )
    else:
        tb = text.encode("utf-8")
        lens = utf8_lengths(index.codepoints)
    char_of = np.empty(len(tb) + 1, dtype=np.int64)
    char_of[:-1] = np.repeat(np.arange(len(text), dtype=np.int64), lens)
    char_of[-1] = len(text)
    return tb, char_of


def _word_runs(index: TextIndex, lo: int, hi: int, marks_vanish: bool) -> list[tuple[int, int]]:
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


def walk_spans(index: TextIndex, table: TokenTable, ids: np.ndarray) -> np.ndarray:
    """Character spans of ``ids`` in the text, from token strings only.  # [n] -> [n, 2]

    For tokenizers without offset mappings. One left-to-right pass: each token's
    surface bytes are matched at the cursor (allowing for a marker space the
    text lacks, and for whitespace the tokenizer dropped); a token that does not
    match is searched for a bounded distance ahead (so the walk stays linear);
    unknown-token ids take the words of the gap before the next matched token.
    Tokens that cannot be placed get (-1, -1).
    """
    tb, char_of = _byte_map(index, table)
    nb = len(tb)
    byte_ws = index.is_ws[char_of[:-1]] if nb else np.zeros(0, dtype=bool)  # [nb]
    # next_nonws[p]: first non-whitespace byte at or after p.  # [nb + 1]
    pos = np.where(byte_ws, nb, np.arange(nb))
    next_nonws = np.empty(nb + 1, dtype=np.int64)
    next_nonws[-1] = nb
    next_nonws[:-1] = np.minimum.accumulate(pos[::-1])[::-1] if nb else pos
    next_nonws_l = next_nonws.tolist()

    cls = index.classes

    def word_start(b: int) -> bool:
        c = char_of[b]
        return c == 0 or c >= len(cls) or not (cls[c - 1] == WORD and cls[c] == WORD)

    n = len(ids)
    out = np.full((n, 2), -1, dtype=np.int64)  # byte spans first, characters at the end
    in_chars = np.zeros(n, dtype=bool)  # rows already in characters (unknown tokens)
    surfaces = table.surfaces
    unk = table.unk_id
    pending: list[int] = []  # unknown tokens waiting for the next placed token
    gap_start = 0
    p = 0
    for i, tid in enumerate(ids.tolist()):
        if not (0 <= tid < table.size):
            pending.append(i)
            continue
        sb = surfaces[tid]
        if table.folds and table.added[tid]:
            sb = table.fold(sb.decode("utf-8")).encode("utf-8")
        hit, length = -1, len(sb)
        if tid == unk:
            # Unknown text, unless the text spells the unk token itself ("<unk>").
            q = next_nonws_l[p]
            if not (sb and tb.startswith(sb, q)):
                pending.append(i)
                continue
            hit = q
        elif not sb:
            out[i] = (p, p)
            continue
        # After unknown words, a word-initial WordPiece token cannot start inside one.
        after_unknown = bool(pending) and table.kind == "wordpiece" and not table.continuation[tid]
        core = sb.lstrip(b" ")
        if hit >= 0:
            pass
        elif not after_unknown and tb.startswith(sb, p):
            hit = p
        elif not core:
            out[i] = (p, p)  # a marker space the text does not have
            continue
        else:
            length = len(core)
            if not after_unknown:
                for start in (p, next_nonws_l[p]):
                    if tb.startswith(core, start):
                        hit = start
                        break
            limit = p + RESYNC_WINDOW + length
            at = p
            while hit < 0:
                at = tb.find(core, at, limit)
                if at < 0:
                    break
                if not after_unknown or word_start(at):
                    hit = at
                at += 1
        if hit < 0:
            continue  # cannot place: no span, cursor stays
        if pending:
            _place_unknown(
                index, out, in_chars, pending, char_of[gap_start], char_of[hit], table.strip_accents
            )
            pending = []
        out[i] = (hit, hit + length)
        p = gap_start = hit + length
    if pending:
        _place_unknown(
            index, out, in_chars, pending, char_of[gap_start], len(index), table.strip_accents
        )

    # Byte spans -> character spans; unknown tokens were placed in characters already.
    placed = (out[:, 0] >= 0) & ~in_chars
    b0, b1 = out[placed, 0], out[placed, 1]
    c0 = char_of[b0]
    c1 = np.where(b1 > b0, char_of[np.maximum(b1 - 1, 0)] + 1, c0)
    out[placed, 0], out[placed, 1] = c0, c1
    return out


def _place_unknown(
    index: TextIndex,
    out: np.ndarray,
    in_chars: np.ndarray,
    rows: list[int],
    lo: int,
    hi: int,
    marks_vanish: bool,
) -> None:
    """Give the k-th unknown token in ``rows`` the k-th word of text[lo:hi] (characters)."""
    runs = _word_runs(index, int(lo), int(hi), marks_vanish)
    for row, (a, b) in zip(rows, runs, strict=False):
        out[row] = (a, b)
        in_chars[row] = True
