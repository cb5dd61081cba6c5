"""Where each token of a text starts: character spans and anchors.

A token's *span* is the half-open character range of the original text it
covers: from a fast tokenizer's offset mapping, or, for tokenizers without
one, recovered by `profuser.align.walk.walk_spans` from the token strings alone, matched against
the text as the tokenizer's normaliser writes it (`profuser.align.chars.seen_bytes`:
its Unicode normal form and folding, with each written byte traced back to the
original characters it came from).

A token's *anchor* is the place it starts at, as a byte offset into the UTF-8
text, by one rule that both sides of an alignment share:

1. a token starts at the first non-whitespace character of its span, so
   ``Ġfoo`` / ``▁foo`` / ``foo`` all start at ``f``; a span of whitespace only
   starts where it starts;
2. byte pieces of one multi-byte character (byte-level ``Ã`` ``©``, byte
   fallback ``<0xC3>`` ``<0xA9>``) report the same character span; a token whose
   span overlaps the previous tokens' starts where their bytes end (the second
   piece of "é" starts at its second byte), so byte-level and byte-fallback
   pieces align one to one. That holds only where the overlapping tokens spell
   the text's own bytes there: where a normaliser rewrote it (NFKC "ﬁ" -> "f"
   "i", NFC "e" + U+0301 -> "é", NFD, lower-casing), each token of the group
   starts at its first non-whitespace character by rule 1, so all but the
   first start nowhere (rule 4);
3. a token with an empty span starts nowhere, and so does a whitespace-only
   token whose span does not begin with the whitespace it stands for, as the
   tokenizer's normaliser writes it (NFKC writes U+3000 as a space): a marker
   the tokenizer inserted itself (SentencePiece's leading ``▁``, T5's ``▁``
   before every word), unless the text's whitespace follows the marker in the
   same token (Llama-2 spells a leading newline ``▁\n``). Of a lone space and overlapping tokens that spell the
   text after it, the lone space is the marker (Llama-2's ``Prepend``
   normaliser writes " x" as "▁▁x");
4. a token keeps its anchor only if it lies strictly past every earlier
   token's (of several starting at one place the first wins), so anchors
   increase strictly.

Offsets are read without a post-processor that trims whitespace off them
(`offset_backend`), so a whitespace token keeps its span.

Anchors are -1 where a token has none.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from profuser.align.chars import TextIndex
from profuser.align.surface import TokenTable


def has_offsets(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` is a fast tokenizer that reports offset mappings."""
    return bool(getattr(tokenizer, "is_fast", False)) and (
        getattr(tokenizer, "backend_tokenizer", None) is not None
    )


def offset_backend(tokenizer: Any) -> Any:
    """``tokenizer``'s backend, or a copy without its post-processor where that trims
    whitespace off the offsets (GPT-NeoX, RoBERTa: ``trim_offsets``), so that every
    token's span covers all the text it stands for. Ids are the same either way."""
    backend = tokenizer.backend_tokenizer
    post = backend.post_processor
    state = post.__getstate__() if post is not None else b""
    if isinstance(state, str):
        state = state.encode()
    if b'"trim_offsets":true' not in state:
        return backend
    from tokenizers import Tokenizer

    clone = Tokenizer.from_str(backend.to_str())
    clone.post_processor = None
    return clone


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
    first = index.next_nonws_byte[np.minimum(bsv, len(index.next_nonws_byte) - 1)]
    anchor = np.where((first < bev) & ~inside[rows], first, bsv)
    # Keep a token's anchor only if it lies past every earlier one.
    prev_max = np.empty(len(rows), dtype=np.int64)
    prev_max[0] = -1
    np.maximum.accumulate(anchor[:-1], out=prev_max[1:])
    out[rows] = np.where(anchor > prev_max, anchor, -1)
    return out


