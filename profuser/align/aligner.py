"""`TokenAligner`: one (source, target) tokenizer pair, aligned by character anchors."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from profuser.align.chars import TextIndex
from profuser.align.project import Projection, project_to_target
from profuser.align.spans import (
    anchors,
    exact_anchors,
    has_offsets,
    offset_backend,
    offset_spans,
    walk_spans,
)
from profuser.align.surface import TokenTable, build_token_table
from profuser.align.topk import merge_topk
from profuser.align.vocab_map import VocabMap, build_vocab_map


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
    >= 0, so one vectorised merge (searchsorted) finds every match.
    """
    src_idx = np.flatnonzero(source_anchors >= 0)  # [m]
    src = source_anchors[src_idx]  # [m] strictly increasing
    out = np.full(len(target_anchors), -1, dtype=np.int64)
    if len(src) == 0:
        return out
    pos = np.minimum(np.searchsorted(src, target_anchors), len(src) - 1)  # [n_t]
    hit = (target_anchors >= 0) & (src[pos] == target_anchors)
    out[hit] = src_idx[pos[hit]]
    return out


class TokenAligner:
    """Aligns texts and maps top-k candidates from ``source_tokenizer`` to ``target_tokenizer``.

    Any two Hugging Face tokenizers. Tokens are placed in the text from their own
    bytes where those spell it exactly, else from fast tokenizers' offset
    mappings, else (slow tokenizers, or ``use_offsets=False``) from token strings
    alone (`profuser.align.spans.walk_spans`). The vocabulary map is built on
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

    @cached_property
    def vocab_map(self) -> VocabMap:
        """The source -> target vocabulary map (built or loaded once)."""
        return build_vocab_map(
            self.source,
            self.target,
            cache=self.cache,
            tables=(self.source_table, self.target_table),
        )

    def _side(
        self,
        tok: Any,
        table: TokenTable,
        offsets: bool,
        index: TextIndex,
        ids: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, anchors) of one side; given ``ids`` are kept and placed in the text.

        Cheapest first: token bytes that spell the text exactly, then the offset
        mapping of a fresh encoding (when it gives the same ids), then the walk.
        """
        if ids is None:
            if offsets:
                enc = self._backends[id(tok)].encode(index.text, add_special_tokens=False)
                id_list = enc.ids
                id_arr = np.asarray(id_list, dtype=np.int64)
                anc = exact_anchors(index, table, id_list)
                if anc is None:
                    anc = anchors(index, offset_spans(enc), *self._token_facts(table, id_arr))
                return id_arr, anc
            ids = tok.encode(index.text, add_special_tokens=False)
        id_arr = np.asarray(ids, dtype=np.int64)
        anc = exact_anchors(index, table, id_arr.tolist())
        if anc is not None:
            return id_arr, anc
        facts = self._token_facts(table, id_arr)
        if offsets:
            enc = self._backends[id(tok)].encode(index.text, add_special_tokens=False)
            if np.array_equal(id_arr, enc.ids):  # the plain encoding after all: its offsets
                return id_arr, anchors(index, offset_spans(enc), *facts)
        return id_arr, anchors(index, walk_spans(index, table, id_arr), *facts)

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
        index = TextIndex(text)
        s_ids, s_anc = self._side(
            self.source,
            self.source_table,
            self.source_offsets,
            index,
            None if source_ids is None else np.asarray(source_ids),
        )
        t_ids, t_anc = self._side(
            self.target,
            self.target_table,
            self.target_offsets,
            index,
            None if target_ids is None else np.asarray(target_ids),
        )
        return Alignment(
            text=text,
            source_ids=s_ids,
            target_ids=t_ids,
            source_anchors=s_anc,
            target_anchors=t_anc,
            target_to_source=match_anchors(s_anc, t_anc),
            index=index,
        )

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
