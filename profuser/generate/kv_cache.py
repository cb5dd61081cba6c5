"""A Hugging Face KV cache of fixed slots, for continuous batching.

Each layer keeps keys and values of ``slots`` rows in one buffer
``[slots, kv_heads, columns, head_dim]``. Every row ends at the same column (the
frontier ``hi``); the model sees columns ``[lo, hi)``, where ``lo`` is the first
column a live row uses, plus the column each decode step writes at ``hi``.
A row that ends frees its slot; a prefilled row is copied into a free slot,
right-aligned to the frontier. Nothing is reallocated per step or per row:
buffers are copied only when the frontier reaches the end of the buffer (its
content moves back to column 0, and the buffer grows if it must) and when the
batch shrinks at the end of a run.

``DynamicLayer`` concatenates the whole cache on every step; this does not.
The attention mask ``[slots, columns]`` lives here too, since it shares the
cache's columns.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


def room_for(columns: int) -> int:
    """Buffer width that holds ``columns`` with a quarter to spare, so the content is moved
    once per ``columns / 4`` decode steps rather than copied on every step."""
    return columns + 16 + columns // 4


class SlotLayer(DynamicLayer):
    """One layer's slot buffers; ``keys``/``values`` are views of the visible columns."""

    def __init__(self, owner: SlotCache, like: torch.Tensor):
        super().__init__()
        self.owner = owner
        shape = (owner.slots, like.shape[1], owner.columns, like.shape[-1])
        self.kbuf = like.new_zeros(shape)
        self.vbuf = like.new_zeros(shape)
        self.dtype, self.device, self.is_initialized = like.dtype, like.device, True
        self._expose(0)

    def _expose(self, extra: int) -> None:
        lo, hi = self.owner.lo, self.owner.hi + extra
        self.keys, self.values = self.kbuf[:, :, lo:hi], self.vbuf[:, :, lo:hi]

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write a decode step's column(s) at the frontier; keys, values [slots, h, visible, d]."""
        hi, new = self.owner.hi, key_states.shape[-2]
        self.kbuf[:, :, hi : hi + new] = key_states
        self.vbuf[:, :, hi : hi + new] = value_states
        self._expose(new)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.owner.hi - self.owner.lo

    def _unsupported(self, *args, **kwargs) -> None:
        raise NotImplementedError("SlotCache rows are managed by profuser.generate.decoding only")

    # DynamicLayer's versions would act on the views and leave the buffers behind.
    crop = batch_repeat_interleave = batch_select_indices = reorder_cache = _unsupported
    reset = offload = prefetch = _unsupported