def anchors(
    index: TextIndex,
    spans: np.ndarray,
    ws_first: np.ndarray,
    surface_len: np.ndarray,
    ids: np.ndarray | None = None,
    table: TokenTable | None = None,
) -> np.ndarray:
    """Anchor byte of each token (module rules) from character spans, -1 for none.

    ``spans`` are character spans; ``ws_first`` / ``surface_len`` per-token facts
    from the token table (first code point of a whitespace-only surface or -1;
    surface length in bytes); ``ids`` / ``table``, when given, let overlapping
    tokens be checked against the text they claim to spell (rule 2) and
    whitespace be recognised through the tokenizer's normaliser (rule 3).
    # [n, 2], [n], [n], [n] -> [n]
    """
    n = len(spans)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    s, e = spans[:, 0], spans[:, 1]
    valid = (s >= 0) & (e > s) & (e <= len(index))
    first_cp = index.codepoints[np.clip(s, 0, max(len(index) - 1, 0))] if len(index) else s
    marker = (ws_first >= 0) & (first_cp != ws_first)
    if table is not None and table.ws_seen and marker.any():
        # Whitespace the normaliser rewrites (NFKC: U+3000 -> " ") is still whitespace.
        seen = table.ws_seen_lookup
        k = np.flatnonzero(marker & valid)
        marker[k] = seen[np.minimum(first_cp[k], len(seen) - 1)] != ws_first[k]
    if table is not None and ids is not None and marker.any():
        marker[_merged_markers(table, ids, first_cp, marker & valid)] = False
    valid &= ~marker
    boc = index.byte_of_char
    bs = boc[np.clip(s, 0, len(index))]
    be = boc[np.clip(e, 0, len(index))]
    inside = np.zeros(n, dtype=bool)
    for attempt in range(2):
        rows = np.flatnonzero(valid)
        if len(rows) < 2:
            break
        # Byte pieces: a span overlapping the previous tokens' continues the same
        # character(s), so it starts where the previous pieces' bytes end.
        sv, ev, lv = s[rows], e[rows], surface_len[rows]
        prev_end = np.empty(len(rows), dtype=np.int64)
        prev_end[0] = -1
        np.maximum.accumulate(ev[:-1], out=prev_end[1:])
        ins = sv < prev_end
        if not ins.any():
            break
        excl = np.zeros(len(rows), dtype=np.int64)  # bytes of earlier tokens
        np.cumsum(lv[:-1], out=excl[1:])
        heads = np.flatnonzero(~ins)
        group = np.cumsum(~ins) - 1  # the head each token continues
        piece = boc[sv[heads]][group] + excl - excl[heads][group]
        if ids is not None and table is not None:
            # Only tokens that spell the text's own bytes are byte pieces; the rest
            # of a group a normaliser rewrote ("ﬁ" -> "f" "i", NFD, NFC, NFKC) start
            # at their first character like any token (rule 1).
            exact, marked = _spelt(index, table, ids[rows], heads, ev, bs[rows])
            if attempt == 0 and marked.any():
                # A lone space before tokens that spell the text is a marker the
                # normaliser prepended (Llama-2's Prepend before leading whitespace).
                valid[rows[heads[marked]]] = False
                continue
            ins &= exact[group]
        bs[rows[ins]] = piece[ins]
        inside[rows[ins]] = True
        # Pieces cannot start past their own span (a normaliser changed lengths).
        valid[rows[ins & (piece >= be[rows])]] = False
        break
    return _byte_anchors(index, bs, be, inside, valid)


