"""`TokenAligner`: one (source, target) tokenizer pair, aligned by character anchors."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from profuser.align.chars import TextIndex
from profuser.align.encode import TokenBatch, backend_encode, encode_texts
from profuser.align.project import Projection, project_to_target
from profuser.align.spans import (
    anchors,
    exact_anchors,
    has_offsets,
    offset_backend,
    offset_spans,
    spells_text,
)
from profuser.align.surface import TokenTable, build_token_table
from profuser.align.topk import merge_topk
from profuser.align.vocab_map import VocabMap, build_vocab_map
from profuser.align.walk import walk_spans


@dataclass
class Alignment:
    """Two tokenizations of ``text`` and which source token starts where each target token does.

    ``target_to_source[j]`` is the index of the source token anchored at the same
    character as target token ``j`` (see `profuser.align.spans` for the anchor
    rule), or -1. Aligned entries increase strictly.
    """

    text: str
    source_ids: np.ndarray  # [n_s]
    target_ids: np.ndarray  # [n_t]
    source_anchors: np.ndarray  # [n_s] anchor (byte offset into the UTF-8 text), -1 for none
    target_anchors: np.ndarray  # [n_t]
    target_to_source: np.ndarray  # [n_t] source index, -1 where unaligned
    index: TextIndex = field(repr=False)

    @property
    def aligned_fraction(self) -> float:
        """Share of target positions with a source token starting at the same character."""
        n = len(self.target_to_source)
        return float((self.target_to_source >= 0).sum() / n) if n else 1.0

    def source_contexts(self) -> np.ndarray:
        """Context (`profuser.align.chars`) at each source token's anchor.  # [n_s] int8"""
        return self.index.contexts(self.source_anchors)


def match_anchors(source_anchors: np.ndarray, target_anchors: np.ndarray) -> np.ndarray:
    """For each target anchor, the source token with the same anchor, else -1.

    # [n_s], [n_t] -> [n_t]. Both anchor arrays increase strictly where they are
    >= 0, so each anchor names at most one token: a table indexed by anchor (byte
    offsets, so no longer than the text) finds every match at once.
    """
    out = np.full(len(target_anchors), -1, dtype=np.int64)
    src_idx = np.flatnonzero(source_anchors >= 0)  # [m]
    tgt_idx = np.flatnonzero(target_anchors >= 0)
    if len(src_idx) == 0 or len(tgt_idx) == 0:
        return out
    src, tgt = source_anchors[src_idx], target_anchors[tgt_idx]
    top = max(int(src[-1]), int(tgt[-1])) + 1
    if top > 64 * (len(src) + len(tgt)) + 4096:  # sparse anchors: a sorted merge instead
        pos = np.minimum(np.searchsorted(src, tgt), len(src) - 1)
        hit = src[pos] == tgt
        out[tgt_idx[hit]] = src_idx[pos[hit]]
        return out
    slot = np.full(top, -1, dtype=np.int64)
    slot[src] = src_idx
    out[tgt_idx] = slot[tgt]
    return out