class SlotCache(DynamicCache):
    """Slots whose rows all end at the frontier column; see the module docstring."""

    def __init__(self, slots: int, columns: int, device: torch.device | str = "cpu"):
        super().__init__()
        self.layer_class_to_replicate = None  # layers come from the first prefilled cache
        self.slots, self.columns = slots, columns
        self.lo = self.hi = 0
        self.mask = torch.zeros((slots, columns), dtype=torch.long, device=device)
        self.first = torch.zeros(slots, dtype=torch.long)  # [slots] first used column (CPU)

    def visible_mask(self) -> torch.Tensor:
        """[slots, hi - lo + 1]: the visible columns and the one the next step writes."""
        return self.mask[:, self.lo : self.hi + 1]

    def place(
        self,
        fresh: DynamicCache,
        fresh_mask: torch.Tensor,
        slots: torch.Tensor,
        restart: bool = False,
    ) -> None:
        """Copy a prefilled cache's rows ([n, h, width, d] per layer, mask [n, width]) into
        ``slots`` [n] (CPU), right-aligned to the frontier. ``restart`` (no row is live):
        start the columns afresh, so the rows sit where they were prefilled."""
        width = fresh_mask.shape[1]
        if any(type(layer) is not DynamicLayer for layer in fresh.layers):
            kinds = sorted({type(layer).__name__ for layer in fresh.layers})
            raise RuntimeError(
                f"the model's KV cache has {', '.join(kinds)} layers, which continuous batching "
                "cannot copy; use advantage.sampling.backend=vllm for this model"
            )
        if not self.layers:
            self.layers = [SlotLayer(self, layer.keys) for layer in fresh.layers]
            restart = True
        if restart:
            self.lo = self.hi = 0  # _fit below moves the (empty) content to end at ``width``
        self._fit(width)
        start = self.hi - width
        on_device = slots.to(self.mask.device)
        for mine, theirs in zip(self.layers, fresh.layers, strict=True):
            mine.kbuf[on_device, :, start : self.hi] = theirs.keys
            mine.vbuf[on_device, :, start : self.hi] = theirs.values
        self.mask[on_device] = 0
        self.mask[on_device, start : self.hi] = fresh_mask
        leading_pads = (fresh_mask.cumsum(1) == 0).sum(1).cpu()  # [n]
        self.first[slots] = start + leading_pads
        self.lo = min(self.lo, start)
        self._expose()

    def open_column(self, live: torch.Tensor, trim: bool = True) -> None:
        """Make room for one decode step: move or grow the buffers if the frontier is at their
        end, hide leading columns no live row (``live`` [slots] CPU bool) uses when ``trim``,
        and unmask the step's column for every slot (free ones too, so none attends to nothing)."""
        if trim and bool(live.any()):
            self.lo = max(self.lo, int(self.first[live].min()))
        self._fit(0, extra=1)
        self.mask[:, self.hi] = 1
        self._expose()

    def close_column(self) -> None:
        """The step's column is written: advance the frontier."""
        self.hi += 1
        self._expose()

    def keep_slots(self, keep: torch.Tensor) -> None:
        """Keep only slots ``keep`` [k] (CPU; renumbered 0..k-1), dropping hidden columns:
        one copy."""
        self._relayout(room_for(self.hi - self.lo + 1), lo=0, keep=keep)

    def _fit(self, min_hi: int, extra: int = 0) -> None:
        """Move the content so that the frontier is at least ``min_hi`` and ``extra`` columns
        fit after it; grow the buffers when they are too narrow."""
        if self.hi >= min_hi and self.hi + extra <= self.columns:
            return
        width = self.hi - self.lo
        hi = max(width, min_hi)
        columns = max(self.columns, room_for(hi + extra))  # a quarter to spare after a move
        self._relayout(columns, lo=hi - width)

    def _relayout(self, columns: int, lo: int, keep: torch.Tensor | None = None) -> None:
        """Move the visible columns to start at ``lo`` in buffers ``columns`` wide, keeping
        slots ``keep`` (CPU) only when given; the buffers are reused when nothing changes size."""
        width = self.hi - self.lo
        rows = None if keep is None else keep.to(self.mask.device)
        for layer in self.layers:
            for name in ("kbuf", "vbuf"):
                old = getattr(layer, name)
                part = (
                    old[:, :, self.lo : self.hi]
                    if rows is None
                    else old[rows, :, self.lo : self.hi]
                )
                new = (
                    old
                    if rows is None and columns == self.columns
                    else old.new_zeros((len(part), old.shape[1], columns, old.shape[-1]))
                )
                new[:, :, lo : lo + width] = part.clone() if new is old else part
                setattr(layer, name, new)
        part = (
            self.mask[:, self.lo : self.hi] if rows is None else self.mask[rows, self.lo : self.hi]
        )
        self.mask = self.mask.new_zeros((len(part), columns))
        self.mask[:, lo : lo + width] = part
        self.first = (self.first if keep is None else self.first[keep]) + (lo - self.lo)
        self.slots, self.columns, self.lo, self.hi = len(part), columns, lo, lo + width
        self._expose()

    def _expose(self) -> None:
        for layer in self.layers:
            layer._expose(0)
