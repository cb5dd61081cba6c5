"""Batched generation with per-example seeded sampling.

Hugging Face `generate` draws from one global random stream, so a row's sample
depends on its batch-mates. Here each row owns a generator seeded from
(run seed, example id, model name), so a row's answer does not depend on batch
size, order or shard count (up to the floating-point noise of padded batched
matmuls).

The decode loop is our own, over the model's KV cache: prompts are left-padded,
and a row that has ended its turn leaves the batch (its cache rows are dropped),
so a batch costs what its live rows cost, not what its longest answer costs.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache, PreTrainedTokenizerBase


def example_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (run seed, example id, model name)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def sample_rows(
    logits: torch.Tensor, uniforms: torch.Tensor, temperature: float, top_p: float
) -> torch.Tensor:
    """One token per row: temperature, then the smallest top-p prefix, inverse-CDF sampled
    with that row's own uniform draw. ``logits`` [b, V], ``uniforms`` [b] -> ids [b].
    Greedy when temperature is 0."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    keep = (sorted_p.cumsum(dim=-1) - sorted_p) < top_p  # the smallest prefix reaching top_p
    cum = (sorted_p * keep).cumsum(dim=-1)
    u = uniforms.to(cum.device)
    pick = torch.searchsorted(cum, (u * cum[:, -1]).unsqueeze(1).contiguous(), right=True)
    return order.gather(1, pick.clamp(max=cum.shape[1] - 1))[:, 0]


class SeededSampler:
    """Callable form of :func:`sample_rows` on HF-style ``(input_ids, scores)``: returns
    scores that are 0 at the drawn token and -inf elsewhere."""

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float, valid_vocab: int):
        self.gens = [torch.Generator().manual_seed(s) for s in seeds]
        self.temperature, self.top_p, self.valid_vocab = temperature, top_p, valid_vocab

    def __call__(self, input_ids: torch.Tensor | None, scores: torch.Tensor) -> torch.Tensor:
        u = torch.stack([torch.rand((), generator=g) for g in self.gens])
        picks = sample_rows(scores[:, : self.valid_vocab], u, self.temperature, self.top_p)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, picks[:, None], 0.0)
        return out


@dataclass
class Generation:
    """One generated answer."""

    text: str
    num_tokens: int
    hit_limit: bool  # stopped by max_new_tokens rather than end of turn


def _takes_position_ids(model: torch.nn.Module) -> bool:
    return "position_ids" in inspect.signature(model.forward).parameters


@torch.inference_mode()
def decode_batch(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    seeds: Sequence[int],
    *,
    pad_id: int,
    eos_ids: Sequence[int],
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    valid_vocab: int,
) -> list[tuple[list[int], bool]]:
    """Decode one batch; returns each row's (new tokens without the end marker, hit limit)."""
    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for r, p in enumerate(prompts):
        ids[r, width - len(p) :] = torch.tensor(p)
        mask[r, width - len(p) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    with_pos = _takes_position_ids(model)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)  # [b, width]; left padding shifts positions
    cache = DynamicCache()
    kwargs = {"position_ids": pos} if with_pos else {}
    logits = model(
        input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=True, **kwargs
    ).logits[:, -1]
    live = list(range(len(prompts)))  # original row of each live row
    # Each row's whole stream of uniforms, drawn up front from its own generator.
    draws = torch.stack(
        [torch.rand(max_new_tokens, generator=torch.Generator().manual_seed(s)) for s in seeds]
    )
    out: list[list[int]] = [[] for _ in prompts]
    ended = [False] * len(prompts)
    next_pos = pos[:, -1] + 1  # [b]
    eos = torch.tensor(list(eos_ids), device=device)
    for step in range(max_new_tokens):
        toks = sample_rows(logits[:, :valid_vocab], draws[:, step], temperature, top_p)  # [b]
        stop = torch.isin(toks, eos)
        for r, t, s in zip(live, toks.tolist(), stop.tolist(), strict=True):
            if s:
                ended[r] = True
            else:
                out[r].append(t)
        if step == max_new_tokens - 1 or bool(stop.all()):
            break
        if bool(stop.any()):
            keep = (~stop).nonzero()[:, 0]
            cache.batch_select_indices(keep)
            mask, toks, next_pos = mask[keep], toks[keep], next_pos[keep]
            live = [live[j] for j in keep.tolist()]
            draws = draws[keep.cpu()]
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        kwargs = {"position_ids": next_pos[:, None]} if with_pos else {}
        logits = model(
            input_ids=toks[:, None],
            attention_mask=mask,
            past_key_values=cache,
            use_cache=True,
            **kwargs,
        ).logits[:, -1]
        next_pos = next_pos + 1
    return [(out[r], not ended[r] and len(out[r]) >= max_new_tokens) for r in range(len(prompts))]


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
    progress: str | None = None,
) -> list[Generation]:
    """Generate one answer per prompt (greedy when ``temperature`` is 0), batched by prompt length."""
    valid_vocab = valid_vocab or len(tok)
    encoded = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    results: list[Generation | None] = [None] * len(prompts)
    eos_ids = sorted({*stop_ids} or ({tok.eos_token_id} - {None}))
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos_ids[0]
    bar = tqdm(total=len(prompts), desc=progress, disable=progress is None, leave=False)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        rows = decode_batch(
            model,
            [encoded[i] for i in idx],
            [seeds[i] for i in idx],
            pad_id=pad,
            eos_ids=eos_ids,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            valid_vocab=valid_vocab,
        )
        for i, (toks, hit) in zip(idx, rows, strict=True):
            text = tok.decode(toks, skip_special_tokens=True).strip()
            results[i] = Generation(text=text, num_tokens=len(toks), hit_limit=hit)
        bar.update(len(idx))
    bar.close()
    return [r for r in results if r is not None]
