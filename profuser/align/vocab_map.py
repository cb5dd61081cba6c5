"""Source-vocabulary to target-vocabulary map, built once per pair and cached on disk.

Each source token id goes to the target token that the target would emit
first for the text the source token stands for (its surface, see
`profuser.align.surface`): the exact target token for that text if there is
one, else the longest target token that is a prefix of it. Matching is on
bytes, so byte-level pieces of a multi-byte character and ``<0xNN>`` byte
fallbacks map to the target's own byte pieces where it has them.

Rules the prefix match alone does not settle:

* Contexts. WordPiece spells words without spaces (``foo`` after a space,
  ``##oo`` inside a word), so the text a token stands for depends on what
  precedes it. The map has one row per context of the token's start
  (`profuser.align.chars`): CTX_OTHER (start of text, after punctuation: the
  token's own text), CTX_SPACE (after whitespace: a word-initial WordPiece
  token stands for " foo") and CTX_GLUED (inside a word: a WordPiece target
  answers with its "##" pieces, except for text that starts with punctuation,
  which its pre-tokenizer splits off as a word of its own). For pairs without
  WordPiece the rows agree.
* Whitespace into a tokenizer that drops it (WordPiece) is stripped first;
  text that is only whitespace has no target token there (-1).
* A target that folds case/accents sees the source text folded its way.
* Tie-breaks among target tokens with the same text: added tokens, then
  ordinary tokens, then ``<0xNN>`` byte fallbacks; the lowest id within each.
* Special tokens go by content (the same added token in the target), else by
  role (bos->bos, eos->eos, pad->pad, unk->unk, sep/cls/mask likewise), else to
  the target's unk token, else -1.
* Text the target cannot spell at all goes to its unk token, else -1.

-1 entries carry no target token: `map_topk` drops their mass.

Next to each entry the map records *how* it was reached (``VocabMap.how``, one
of `MAP_KINDS`): ``exact`` (the target token spells the whole text, or is the
same special token), ``prefix`` (it spells a proper prefix, the longest the
target has: the target writes the text in several tokens), ``unk`` (the
target's unk token) or ``dropped`` (-1). `profuser.align.project.count_mass`
sums teacher mass by these kinds.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from profuser.align.chars import (
    BOUNDARY,
    CTX_GLUED,
    CTX_OTHER,
    CTX_SPACE,
    N_CONTEXTS,
    char_class,
)
from profuser.align.surface import TokenTable, build_token_table
from profuser.io import cache_root

MAP_VERSION = 3  # bump when the rules above change: old cache entries stop matching
# How a source token reached its target entry (``VocabMap.how``).
MAP_EXACT, MAP_PREFIX, MAP_UNK, MAP_DROPPED = 0, 1, 2, 3
MAP_KINDS = ("exact", "prefix", "unk", "dropped")


@dataclass
class VocabMap:
    """``ids[context, source_id]`` = target id (-1: none); ``how``: its `MAP_KINDS` index."""

    ids: np.ndarray  # [N_CONTEXTS, V_s] int32
    target_size: int
    key: str = ""
    how: np.ndarray | None = None  # [N_CONTEXTS, V_s] int8; None: derived from ids alone

    def __post_init__(self) -> None:
        if self.how is None:  # a map without kinds: every placed id counts as exact
            self.how = np.where(self.ids >= 0, MAP_EXACT, MAP_DROPPED).astype(np.int8)

    @property
    def source_size(self) -> int:
        return int(self.ids.shape[1])

    def lookup(self, ids: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
        """Target ids for source ``ids`` (-1 and ids >= V_s give -1).  # [n, k], [n] -> [n, k]"""
        ids = np.asarray(ids)
        valid = (ids >= 0) & (ids < self.source_size)
        safe = np.where(valid, ids, 0)
        if context is None:
            mapped = self.ids[CTX_OTHER][safe]
        else:
            ctx = np.asarray(context, dtype=np.int64).reshape(-1, *([1] * (ids.ndim - 1)))
            mapped = self.ids[ctx, safe]
        return np.where(valid, mapped, -1)

    def lookup_how(self, ids: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
        """`MAP_KINDS` index of each lookup (ids outside the map: dropped).  # like `lookup`"""
        ids = np.asarray(ids)
        valid = (ids >= 0) & (ids < self.source_size)
        safe = np.where(valid, ids, 0)
        if context is None:
            how = self.how[CTX_OTHER][safe]
        else:
            ctx = np.asarray(context, dtype=np.int64).reshape(-1, *([1] * (ids.ndim - 1)))
            how = self.how[ctx, safe]
        return np.where(valid, how, MAP_DROPPED).astype(np.int8)

    def with_pairs(self, pairs: dict[int, int]) -> VocabMap:
        """This map with each source id of ``pairs`` sent to its target id in every context,
        counted as exact: for special tokens the rules match only by content or role, such
        as the two chat templates' end-of-turn markers."""
        ids, how = self.ids.copy(), self.how.copy()
        for sid, tid in pairs.items():
            if 0 <= sid < self.source_size and 0 <= tid < self.target_size:
                ids[:, sid], how[:, sid] = tid, MAP_EXACT
        return VocabMap(ids=ids, target_size=self.target_size, key=self.key, how=how)


class _TargetIndex:
    """Target-vocabulary lookup: the target token emitted first for some text."""

    def __init__(self, table: TokenTable) -> None:
        self.table = table
        self.initial: dict[bytes, int] = {}
        self.cont: dict[bytes, int] | None = {} if table.kind == "wordpiece" else None
        # Insert the preferred tokens last so they win: byte fallback < ordinary < added.
        ordinary = table.present & ~table.special
        order = [
            np.flatnonzero(ordinary & table.byte_fallback),
            np.flatnonzero(ordinary & ~table.byte_fallback & ~table.added),
            np.flatnonzero(ordinary & table.added),
        ]
        for group in order:
            for i in group[::-1].tolist():  # lowest id last, so it wins
                s = table.surfaces[i]
                if not s:
                    continue
                if self.cont is not None and table.continuation[i]:
                    self.cont[s] = i
                else:
                    self.initial[s] = i
        self.max_len = max((len(s) for s in self.initial), default=0)
        if self.cont:
            self.max_len = max(self.max_len, max(len(s) for s in self.cont))

    def emit(self, s: bytes, glued: bool) -> tuple[int, int]:
        """(target id, `MAP_KINDS` index) for text ``s``; ``glued``: ``s`` continues a word."""
        t = self.table
        stripped = False
        if t.drops_whitespace or t.folds:
            text = s.decode("utf-8", "ignore")  # a char vocabulary cannot spell stray bytes
            if t.drops_whitespace:
                core = text.lstrip()
                stripped = len(core) < len(text)
                if not core:
                    # Only whitespace: nothing to emit. Only stray bytes: unspellable.
                    return (-1, MAP_DROPPED) if text else self._unk()
                text = core
            s = (t.fold(text) if t.folds else text).encode("utf-8")
        # Inside a word a WordPiece target continues with "##" pieces, unless the text
        # starts with punctuation (or a CJK ideograph): its pre-tokenizer splits there,
        # so the target itself starts a new word ("Paris" + "." -> ".", not "[UNK]").
        cont = glued and not stripped and self.cont is not None and not _splits_word(s)
        d = self.cont if cont else self.initial
        for n in range(min(len(s), self.max_len), 0, -1):
            hit = d.get(s[:n])
            if hit is not None:
                return hit, MAP_EXACT if n == len(s) else MAP_PREFIX
        return self._unk()

    def _unk(self) -> tuple[int, int]:
        unk = self.table.unk_id
        return (unk, MAP_UNK) if unk >= 0 else (-1, MAP_DROPPED)


def _splits_word(s: bytes) -> bool:
    """Whether ``s`` starts with a character a BERT-style pre-tokenizer splits off."""
    first = s[:4].decode("utf-8", "ignore")[:1]
    return bool(first) and char_class(first) == BOUNDARY


def _special_target(src: TokenTable, tgt: TokenTable, sid: int) -> tuple[int, int]:
    content = src.surfaces[sid].decode("utf-8", "replace")
    if content in tgt.content_ids and tgt.special[tgt.content_ids[content]]:
        return tgt.content_ids[content], MAP_EXACT
    for role, rid in src.role_ids.items():
        if rid == sid and role in tgt.role_ids:
            return tgt.role_ids[role], MAP_EXACT
    return (tgt.unk_id, MAP_UNK) if tgt.unk_id >= 0 else (-1, MAP_DROPPED)


def build_map_from_tables(src: TokenTable, tgt: TokenTable) -> tuple[np.ndarray, np.ndarray]:
    """The map between two token tables (uncached): ids and kinds.  # -> 2 x [N_CONTEXTS, V_s]"""
    index = _TargetIndex(tgt)
    out = np.full((N_CONTEXTS, src.size), -1, dtype=np.int32)
    how = np.full((N_CONTEXTS, src.size), MAP_DROPPED, dtype=np.int8)
    # Only a WordPiece side makes the context matter; otherwise compute one row.
    sensitive = src.kind == "wordpiece" or index.cont is not None
    contexts = (CTX_OTHER, CTX_SPACE, CTX_GLUED) if sensitive else (CTX_OTHER,)
    spaceless = src.kind == "wordpiece"
    for sid in np.flatnonzero(src.present).tolist():
        if src.special[sid]:
            out[:, sid], how[:, sid] = _special_target(src, tgt, sid)
            continue
        s = src.surfaces[sid]
        initial = spaceless and not src.continuation[sid] and not src.added[sid]
        for ctx in contexts:
            text = b" " + s if initial and ctx != CTX_OTHER else s
            out[ctx, sid], how[ctx, sid] = index.emit(text, glued=ctx == CTX_GLUED)
    if not sensitive:
        out[:] = out[CTX_OTHER]
        how[:] = how[CTX_OTHER]
    return out, how


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A string that changes whenever the tokenizer's vocabulary or conventions may."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        body = backend.to_str()
    else:
        body = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False)
    added = {
        int(i): [str(t), bool(getattr(t, "special", False))]
        for i, t in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).items()
    }
    specials = {k: str(v) for k, v in (tokenizer.special_tokens_map or {}).items()}
    extra = json.dumps([type(tokenizer).__name__, added, specials], sort_keys=True)
    return body + "\n" + extra


