"""Brute-force references for the alignment tests, written independently of `profuser.align`.

Token surfaces are decoded here from the tokenizers' own machinery (the byte-level
map is read off the `tokenizers` ByteLevel pre-tokenizer), anchors follow the
documented rule in plain loops, and matching is an O(n * m) double loop.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from tokenizers import pre_tokenizers


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


def ref_anchors(tok: Any, kind: str, text: str) -> tuple[list[int], list[int]]:
    """(ids, byte anchors) by the documented rule, in plain Python."""
    ids, offsets = encode(tok, text)
    specials = set(tok.all_special_ids) | set(tok.added_tokens_decoder)
    tokens = tok.convert_ids_to_tokens(ids)
    byte_at = [0]
    for ch in text:
        byte_at.append(byte_at[-1] + len(ch.encode("utf-8")))
    anchors: list[int] = []
    best = -1
    prev_end = -1
    piece_byte = 0
    for tid, t, (s, e) in zip(ids, tokens, offsets, strict=True):
        surf = surface(kind, t, tid in specials)
        surf_text = surf.decode("utf-8", "replace")
        inserted = surf_text.isspace() and e > s and text[s] != surf_text[0]
        if e <= s or inserted:
            anchors.append(-1)
            continue
        if s < prev_end:
            start = piece_byte
            a = start if start < byte_at[e] else -1
        else:
            start = byte_at[s]
            c = next((c for c in range(s, e) if not text[c].isspace()), s)
            a = byte_at[c]
        piece_byte = start + len(surf)
        prev_end = max(prev_end, e)
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