class TokenAligner:
    """Aligns texts and maps top-k candidates from ``source_tokenizer`` to ``target_tokenizer``.

    Any two Hugging Face tokenizers. Tokens are placed in the text from their own
    bytes where those spell it exactly, else from fast tokenizers' offset
    mappings, else (slow tokenizers, or ``use_offsets=False``) from token strings
    alone (`profuser.align.walk.walk_spans`). The vocabulary map is built on
    first use and cached on disk (``cache``: see `build_vocab_map`).
    """

    def __init__(
        self,
        source_tokenizer: Any,
        target_tokenizer: Any,
        *,
        use_offsets: bool | None = None,
        cache: bool | str | os.PathLike = True,
    ) -> None:
        self.source = source_tokenizer
        self.target = target_tokenizer
        self.cache = cache
        want = True if use_offsets is None else use_offsets
        self.source_offsets = want and has_offsets(source_tokenizer)
        self.target_offsets = want and has_offsets(target_tokenizer)
        # Backends whose offsets keep the whitespace a post-processor would trim.
        self._backends = {
            id(tok): offset_backend(tok)
            for tok, on in (
                (source_tokenizer, self.source_offsets),
                (target_tokenizer, self.target_offsets),
            )
            if on
        }
        self.source_table: TokenTable = build_token_table(source_tokenizer)
        self.target_table: TokenTable = build_token_table(target_tokenizer)
        # Per side: texts placed so far, and how many by their token bytes alone.
        self._exact_counts = {"source": [0, 0], "target": [0, 0]}

    @cached_property
    def vocab_map(self) -> VocabMap:
        """The source -> target vocabulary map (built or loaded once)."""
        return build_vocab_map(
            self.source,
            self.target,
            cache=self.cache,
            tables=(self.source_table, self.target_table),
        )

    def _parts(self, side: str) -> tuple[Any, TokenTable, bool]:
        """(tokenizer, table, whether it reports offsets) of ``side``: "source" or "target"."""
        if side == "source":
            return self.source, self.source_table, self.source_offsets
        if side == "target":
            return self.target, self.target_table, self.target_offsets
        raise ValueError(f"side must be 'source' or 'target', not {side!r}")

    def _wants_offsets(self, side: str) -> bool:
        """Whether encoding ``side`` should compute offsets: unless its token bytes spell
        the text, which they have done for most texts so far (a tokenizer that drops
        the text's whitespace, T5's, rarely does)."""
        tok, table, offsets = self._parts(side)
        if not (offsets and spells_text(table)) or table.marks_words:
            return offsets
        tries, hits = self._exact_counts[side]
        return tries >= 8 and 2 * hits < tries

    def encode(self, texts: Sequence[str], side: str) -> TokenBatch:
        """``side``'s ids of ``texts`` as ``tokenizer(text, add_special_tokens=False)`` gives
        them (`encode_texts`), one batch call, with offsets where `align_batch` will read
        them. # -> TokenBatch of len(texts)"""
        tok, _, offsets = self._parts(side)
        want = offsets and self._wants_offsets(side)
        # Where the offsets come from a copy without the post-processor (GPT-NeoX, RoBERTa),
        # encoding through it gives the ids and those offsets at once; `align_batch` would
        # otherwise encode the batch a second time.
        return encode_texts(
            tok, texts, offsets=want, via=self._backends.get(id(tok)) if want else None
        )

    def _sides(
        self,
        side: str,
        indexes: list[TextIndex],
        given: TokenBatch | Sequence[Any] | None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(ids, anchors) of one side for each text; given ids are kept and placed in the text.

        Cheapest first: token bytes that spell the text exactly, then the offset
        mapping of a fresh encoding (when it gives the same ids), then the walk.
        Fresh encodings are made for the whole batch at once, with offsets only for
        the texts that need them.
        """
        tok, table, offsets = self._parts(side)
        backend = self._backends.get(id(tok))
        texts = [index.text for index in indexes]
        encs: list[Any] | None = None  # encodings with ``backend``'s offsets, per text
        if given is None and offsets:
            want = self._wants_offsets(side)
            got = backend_encode(backend, texts, want)
            id_lists: Sequence[Any] = [e.ids for e in got]
            encs = got if want else None
        elif given is None:
            id_lists = [tok.encode(t, add_special_tokens=False) for t in texts]
        elif isinstance(given, TokenBatch):
            id_lists = given.ids
            if offsets and given.encodings is not None and given.backend is backend:
                encs = given.encodings
        else:
            id_lists = given
        if len(id_lists) != len(texts):
            raise ValueError(f"{len(id_lists)} {side} id lists for {len(texts)} texts")
        out = []
        pending = []
        counts = self._exact_counts[side]
        for i, (index, ids) in enumerate(zip(indexes, id_lists, strict=True)):
            if isinstance(ids, list):  # fromiter reads a list faster than asarray
                arr = np.fromiter(ids, dtype=np.int64, count=len(ids))
            else:
                arr = np.asarray(ids, dtype=np.int64)
            anc = exact_anchors(index, table, arr)
            counts[0] += 1
            counts[1] += anc is not None
            out.append((arr, anc))
            if anc is None:
                pending.append(i)
        if pending and offsets and encs is None:
            fresh = backend_encode(backend, [texts[i] for i in pending], True)
            encs = [None] * len(texts)
            for i, enc in zip(pending, fresh, strict=True):
                encs[i] = enc
        for i in pending:
            index, arr = indexes[i], out[i][0]
            facts = self._token_facts(table, arr)
            enc = encs[i] if encs is not None else None
            if enc is not None and (given is None or np.array_equal(arr, enc.ids)):
                spans = offset_spans(enc)  # the plain encoding after all: its offsets
            else:
                spans = walk_spans(index, table, arr)
            out[i] = (arr, anchors(index, spans, *facts))
        return out

    @staticmethod
    def _token_facts(
        table: TokenTable, ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, TokenTable]:
        """What `anchors` needs besides spans: per-token whitespace-only first code point
        and surface length, the ids and their table.  # [n] -> [n], [n], [n], table"""
        ok = (ids >= 0) & (ids < table.size)
        safe = np.where(ok, ids, 0)
        ws_first = np.where(ok, table.ws_first[safe], -1)
        return ws_first, np.where(ok, table.surface_len[safe], 0), ids, table

    def align(
        self,
        text: str,
        source_ids: np.ndarray | list[int] | None = None,
        target_ids: np.ndarray | list[int] | None = None,
    ) -> Alignment:
        """Align the two tokenizations of ``text`` (encoded without special tokens).

        Pass ``source_ids``/``target_ids`` when the tokens were produced in a larger
        context (a chat template) and differ from encoding ``text`` alone: they are
        placed in ``text`` as given.
        """
        return self.align_batch(
            [text],
            None if source_ids is None else [source_ids],
            None if target_ids is None else [target_ids],
        )[0]

    def align_batch(
        self,
        texts: Sequence[str],
        source_ids: TokenBatch | Sequence[Any] | None = None,
        target_ids: TokenBatch | Sequence[Any] | None = None,
    ) -> list[Alignment]:
        """`align` for each of ``texts``, each side encoded in one batch call.

        ``source_ids``/``target_ids``: None (encode here), one id sequence per text,
        or a `TokenBatch` from `encode` (whose offsets are used where its ids need
        them). The result is the same as `align` text by text.
        """
        indexes = [TextIndex(t) for t in texts]
        src = self._sides("source", indexes, source_ids)
        tgt = self._sides("target", indexes, target_ids)
        return [
            Alignment(
                text=index.text,
                source_ids=s_ids,
                target_ids=t_ids,
                source_anchors=s_anc,
                target_anchors=t_anc,
                target_to_source=match_anchors(s_anc, t_anc),
                index=index,
            )
            for index, (s_ids, s_anc), (t_ids, t_anc) in zip(indexes, src, tgt, strict=True)
        ]

    def map_topk(
        self,
        ids: np.ndarray,
        logprobs: np.ndarray,
        context: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Source top-k candidates to target-vocabulary candidates.  # [n, k], [n, k] -> same

        Each source id goes through the vocabulary map (``context``: per-row
        context of the position, `Alignment.source_contexts`; default: each token's
        own text); mass landing on one target id is summed and each row
        renormalised. Ids the map cannot place (-1, ids >= the source vocabulary,
        e.g. padded model embeddings) lose their mass before renormalising.
        """
        mapped = self.vocab_map.lookup(np.asarray(ids), context)  # [n, k]
        return merge_topk(mapped, logprobs)

    def project(
        self,
        alignment: Alignment,
        source_topk_ids: np.ndarray,
        source_topk_logprobs: np.ndarray,
        policy: str = "onehot_gt",
    ) -> Projection:
        """Source distributions along ``alignment``'s source tokens -> target positions.

        Row i of the inputs is the source distribution that predicts source token i
        (shape [n_s, k]); the result has one row per target token (see
        `project_to_target`).
        """
        if len(source_topk_ids) != len(alignment.source_ids):
            raise ValueError(
                f"{len(source_topk_ids)} source rows for "
                f"{len(alignment.source_ids)} aligned source tokens"
            )
        ids, lps = self.map_topk(source_topk_ids, source_topk_logprobs, alignment.source_contexts())
        return project_to_target(alignment.target_ids, alignment.target_to_source, ids, lps, policy)
