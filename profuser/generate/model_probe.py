"""What a model's forward tolerates, decided once per model before sampling.

The decode loop (:mod:`profuser.generate.decoding`) has two shortcuts that are exact for
most models and wrong for some:

* **Shared prefixes** pad a row *between* its prefix and its suffix. Exact when
  positions come from ``position_ids``; wrong for ALiBi models that count
  columns (MPT) and for sliding windows, which count columns too.
* **Continuous batching** prefills a row on its own and then seats it at the
  cache's frontier, beside rows that started earlier, and later hides leading
  columns. Exact when positions come from ``position_ids``, or when positions
  only matter relative to the last column (ALiBi); wrong when a model counts
  positions from the cache length (RoPE behind a forward that does not take
  ``position_ids``). Such models decode in static batches instead.

Each decision looks at the model's structure first and then checks the logits
of one prompt both ways against the noise that plain left padding causes.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import torch
from transformers import DynamicCache

from profuser.generate.kv_cache import SlotCache, room_for
from profuser.generate.prefill import forward_step, prefill_plain, prefill_shared, takes

GAP = 16  # columns of padding the checks put in a row's way
_SHARING: weakref.WeakKeyDictionary[torch.nn.Module, bool] = weakref.WeakKeyDictionary()
_SEATING: weakref.WeakKeyDictionary[torch.nn.Module, bool] = weakref.WeakKeyDictionary()


def has_sliding_window(model: torch.nn.Module) -> bool:
    """Whether any attention layer of the model is windowed (Mistral v0.1, Gemma 2/3, ...)."""
    config = getattr(model, "config", None)
    if config is None:
        return False
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if any("sliding" in str(t) for t in getattr(text, "layer_types", None) or ()):
        return True
    return bool(getattr(text, "sliding_window", None)) and getattr(text, "use_sliding_window", True)


def _close(got: torch.Tensor, want: torch.Tensor, noise: torch.Tensor, model) -> bool:
    """``got`` within a few times the padding noise of ``want`` (plus a rounding floor)."""
    dtype = next(model.parameters()).dtype
    floor = 4 * torch.finfo(dtype).eps if dtype.is_floating_point else 1e-5
    scale = float(want.abs().max()) + 1e-6
    return float((got - want).abs().max()) <= 4 * float((noise - want).abs().max()) + floor * scale


@torch.inference_mode()
def prefix_sharing_exact(model: torch.nn.Module, prompt: Sequence[int], pad_id: int) -> bool:
    """Whether padding between a prompt's prefix and its suffix leaves its logits unchanged.

    Needs ``position_ids`` and no sliding window; then checked on ``prompt``
    batched with a row ``GAP`` tokens longer: plainly (the prompt's row is
    left-padded) and with a shared prefix (its suffix is padded)."""
    if model in _SHARING:
        return _SHARING[model]
    if not takes(model, "position_ids") or has_sliding_window(model):
        _SHARING[model] = False
        return False
    if len(prompt) < 2:
        return False  # nothing to check on; decided on a longer prompt another time
    prompt, cut = list(prompt), len(prompt) // 2
    longer = prompt + (prompt[cut:] * GAP)[:GAP]
    alone = prefill_plain(model, [prompt], pad_id)[2][0].float()  # [V]
    padded = prefill_plain(model, [prompt, longer], pad_id)[2][0].float()
    shared = prefill_shared(model, [prompt, longer], [(cut, [0, 1])], pad_id)[2][0].float()
    _SHARING[model] = ok = _close(shared, alone, padded, model)
    return ok


def _step(model, cache: DynamicCache, mask: torch.Tensor, token: list[int], pos: list[int]):
    device = mask.device
    ids = torch.tensor(token, device=device)[:, None]
    return forward_step(model, ids, mask, torch.tensor(pos, device=device)[:, None], cache)


@torch.inference_mode()
def seating_exact(model: torch.nn.Module, prompt: Sequence[int], pad_id: int) -> bool:
    """Whether a row prefilled on its own decodes the same when seated at the frontier of a
    cache whose other row is ``GAP`` columns longer (what continuous batching does).

    True without a check when the model takes ``position_ids``."""
    if model in _SEATING:
        return _SEATING[model]
    if takes(model, "position_ids"):
        _SEATING[model] = True
        return True
    if len(prompt) < 2:
        return False
    head, last = list(prompt[:-1]), prompt[-1]
    longer = head + (head * GAP)[:GAP]
    ones = torch.ones((1, 1), dtype=torch.long)
    cache, mask, _ = prefill_plain(model, [head], pad_id)
    alone = _step(model, cache, torch.cat([mask, ones.to(mask.device)], 1), [last], [len(head)])
    cache, mask, _ = prefill_plain(model, [longer, head], pad_id)
    mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
    padded = _step(model, cache, mask, [last, last], [len(longer), len(head)])
    seats = SlotCache(2, room_for(len(longer) + 1), mask.device)
    for slot, row in enumerate((longer, head)):
        fresh, fresh_mask, _ = prefill_plain(model, [row], pad_id)
        seats.place(fresh, fresh_mask, torch.tensor([slot]))
    seats.open_column(torch.tensor([True, True]))
    seated = _step(model, seats, seats.visible_mask(), [last, last], [len(longer), len(head)])
    ok = _close(seated[1].float(), alone[0].float(), padded[1].float(), model)
    _SEATING[model] = ok
    return ok
