"""Brute-force references for the alignment tests, written independently of `profuser.align`.

Token surfaces are decoded here from the tokenizers' own machinery (the byte-level
map is read off the `tokenizers` ByteLevel pre-tokenizer), anchors follow the
documented rule in plain loops, and matching is an O(n * m) double loop.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

from tokenizers import Tokenizer, pre_tokenizers


@lru_cache(maxsize=1)
def byte_level_map() -> dict[str, int]:
    """Printable character -> byte, learnt from what ByteLevel does to real characters."""
    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    out: dict[str, int] = {}
    sample = [chr(c) for c in range(0x00, 0x800)] + [
        "\u0800",
        "\uffff",
        "\U00010000",
        "😀",
        "\U0010ffff",
        "\u4e2d",
        "\ud7ff",
    ]
    sample += [chr(c) for c in range(0x1000, 0x10000, 0x100) if not 0xD800 <= c < 0xE000]
    sample += [chr(c) for c in range(0x10000, 0x110000, 0x4000)]
    for ch in sample:
        ((mapped, _),) = pre.pre_tokenize_str(ch)
        raw = ch.encode("utf-8")
        assert len(mapped) == len(raw)
        for m, b in zip(mapped, raw, strict=True):
            out[m] = b
    # Bytes no valid UTF-8 holds (C0, C1, F5-FF) are printable Latin-1: they stand for themselves.
    for c in pre_tokenizers.ByteLevel.alphabet():
        out.setdefault(c, ord(c))
    assert len(out) == 256 and sorted(out.values()) == list(range(256))
    return out


def surface(kind: str, token: str, special: bool) -> bytes:
    """What one token stands for, per the tokenizer kind used in the tests."""
    if special:
        return token.encode()
    if kind == "byte_bpe":
        m = byte_level_map()
        return bytes(m[c] for c in token)
    if kind == "metaspace_bpe":
        if len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
            return bytes([int(token[3:5], 16)])
        return token.replace("▁", " ").encode()
    return (token[2:] if token.startswith("##") else token).encode()


def encode(tok: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Ids and character offsets through the public transformers call."""
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


KIND_STYLES = {"byte_bpe": "byte_level", "metaspace_bpe": "metaspace", "wordpiece": "wordpiece"}


def ref_anchors(tok: Any, kind: str, text: str) -> tuple[list[int], list[int]]:
    """(ids, byte anchors) by the documented rule: a byte piece starts at its byte, any
    other token at its start character (`char_reference`); each only past the earlier."""
    ids, starts, pieces = char_reference(tok, KIND_STYLES.get(kind, kind), text)
    byte_at = [0]
    for ch in text:
        byte_at.append(byte_at[-1] + len(ch.encode("utf-8")))
    anchors: list[int] = []
    best = -1
    for c, p in zip(starts, pieces, strict=True):
        a = p if p >= 0 else byte_at[c] if c >= 0 else -1
        if a > best:
            anchors.append(a)
            best = a
        else:
            anchors.append(-1)
    return ids, anchors


def ref_target_to_source(src_anchors: list[int], tgt_anchors: list[int]) -> list[int]:
    """For each target anchor, the source token with the same anchor (double loop)."""
    out = []
    for a in tgt_anchors:
        hit = -1
        if a >= 0:
            for i, b in enumerate(src_anchors):
                if b == a:
                    hit = i
                    break
        out.append(hit)
    return out


# --- A plain character-offset reference, for any tokenizer family ------------------------


@cache
def _bare_backend(tok: Any) -> Tokenizer:
    bare = Tokenizer.from_str(tok.backend_tokenizer.to_str())
    bare.post_processor = None
    return bare