def _merged_markers(
    table: TokenTable, ids: np.ndarray, first_cp: np.ndarray, marker: np.ndarray
) -> np.ndarray:
    """Rows of ``marker`` whose token is a marker space merged with the text's own
    whitespace after it (Llama-2's "▁\n" for a leading newline): they stand for that
    whitespace, as `exact_anchors` finds from their bytes.  # [n] x3 -> [m]"""
    k = np.flatnonzero(marker)
    ok = (ids[k] >= 0) & (ids[k] < table.size)
    k = k[ok]
    k = k[table.surface_len[ids[k]] > 1]
    seen = table.ws_seen
    out = []
    for row in k.tolist():
        spelt = table.spelt[int(ids[row])]
        cp = int(first_cp[row])
        own = chr(seen.get(cp, cp)).encode()
        if spelt[:1] == b" " and spelt[1:].startswith(own):
            out.append(row)
    return np.asarray(out, dtype=np.int64)


def _spelt(
    index: TextIndex,
    table: TokenTable,
    ids: np.ndarray,
    heads: np.ndarray,
    ends: np.ndarray,
    starts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per group of overlapping tokens: whether they spell the text's bytes under their
    spans, and whether they do so after a lone space head (a prepended marker).

    ``ids`` / ``ends`` (character ends) / ``starts`` (byte starts) of the placed
    tokens; ``heads``: where each group begins.  # -> [n_groups] bool, [n_groups] bool
    """
    exact = np.ones(len(heads), dtype=bool)
    marked = np.zeros(len(heads), dtype=bool)
    bounds = np.append(heads, len(ids))
    multi = np.flatnonzero(np.diff(bounds) > 1)
    surfaces, utf8, boc = table.spelt, index.utf8, index.byte_of_char
    id_list = ids.tolist()
    for g in multi.tolist():
        a, b = int(bounds[g]), int(bounds[g + 1])
        members = id_list[a:b]
        if not all(0 <= i < table.size for i in members):
            exact[g] = False
            continue
        spelt = b"".join([surfaces[i] for i in members])
        text = utf8[int(starts[a]) : int(boc[ends[a:b].max()])]
        exact[g] = spelt == text
        marked[g] = surfaces[members[0]] == b" " and spelt[1:] == text
    return exact, marked


def spells_text(table: TokenTable) -> bool:
    """Whether ``table``'s tokens can spell a text byte for byte (`exact_anchors`).

    Not a tokenizer whose only whitespace is a marker before each word (T5's): where its
    tokens happen to spell a text, a lone marker still stands for the next word, not for
    the space before it, and only its offsets say so."""
    return table.kind in ("byte_level", "metaspace") and not table.folds and not table.marks_words


def exact_anchors(index: TextIndex, table: TokenTable, ids: Any) -> np.ndarray | None:
    """Anchors without offsets, for tokenizers whose token bytes spell the text exactly.

    Byte-level and byte-fallback tokenizers (that do not fold case) reproduce the
    text byte for byte, so each token's byte span is the running sum of surface
    lengths; this checks that (allowing one space the tokenizer prepended) and
    returns None when it does not hold. The anchors equal those of `anchors` on
    the offset mapping, for about a third of the cost.  # [n] -> [n]
    """
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if not spells_text(table) or not len(ids):
        return None
    if ids.max() >= table.size or ids.min() < -table.size:
        return None  # not a token of this vocabulary
    lens = table.surface_len[ids]  # [n]
    be = np.cumsum(lens)  # [n]
    nb = len(index.utf8)
    shift = int(be[-1]) - nb  # 1: a prepended marker space, which stands for no text
    if shift not in (0, 1):
        return None
    # The tokens' bytes, gathered from the table's concatenated surfaces.  # [nb + shift]
    offsets = np.repeat(table.surface_start[ids] - (be - lens), lens)
    joined = table.surface_bytes[offsets + np.arange(len(offsets))]
    if shift and joined[0] != 0x20:
        return None
    if joined[shift:].tobytes() != index.utf8:
        return None
    be -= shift
    bs = np.maximum(be - lens, 0)
    be = np.maximum(be, 0)
    inside = np.zeros(len(ids), dtype=bool)
    mid = bs < nb
    inside[mid] = ~index.char_starts[bs[mid]]
    return _byte_anchors(index, bs, be, inside, be > bs)
