"""Prefill: run prompts through a model into a fresh KV cache, sharing common prefixes.

Prompts in a dataset share long prefixes: the chat header and one of a handful
of system messages. :func:`prefill` groups prompts by common token prefix
(:func:`prefix_groups`), runs every distinct prefix once, copies its cache rows
to each member of the group, then runs the remaining suffixes in a second pass.
The suffix block is left-padded, so a row carries padding *between* its prefix
and its suffix. That is exact for models that read token positions from
``position_ids`` (RoPE, learned positions) and wrong for models that count
columns (ALiBi as in MPT, sliding windows): :mod:`profuser.generate.model_probe` decides
once per model whether prefixes may be shared.
"""

from __future__ import annotations

import inspect
import os
import weakref
from collections.abc import Sequence

import torch
import transformers
from packaging.version import Version
from transformers import DynamicCache

# Per model: which of our optional forward arguments it takes.
_TAKES: weakref.WeakKeyDictionary[torch.nn.Module, frozenset[str]] = weakref.WeakKeyDictionary()


def takes(model: torch.nn.Module, name: str) -> bool:
    """Whether ``model.forward`` names the argument ``name`` (position_ids, logits_to_keep)."""
    if model not in _TAKES:
        params = inspect.signature(model.forward).parameters
        names = ("position_ids", "logits_to_keep", "cache", "past_key_values")
        _TAKES[model] = frozenset(n for n in names if n in params)
    return name in _TAKES[model]


# transformers 5.24 renamed the forward's `past_key_values` to `cache` (the old name goes in 5.40).
_DEFAULT_CACHE_ARG = (
    "cache" if Version(transformers.__version__) >= Version("5.24") else "past_key_values"
)


def _cache_arg(model: torch.nn.Module) -> str:
    """The name under which ``model.forward`` takes its KV cache."""
    for name in ("cache", "past_key_values"):
        if takes(model, name):
            return name
    return _DEFAULT_CACHE_ARG  # a forward(**kwargs) wrapper passes it on


def forward_step(
    model: torch.nn.Module,
    ids: torch.Tensor,  # [b, s]
    mask: torch.Tensor,  # [b, cached + s]
    pos: torch.Tensor,  # [b, s]
    cache: DynamicCache,
) -> torch.Tensor:
    """Run ``ids`` through the model on top of ``cache``; next-token logits [b, V]."""
    kwargs = {}
    if takes(model, "position_ids"):
        kwargs["position_ids"] = pos
    if takes(model, "logits_to_keep"):
        kwargs["logits_to_keep"] = 1  # a 128k vocabulary over every prompt position is gigabytes
    kwargs[_cache_arg(model)] = cache
    out = model(input_ids=ids, attention_mask=mask, use_cache=True, **kwargs)
    return out.logits[:, -1]


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> (ids, mask), both [b, longest], right-aligned."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        if s:
            ids[r, width - len(s) :] = torch.tensor(s)
            mask[r, width - len(s) :] = 1
    return ids, mask


def _positions(mask: torch.Tensor, start: torch.Tensor | int = 0) -> torch.Tensor:
    """Position of every slot of a left-padded block [b, s]; padding slots repeat their row's first."""
    return (mask.cumsum(-1) - 1).clamp(min=0) + (
        start[:, None] if isinstance(start, torch.Tensor) else start
    )


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    return len(os.path.commonprefix([list(a), list(b)]))


def prefix_groups(prompts: Sequence[Sequence[int]]) -> list[tuple[int, list[int]]]:
    """Group consecutive prompts (sorted, so shared prefixes sit side by side) by common prefix.

    Returns (prefix length, member rows) per group. Every row keeps at least one
    token of its own, whose logits start its answer. The suffix block is padded
    to its longest suffix, so a row joins the open group only while every
    member's suffix stays within the budget: the longest part of any prompt that
    it shares with neither neighbour (a prompt sharing less than half of itself
    with its neighbours is a group of its own and does not count)."""
    n = len(prompts)
    near = [
        min(
            _common_prefix(prompts[i], prompts[i + 1]), len(prompts[i]) - 1, len(prompts[i + 1]) - 1
        )
        for i in range(n - 1)
    ]  # shared with the next prompt
    budget = 1
    for i, p in enumerate(prompts):
        shared = max(near[i - 1] if i else 0, near[i] if i < n - 1 else 0)
        if 2 * shared >= len(p):
            budget = max(budget, len(p) - shared)
    groups: list[tuple[int, list[int]]] = []
    longest = 0
    for r, p in enumerate(prompts):
        if groups:
            length, members = groups[-1]
            cut = min(length, _common_prefix(prompts[members[0]], p), len(p) - 1)
            if cut >= 1 and max(longest, len(p)) - cut <= budget:
                groups[-1] = (cut, [*members, r])
                longest = max(longest, len(p))
                continue
        groups.append((len(p) - 1, [r]))
        longest = len(p)
    return groups


def prefill_plain(
    model: torch.nn.Module, prompts: Sequence[Sequence[int]], pad_id: int
) -> tuple[DynamicCache, torch.Tensor, torch.Tensor]:
    """All prompts left-padded in one pass: (cache, mask [b, width], next-token logits [b, V])."""
    device = next(model.parameters()).device
    ids, mask = (t.to(device) for t in left_pad(prompts, pad_id))
    cache = DynamicCache()
    logits = forward_step(model, ids, mask, _positions(mask), cache)
    return cache, mask, logits


def prefill_shared(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    groups: Sequence[tuple[int, list[int]]],
    pad_id: int,
) -> tuple[DynamicCache, torch.Tensor, torch.Tensor]:
    """Prefixes once per group, then every row's suffix on a copy of its group's cache rows."""
    device = next(model.parameters()).device
    ids, mask_p = (t.to(device) for t in left_pad([prompts[m[0]][:n] for n, m in groups], pad_id))
    cache = DynamicCache()
    forward_step(model, ids, mask_p, _positions(mask_p), cache)
    owner, cut = [0] * len(prompts), [0] * len(prompts)  # each row's group and prefix length
    for g, (length, members) in enumerate(groups):
        for r in members:
            owner[r], cut[r] = g, length
    rows = torch.tensor(owner, device=device)
    cache.batch_select_indices(rows)  # [b, h, prefix width, d]
    ids, mask_s = (
        t.to(device) for t in left_pad([p[c:] for p, c in zip(prompts, cut, strict=True)], pad_id)
    )
    mask = torch.cat([mask_p[rows], mask_s], dim=1)
    logits = forward_step(
        model, ids, mask, _positions(mask_s, torch.tensor(cut, device=device)), cache
    )
    return cache, mask, logits


def prefill(
    model: torch.nn.Module, prompts: Sequence[Sequence[int]], pad_id: int, share: bool
) -> tuple[DynamicCache, torch.Tensor, torch.Tensor]:
    """Run ``prompts`` into a fresh cache; returns (cache, mask [b, width], next-token
    logits [b, V]). With ``share``, prompts should be sorted so that shared prefixes sit
    side by side; they are then computed once per group."""
    groups = prefix_groups(prompts) if share else []
    if share and len(groups) < len(prompts) and all(n > 0 for n, _ in groups):
        return prefill_shared(model, prompts, groups, pad_id)
    return prefill_plain(model, prompts, pad_id)