def encode_untrimmed(tok: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Ids and character offsets without the post-processor, which may trim whitespace
    off the offsets (GPT-NeoX); the ids are those of the public call."""
    enc = _bare_backend(tok).encode(text, add_special_tokens=False)
    ids, _ = encode(tok, text)
    assert enc.ids == ids
    return ids, [tuple(o) for o in enc.offsets]


def token_bytes(style: str, token: str, added: bool) -> bytes:
    """The text one token spells: ``style`` is how its family writes text in tokens."""
    if added:
        return token.encode()
    if style == "byte_level":
        m = byte_level_map()
        return bytes(m[c] for c in token)
    if style == "metaspace":
        if len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
            return bytes([int(token[3:5], 16)])
        return token.replace("▁", " ").encode()
    return (token[2:] if token.startswith("##") and len(token) > 2 else token).encode()


def _seen_mid_text(tok: Any, style: str, ch: str) -> str:
    """What the tokenizer's normaliser makes of ``ch`` inside a text (``▁`` as a space)."""
    norm = tok.backend_tokenizer.normalizer
    if norm is None:
        return ch
    lead = norm.normalize_str("a")
    seen = norm.normalize_str("a" + ch)[len(lead) :]
    return seen.replace("▁", " ") if style == "metaspace" else seen


def char_reference(tok: Any, style: str, text: str) -> tuple[list[int], list[int], list[int]]:
    """(ids, start character, byte of a byte piece) per token, -1 where none.

    Tokens with an empty offset span, and whitespace tokens whose span does not begin
    with whitespace the normaliser writes as theirs (a marker the tokenizer added,
    unless the whitespace follows that marker in the same token), are left out. Tokens whose spans overlap the earlier ones' join
    their group. When a group's tokens spell the text's bytes under it exactly, its
    later members are byte pieces starting at their byte (a start character only when
    that byte begins one); otherwise every token starts at the first non-whitespace
    character of its span. A start counts only past every earlier start.
    """
    ids, offsets = encode_untrimmed(tok, text)
    added = set(tok.added_tokens_decoder)
    tokens = tok.convert_ids_to_tokens(ids)
    spelt = [token_bytes(style, t, i in added) for t, i in zip(tokens, ids, strict=True)]
    utf8 = text.encode()
    byte_at = [0]
    for ch in text:
        byte_at.append(byte_at[-1] + len(ch.encode()))
    char_at = {b: c for c, b in enumerate(byte_at)}
    groups: list[list[int]] = []
    end = -1
    for k, (s, e) in enumerate(offsets):
        surf = spelt[k].decode("utf-8", "replace")
        if e <= s:
            continue
        own = _seen_mid_text(tok, style, text[s]) if text[s].isspace() else ""
        # A prepended marker may be merged with the text's own whitespace ("▁\n" for a
        # leading newline): that token stands for the whitespace after its marker.
        after_marker = surf[1:2] if surf[0] == " " else ""
        if surf.isspace() and not (
            own.startswith(surf[0]) or (after_marker and own.startswith(after_marker))
        ):
            continue
        if s < end:
            groups[-1].append(k)
        else:
            groups.append([k])
        end = max(end, e)
    starts, pieces = [-1] * len(ids), [-1] * len(ids)
    best = -1
    for group in groups:
        head = offsets[group[0]][0]
        stop = byte_at[max(offsets[k][1] for k in group)]
        together = b"".join(spelt[k] for k in group)
        if (
            len(group) > 1
            and spelt[group[0]] == b" "
            and together[1:] == utf8[byte_at[head] : stop]
        ):
            group = group[1:]  # a marker prepended before the text's own whitespace
            together, head = together[1:], offsets[group[0]][0]
        exact = together == utf8[byte_at[head] : stop]
        at = byte_at[head]
        for k in group:
            s, e = offsets[k]
            c = next((c for c in range(s, e) if not text[c].isspace()), s)
            if exact and k != group[0]:
                pieces[k] = at
                c = char_at.get(at, -1)
            at += len(spelt[k])
            if c > best:
                starts[k] = best = c
    return ids, starts, pieces


def score_alignment(
    t2s: list[int], src: tuple[list[int], list[int]], tgt: tuple[list[int], list[int]]
) -> tuple[int, int]:
    """(wrong pairs, target tokens the reference pairs that ``t2s`` leaves unpaired).

    ``src``/``tgt``: (start characters, piece bytes) from `char_reference`. The
    reference pairs tokens that start at the same character; a pair of byte pieces
    at the same byte is right too; any other pair is wrong.
    """
    s_start, s_piece = src
    t_start, t_piece = tgt
    first_at = {c: i for i, c in enumerate(s_start) if c >= 0}
    piece_at = {b: i for i, b in enumerate(s_piece) if b >= 0}
    wrong = missed = 0
    for j, i in enumerate(t2s):
        want = first_at.get(t_start[j], -1) if t_start[j] >= 0 else -1
        if i < 0:
            missed += want >= 0
        elif i != want and not (t_piece[j] >= 0 and piece_at.get(t_piece[j]) == i):
            wrong += 1
    return wrong, missed
