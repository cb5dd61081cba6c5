"""Character spans of tokens without an offset mapping (slow tokenizers).

`walk_spans` recovers each token's span from the token strings alone, matched against
the text as the tokenizer's normaliser writes it; `profuser.align.spans` then finds the
anchors from those spans as from a fast tokenizer's offsets.
"""

from __future__ import annotations

import numpy as np

from profuser.align.chars import WORD, TextIndex, seen_bytes, word_runs
from profuser.align.surface import TokenTable

# Bytes searched ahead to re-synchronise after a token that does not match at
# the cursor; bounds the fallback to linear time.
RESYNC_WINDOW = 256


def walk_spans(index: TextIndex, table: TokenTable, ids: np.ndarray) -> np.ndarray:
    """Character spans of ``ids`` in the text, from token strings only.  # [n] -> [n, 2]

    For tokenizers without offset mappings. One left-to-right pass: each token's
    surface bytes are matched at the cursor (allowing for a marker space the
    text lacks, and for whitespace the tokenizer dropped); a token that does not
    match is searched for a bounded distance ahead (so the walk stays linear);
    unknown-token ids take the words of the gap before the next matched token.
    Tokens that cannot be placed get (-1, -1).
    """
    tb, char_of, end_of = seen_bytes(index, table.lowercase, table.strip_accents, table.normal_form)
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

    def room(b: int) -> bool:
        """Whether the gap before byte ``b`` holds a word for every pending unknown token."""
        lo, hi = int(char_of[gap_start]), int(char_of[b])
        return len(word_runs(index, lo, hi, table.strip_accents)) >= len(pending)

    n = len(ids)
    out = np.full((n, 2), -1, dtype=np.int64)  # byte spans first, characters at the end
    in_chars = np.zeros(n, dtype=bool)  # rows already in characters (unknown tokens)
    surfaces = table.surfaces
    unk = table.unk_id
    pending: list[int] = []  # unknown tokens waiting for the next placed token
    gap_start = 0
    p = 0
    id_list = ids.tolist()
    segment = True  # at the start of the text or after an added token
    for i, tid in enumerate(id_list):
        if not (0 <= tid < table.size):
            pending.append(i)
            segment = False
            continue
        starts_segment, segment = segment, bool(table.added[tid])
        sb = surfaces[tid]
        if starts_segment and table.prepends and sb == b" " and i + 1 < n:
            # Prepended before the text's own whitespace (Llama-2's "▁▁x" for " x"):
            # the marker comes first, as in `exact_anchors` and `anchors`.
            nxt = id_list[i + 1]
            if 0 <= nxt < table.size and surfaces[nxt][:1] == b" " and tb.startswith(b" ", p):
                out[i] = (p, p)
                continue
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
        elif not sb or (table.marks_words and not sb.strip()):
            out[i] = (p, p)  # nothing, or a word's marker standing for no whitespace
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
                if not after_unknown or (word_start(at) and room(at)):
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
    c1 = np.where(b1 > b0, end_of[np.maximum(b1 - 1, 0)], c0)
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
    runs = word_runs(index, int(lo), int(hi), marks_vanish)
    for row, (a, b) in zip(rows, runs, strict=False):
        out[row] = (a, b)
        in_chars[row] = True