def pair_key(source: Any, target: Any) -> str:
    """Cache key of a (source, target) tokenizer pair."""
    h = hashlib.sha256(f"vocab-map-v{MAP_VERSION}\n".encode())
    for tok in (source, target):
        fp = tokenizer_fingerprint(tok).encode("utf-8")
        h.update(len(fp).to_bytes(8, "little"))
        h.update(fp)
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``$PROFUSER_CACHE/vocab_maps``, else ``~/.cache/profuser/vocab_maps``."""
    return cache_root() / "vocab_maps"


def build_vocab_map(
    source: Any,
    target: Any,
    cache: bool | str | os.PathLike = True,
    tables: tuple[TokenTable, TokenTable] | None = None,
) -> VocabMap:
    """Map from ``source``'s vocabulary to ``target``'s (see module rules).

    ``cache``: True for `default_cache_dir`, a directory, or False for none. The
    entry is keyed by both tokenizers' contents and written atomically, so
    concurrent builders at worst do the work twice.
    """
    key = pair_key(source, target)
    path = None
    if cache:
        folder = default_cache_dir() if cache is True else Path(cache)
        path = folder / f"{key}.npy"
        if path.exists():
            try:
                both = np.load(path)  # [2, N_CONTEXTS, V_s]: ids, kinds
                if both.ndim == 3 and both.shape[:2] == (2, N_CONTEXTS):
                    return VocabMap(
                        ids=both[0], target_size=_size(target), key=key, how=both[1].astype(np.int8)
                    )
            except (OSError, ValueError):
                pass  # a damaged entry is rebuilt below
    src_t, tgt_t = tables or (build_token_table(source), build_token_table(target))
    ids, how = build_map_from_tables(src_t, tgt_t)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.stack([ids, how.astype(np.int32)]))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return VocabMap(ids=ids, target_size=tgt_t.size, key=key, how=how)


def _size(tokenizer: Any) -> int:
    """Vocabulary width as `build_token_table` counts it (max id + 1, added tokens included)."""
    ids = list(tokenizer.get_vocab().values())
    ids += list((getattr(tokenizer, "added_tokens_decoder", {}) or {}).keys())
    return max(ids) + 1 if ids else 0
