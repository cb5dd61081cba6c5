"""Batch encoding for alignment: a whole batch of texts per tokenizer in one call.

A fast tokenizer encodes a batch in its Rust backend, in threads. Offsets cost
about as much again as the tokens themselves, so they are asked for only where
the aligner will read them (`TokenAligner.encode`): a side whose token bytes
spell the text (`profuser.align.spans.exact_anchors`) needs none.

`encode_texts` gives the ids ``tokenizer(text, add_special_tokens=False)`` gives
(the answer ids of `profuser.models.chat.encode_turn`), text by text: through
the backend directly where the tokenizer's call is the plain one that only sets
truncation, padding and special-token splitting on it, else through that call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class TokenBatch:
    """Token ids of a batch of texts, and the `tokenizers.Encoding` of each where its
    offsets were computed by ``backend`` (None: no offsets)."""

    ids: list[list[int]]
    encodings: list[Any] | None = None
    backend: Any = None

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: Sequence[int], lengths: Sequence[int] | None = None) -> TokenBatch:
        """The batch of texts ``rows``, each one's ids cut to at most ``lengths[i]`` tokens
        (its encoding is kept: the aligner reads its offsets only where the ids match)."""
        ids = [self.ids[r] for r in rows]
        if lengths is not None:
            ids = [i[:n] for i, n in zip(ids, lengths, strict=True)]
        encs = None if self.encodings is None else [self.encodings[r] for r in rows]
        return TokenBatch(ids, encs, self.backend)


def backend_encode(backend: Any, texts: Sequence[str], offsets: bool) -> list[Any]:
    """``backend`` (a `tokenizers.Tokenizer`) on ``texts`` without special tokens; without
    offsets (``encode_batch_fast``, tokenizers >= 0.21) unless asked for."""
    texts = list(texts)
    fast = None if offsets else getattr(backend, "encode_batch_fast", None)
    if fast is not None:
        return fast(texts, add_special_tokens=False)
    return backend.encode_batch(texts, add_special_tokens=False)


def _plain_backend(tok: Any) -> Any:
    """``tok``'s backend where calling ``tok`` on texts without special tokens is exactly
    ``backend.encode_batch`` on them (transformers' `TokenizersBackend`, not subclassed in
    how it encodes, with no truncation or padding set and special tokens split as its
    call splits them), else None."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None or not getattr(tok, "is_fast", False):
        return None
    try:
        from transformers.tokenization_utils_base import PreTrainedTokenizerBase
        from transformers.tokenization_utils_tokenizers import TokenizersBackend
    except ImportError:  # transformers < 5: the tokenizer's own call
        return None
    cls = type(tok)
    if not (
        isinstance(tok, TokenizersBackend)
        and cls._encode_plus is TokenizersBackend._encode_plus
        and cls.__call__ is PreTrainedTokenizerBase.__call__
        and cls.set_truncation_and_padding is TokenizersBackend.set_truncation_and_padding
    ):
        return None
    if backend.truncation is not None or backend.padding is not None:
        return None
    if bool(backend.encode_special_tokens) != bool(getattr(tok, "split_special_tokens", False)):
        return None
    return backend


def encode_texts(
    tok: Any, texts: Sequence[str], offsets: bool = True, via: Any = None
) -> TokenBatch:
    """``[tok(t, add_special_tokens=False)["input_ids"] for t in texts]`` in one batch call
    (an empty text has no tokens); with ``offsets``, also the backend's encodings where
    the ids came from it directly.

    ``via``: a copy of ``tok``'s backend without its post-processor
    (`profuser.align.spans.offset_backend`) to encode through instead, where the plain
    backend call applies: without special tokens it gives the same ids, and offsets the
    post-processor has not trimmed."""
    texts = list(texts)
    backend = _plain_backend(tok)
    if backend is not None:
        backend = via or backend
        encs = backend_encode(backend, texts, offsets)
        ids = [e.ids if t else [] for e, t in zip(encs, texts, strict=True)]
        return TokenBatch(ids, encs if offsets else None, backend if offsets else None)
    if not texts:
        return TokenBatch([])
    # A tokenizer's own call may rewrite the text first, so its offsets are not kept.
    out = tok(texts, add_special_tokens=False, return_attention_mask=False)
    return TokenBatch([list(i) if t else [] for i, t in zip(out["input_ids"], texts, strict=True)])
