"""Batched generation with per-example seeded sampling.

Hugging Face `generate` draws from one global random stream, so a row's sample
depends on its batch-mates. Here each row owns a generator seeded from
(run seed, example id, model name), so a row's answer does not depend on batch
size, order or shard count (up to the floating-point noise of padded batched
matmuls).

The decode loop is our own, over the model's KV cache (:mod:`profuser.generate.decoding`):
a row that has ended its turn leaves the batch and a queued prompt takes its
place, and prompts that share a prefix prefill it once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from profuser.generate.decoding import decode, sample_rows

__all__ = ["Generation", "example_seed", "generate", "sample_rows"]


def example_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (run seed, example id, model name)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class Generation:
    """One generated answer."""

    text: str
    num_tokens: int
    hit_limit: bool  # stopped by max_new_tokens rather than end of turn


def generate(
    model: torch.nn.Module,
    tok: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    seeds: Sequence[int],
    *,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_new_tokens: int = 256,
    batch_size: int = 16,
    stop_ids: Sequence[int] = (),
    valid_vocab: int | None = None,
    share_prefixes: bool = True,
    progress: str | None = None,
) -> list[Generation]:
    """Generate one answer per prompt (greedy when ``temperature`` is 0).

    Up to ``batch_size`` rows decode together, refilled from the queue as rows end;
    prompts that share a prefix (chat header, system message) prefill it once
    unless ``share_prefixes`` is false (see :mod:`profuser.generate.decoding`)."""
    valid_vocab = valid_vocab or len(tok)
    encoded = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    eos_ids = sorted({*stop_ids} or ({tok.eos_token_id} - {None}))
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos_ids[0]
    bar = tqdm(total=len(prompts), desc=progress, disable=progress is None, leave=False)
    rows = decode(
        model,
        encoded,
        seeds,
        pad_id=pad,
        eos_ids=eos_ids,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        valid_vocab=valid_vocab,
        batch_size=batch_size,
        share_prefixes=share_prefixes,
        on_done=bar.update,
    )
    bar.close()
    return [
        Generation(
            text=tok.decode(t, skip_special_tokens=True).strip(), num_tokens=len(t), hit_limit=hit
        )
        for t, hit in rows
    ]
