"""What each token of a vocabulary stands for in the text: its *surface* bytes.

Tokenizers spell the same text differently. This module undoes each spelling
convention once per vocabulary, from token strings alone
(`get_vocab`/`convert_ids_to_tokens`), so it works for fast and slow tokenizers:

* ``byte_level`` (GPT-2, Llama-3, NeoX, ...): every character of a token stands
  for one byte through the GPT-2 byte-to-printable map (``Ġ`` = space, ``Ċ`` =
  newline); tokens may hold a fraction of a multi-byte character.
* ``metaspace`` (SentencePiece, Llama-2, T5, ...): ``▁`` is a space; ``<0xNN>``
  byte-fallback tokens are the single byte NN.
* ``wordpiece`` (BERT): no whitespace at all; ``##x`` continues a word, ``x``
  starts one; the normaliser may lower-case and strip accents (detected by
  probing the tokenizer, recorded as ``lowercase``/``strip_accents``).
* ``plain``: token strings are literal text.

Added tokens (special or not) stand for their own content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from profuser.align.chars import WS_CODEPOINTS, fold_text

KINDS = ("byte_level", "metaspace", "wordpiece", "plain")
_BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_ROLES = (
    "bos_token",
    "eos_token",
    "unk_token",
    "pad_token",
    "sep_token",
    "cls_token",
    "mask_token",
)


def _byte_level_alphabet() -> list[str]:
    """The printable character standing for each byte in byte-level BPE vocabularies.

    Bytes that are printable Latin-1 characters stand for themselves; the other
    68 are shifted, in byte order, to the code points from 256 up.
    """
    keep = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    out, shifted = [], 0
    for b in range(256):
        if b in keep:
            out.append(chr(b))
        else:
            out.append(chr(256 + shifted))
            shifted += 1
    return out


BYTE_LEVEL_CHARS = _byte_level_alphabet()
BYTE_OF_CHAR = {c: b for b, c in enumerate(BYTE_LEVEL_CHARS)}
SPACE_CHAR_BYTE_LEVEL = BYTE_LEVEL_CHARS[ord(" ")]  # "Ġ"


def detect_kind(tokens: list[str | None], tokenizer: Any = None) -> str:
    """Guess the marker convention from the vocabulary (works without a fast backend)."""
    if tokenizer is not None and hasattr(tokenizer, "byte_decoder"):
        return "byte_level"  # slow GPT-2 style tokenizers carry their byte map
    n_g = n_meta = n_hash = 0
    for t in tokens:
        if not t:
            continue
        if t[0] == SPACE_CHAR_BYTE_LEVEL:
            n_g += 1
        elif t[0] == "▁":
            n_meta += 1
        elif t.startswith("##") and len(t) > 2:
            n_hash += 1
    best = max(n_g, n_meta, n_hash)
    if best == 0:
        return "plain"
    return "byte_level" if best == n_g else "metaspace" if best == n_meta else "wordpiece"


def token_surface(token: str, kind: str) -> tuple[bytes, bool, bool]:
    """(surface bytes, is ``##`` continuation, is ``<0xNN>`` byte fallback) of one vocab token."""
    if kind == "byte_level":
        try:
            return bytes(BYTE_OF_CHAR[c] for c in token), False, False
        except KeyError:
            return token.encode("utf-8"), False, False
    if kind == "metaspace":
        m = _BYTE_FALLBACK.fullmatch(token)
        if m:
            return bytes([int(m.group(1), 16)]), False, True
        return token.replace("▁", " ").encode("utf-8"), False, False
    if kind == "wordpiece" and token.startswith("##") and len(token) > 2:
        return token[2:].encode("utf-8"), True, False
    return token.encode("utf-8"), False, False


def _probe_folding(tokenizer: Any, kind: str) -> tuple[bool, bool]:
    """Whether the tokenizer lower-cases / strips accents, by tokenizing a probe."""
    try:
        pieces = tokenizer.tokenize("A \u00c9")
    except Exception:  # a tokenizer that cannot tokenize the probe folds nothing we can see
        return False, False
    seen = b"".join(token_surface(p, kind)[0] for p in pieces).decode("utf-8", "replace")
    lowercase = "a" in seen and "A" not in seen
    # An accent kept as a combining mark (NFD, NFKD) is not stripped.
    kept = {"\u00e9", "\u00c9", "\u0301"} & set(seen)
    strip = ("e" in seen or "E" in seen) and not kept
    return lowercase, strip


def _probe_normal_form(tokenizer: Any, kind: str) -> str | None:
    """The Unicode normal form the tokenizer's normaliser applies, by tokenizing probes:
    "e" + U+0301 composed (C), "é" decomposed (D), the ligature "ﬁ" spelt "fi" (K)."""

    def seen(probe: str) -> str:
        pieces = tokenizer.tokenize(probe)
        return b"".join(token_surface(p, kind)[0] for p in pieces).decode("utf-8", "replace")

    try:
        composes = "\u00e9" in seen("e\u0301")
        decomposes = "\u0301" in seen("\u00e9")
        compat = seen("\ufb01").strip() == "fi"
    except Exception:  # a tokenizer that cannot tokenize the probes: no form we can see
        return None
    if decomposes:
        return "NFKD" if compat else "NFD"
    if composes or compat:
        return "NFKC" if compat else "NFC"
    return None


def _probe_prepends(tokenizer: Any, kind: str) -> bool:
    """Whether the tokenizer writes a marker space before a text that starts with a space
    (Llama-2's ``Prepend`` normaliser: " a" -> "▁▁a"; Metaspace's own prepending skips it)."""
    if kind != "metaspace":
        return False
    try:
        pieces = tokenizer.tokenize(" a")
    except Exception:  # a tokenizer that cannot tokenize the probe prepends nothing we see
        return False
    return b"".join(token_surface(p, kind)[0] for p in pieces) == b"  a"


def _probe_marks_words(tokenizer: Any, kind: str) -> bool:
    """Whether the tokenizer drops the text's whitespace and marks each word with ``▁``
    instead (T5: WhitespaceSplit, then Metaspace), by tokenizing a tab and a newline."""
    if kind != "metaspace":
        return False
    try:
        pieces = tokenizer.tokenize("a\tb\nc")
    except Exception:  # a tokenizer that cannot tokenize the probe: nothing we can see
        return False
    return b"".join(token_surface(p, kind)[0] for p in pieces) == b" a b c"


def _folded(surface: bytes, lowercase: bool, strip: bool) -> bytes:
    """``surface`` as a folding normaliser writes it; bytes of a partial character
    (byte-level or ``<0xNN>`` pieces) are left as they are."""
    try:
        text = surface.decode("utf-8")
    except UnicodeDecodeError:
        return surface
    return fold_text(text, lowercase, strip).encode()


def _whitespace_seen(tokenizer: Any, kind: str) -> dict[int, int]:
    """Whitespace code points the tokenizer's normaliser rewrites inside a text, mapped
    to the first code point it writes instead (in surface terms: ``▁`` is a space)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    norm = getattr(backend, "normalizer", None) if backend is not None else None
    if norm is None:
        return {}
    out = {}
    try:
        lead = norm.normalize_str("x")
        for cp in WS_CODEPOINTS.tolist():
            seen = norm.normalize_str("x" + chr(cp))
            if not seen.startswith(lead) or len(seen) == len(lead):
                continue
            ch = seen[len(lead)]
            ch = " " if kind == "metaspace" and ch == "\u2581" else ch
            if ord(ch) != cp and ch.isspace():
                out[cp] = ord(ch)
    except Exception:  # a normaliser that cannot run here rewrites nothing we can see
        return {}
    return out


@dataclass
class TokenTable:
    """Per-id facts of one vocabulary, as numpy arrays of width ``size``."""

    kind: str
    size: int  # max id + 1 (ids inside it may be holes)
    surfaces: list[bytes]  # [size] text each id stands for (folded if the tokenizer folds)
    present: np.ndarray  # [size] bool: the id exists
    special: np.ndarray  # [size] bool: a special token (bos/eos/pad/... or special added token)
    added: np.ndarray  # [size] bool: an added token (matched as a whole in raw text)
    continuation: np.ndarray  # [size] bool: WordPiece "##" piece
    byte_fallback: np.ndarray  # [size] bool: "<0xNN>" piece
    ws_first: np.ndarray  # [size] int64: first code point of a whitespace-only surface, else -1
    lowercase: bool
    strip_accents: bool
    unk_id: int  # -1 when the tokenizer has no unk token
    drops_whitespace: bool  # no ordinary token stands for whitespace (WordPiece-like)
    role_ids: dict[str, int] = field(default_factory=dict)  # "eos_token" -> id
    content_ids: dict[str, int] = field(default_factory=dict)  # added token content -> id
    # Whitespace the normaliser writes as other whitespace, by code point (NFKC: U+3000 -> " ").
    ws_seen: dict[int, int] = field(default_factory=dict)
    # [size] the bytes each token spells before folding (``surfaces`` itself if none).
    spelt: list[bytes] | None = None
    normal_form: str | None = None  # "NFC", "NFKC", "NFD", "NFKD": applied before folding
    prepends: bool = False  # a marker space before every text, even one that starts with a space
    marks_words: bool = False  # its only whitespace is a marker before each word (T5)

    def __post_init__(self) -> None:
        if self.spelt is None:
            self.spelt = self.surfaces

    @cached_property
    def surface_len(self) -> np.ndarray:
        """Surface length of each id in bytes.  # [size]"""
        return np.fromiter(map(len, self.surfaces), dtype=np.int64, count=self.size)

    @cached_property
    def ws_seen_lookup(self) -> np.ndarray:
        """`ws_seen` by code point, -1 for code points it leaves alone (the last entry
        stands for every higher one).  # [max key + 2] int64"""
        out = np.full(max(self.ws_seen, default=-1) + 2, -1, dtype=np.int64)
        for cp, first in self.ws_seen.items():
            out[cp] = first
        return out

    @cached_property
    def surface_bytes(self) -> np.ndarray:
        """Every id's surface, concatenated in id order.  # [sum(surface_len)] uint8"""
        return np.frombuffer(b"".join(self.surfaces), dtype=np.uint8)

    @cached_property
    def surface_start(self) -> np.ndarray:
        """Where each id's surface begins in `surface_bytes`.  # [size]"""
        return np.cumsum(self.surface_len) - self.surface_len

    @property
    def folds(self) -> bool:
        """Whether the tokenizer's normaliser lower-cases or strips accents."""
        return self.lowercase or self.strip_accents

    def fold(self, s: str) -> str:
        """``s`` as this tokenizer's normaliser would see it."""
        return fold_text(s, self.lowercase, self.strip_accents)


def build_token_table(tokenizer: Any) -> TokenTable:
    """Read a Hugging Face tokenizer's vocabulary into a `TokenTable`."""
    vocab: dict[str, int] = dict(tokenizer.get_vocab())
    added_decoder = dict(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    for i, tok in added_decoder.items():
        vocab.setdefault(str(tok), i)
    size = max(vocab.values()) + 1 if vocab else 0
    tokens: list[str | None] = [None] * size
    for t, i in vocab.items():
        tokens[i] = t
    kind = detect_kind([t for i, t in enumerate(tokens) if i not in added_decoder], tokenizer)
    lowercase, strip = _probe_folding(tokenizer, kind)

    special_ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    special_ids |= {i for i, t in added_decoder.items() if getattr(t, "special", False)}
    surfaces: list[bytes] = [b""] * size
    spelt: list[bytes] = [b""] * size
    present = np.zeros(size, dtype=bool)
    flags = np.zeros((3, size), dtype=bool)  # added, continuation, byte_fallback
    ws_first = np.full(size, -1, dtype=np.int64)
    has_ws = False  # any ordinary token with whitespace in it
    content_ids: dict[str, int] = {}
    for i, t in enumerate(tokens):
        if t is None:
            continue
        present[i] = True
        if i in added_decoder:
            content = str(added_decoder[i])
            surf, cont, fb = content.encode("utf-8"), False, False
            flags[0, i] = True
            content_ids.setdefault(content, i)
        else:
            surf, cont, fb = token_surface(t, kind)
        # The whitespace a token stands for, before folding writes all of it as " ".
        text = surf.decode("utf-8", "replace")
        spelt[i] = surf
        if (lowercase or strip) and not flags[0, i]:
            surf = _folded(surf, lowercase, strip)
        surfaces[i] = surf
        flags[1, i], flags[2, i] = cont, fb
        if text.isspace():
            ws_first[i] = ord(text[0])
        if not has_ws and not flags[0, i] and any(c.isspace() for c in text):
            has_ws = True
    special = np.zeros(size, dtype=bool)
    special[[i for i in special_ids if 0 <= i < size]] = True
    role_ids = {}
    for role in _ROLES:
        rid = getattr(tokenizer, f"{role}_id", None)
        if isinstance(rid, int) and 0 <= rid < size:
            role_ids[role] = rid
    return TokenTable(
        kind=kind,
        size=size,
        surfaces=surfaces,
        present=present,
        special=special,
        added=flags[0],
        continuation=flags[1],
        byte_fallback=flags[2],
        ws_first=ws_first,
        lowercase=lowercase,
        strip_accents=strip,
        unk_id=role_ids.get("unk_token", -1),
        drops_whitespace=not has_ws,
        role_ids=role_ids,
        content_ids=content_ids,
        ws_seen=_whitespace_seen(tokenizer, kind),
        spelt=spelt if lowercase or strip else None,
        normal_form=_probe_normal_form(tokenizer, kind),
        prepends=_probe_prepends(tokenizer, kind),
        marks_words=_probe_marks_words(tokenizer, kind),
    )
