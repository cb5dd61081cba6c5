"""Continuous batching: sample every prompt's answer over one running batch.

A static batch runs until its longest answer ends. Here a row that ends frees
its slot of the cache (:mod:`profuser.generate.kv_cache`); once a quarter of the slots
are free, the next queued prompts are prefilled (:mod:`profuser.generate.prefill`,
shared prefixes computed once) and copied into them. When the queue is empty
the batch shrinks to its live rows once a quarter of it is free.

Each row samples from its own stream of uniforms (drawn from its own seed), so
its answer does not depend on which rows it shares a batch with.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from profuser.generate.kv_cache import SlotCache, room_for
from profuser.generate.model_probe import prefix_sharing_exact, seating_exact
from profuser.generate.prefill import forward_step, prefill

TOP_CANDIDATES = 64  # candidates sorted per row before falling back to the whole vocabulary


def _canonical(probs: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reorder candidates [b, k] by probability, ties by ascending token id, so that the
    order does not depend on how a sort or top-k happened to break ties."""
    ids, by_id = ids.sort(dim=-1)
    probs, order = probs.gather(1, by_id).sort(dim=-1, descending=True, stable=True)
    return probs, ids.gather(1, order)


def _nucleus_draw(
    probs: torch.Tensor, ids: torch.Tensor, uniforms: torch.Tensor, top_p: float
) -> torch.Tensor:
    """Inverse-CDF draw from the smallest prefix of ``probs`` [b, k] (canonical order)
    whose mass reaches ``top_p``; ``uniforms`` [b] -> token ids [b]."""
    cum = probs.cumsum(dim=-1)
    kept = probs * ((cum - probs) < top_p)
    kept_cum = kept.cumsum(dim=-1)
    target = (uniforms.to(kept_cum.device) * kept_cum[:, -1]).unsqueeze(1).contiguous()
    pick = torch.searchsorted(kept_cum, target, right=True).clamp(max=probs.shape[1] - 1)
    return ids.gather(1, pick)[:, 0]


def sample_rows(
    logits: torch.Tensor, uniforms: torch.Tensor, temperature: float, top_p: float
) -> torch.Tensor:
    """One token per row: temperature, then the smallest top-p prefix (ties broken by token
    id), inverse-CDF sampled with that row's own uniform draw. ``logits`` [b, V],
    ``uniforms`` [b] -> ids [b]. Greedy when temperature is 0.

    A row's token depends on its own logits and uniform only: the nucleus is taken from
    the top 64 candidates when it lies among the ones strictly above the 64th (which
    fixes it whatever the tie-breaking), else from a full stable sort of that row."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)  # [b, V]
    rows, vocab = probs.shape
    out = torch.empty(rows, dtype=torch.long, device=probs.device)
    fits = torch.zeros(rows, dtype=torch.bool, device=probs.device)
    if top_p < 1 and vocab > TOP_CANDIDATES:
        top, ids = _canonical(*probs.topk(TOP_CANDIDATES, dim=-1))  # [b, k]
        above = (top > top[:, -1:]).sum(dim=-1)  # [b] candidates strictly above the k-th
        mass = top.cumsum(dim=-1).gather(1, (above - 1).clamp(min=0)[:, None])[:, 0]
        fits = (above > 0) & (mass >= top_p)
        if bool(fits.any()):
            out[fits] = _nucleus_draw(top[fits], ids[fits], uniforms[fits.cpu()], top_p)
    rest = ~fits
    if bool(rest.any()):
        full, ids = probs[rest].sort(dim=-1, descending=True, stable=True)  # ties: lower id first
        out[rest] = _nucleus_draw(full, ids, uniforms[rest.cpu()], top_p)
    return out


def _draws(seeds: Sequence[int], rows: list[int], max_new: int) -> torch.Tensor:
    """Each row's whole stream of uniforms [n, max_new], from its own generator."""
    return torch.stack(
        [torch.rand(max_new, generator=torch.Generator().manual_seed(seeds[r])) for r in rows]
    )


@dataclass
class _Slots:
    """What the running batch knows of each cache slot. CPU tensors, except ``next_pos``
    and ``logits``, which live on the model's device."""

    row: list[int]  # prompt index held by each slot (-1: none yet)
    alive: torch.Tensor  # [slots] bool
    steps: torch.Tensor  # [slots] tokens sampled so far
    draws: torch.Tensor  # [slots, max_new] each row's own uniforms
    next_pos: torch.Tensor  # [slots] position of the next token
    logits: torch.Tensor | None = None  # [slots, V] next-token logits

    @classmethod
    def empty(cls, n: int, max_new: int, device: torch.device) -> _Slots:
        return cls(
            row=[-1] * n,
            alive=torch.zeros(n, dtype=torch.bool),
            steps=torch.zeros(n, dtype=torch.long),
            draws=torch.zeros((n, max_new)),
            next_pos=torch.zeros(n, dtype=torch.long, device=device),
        )

    def fill(
        self,
        slots: torch.Tensor,
        rows: list[int],
        lengths: list[int],
        first: torch.Tensor,
        draws: torch.Tensor,
    ) -> None:
        """Prompts ``rows`` (``lengths`` tokens, next-token logits ``first`` [n, V], uniforms
        ``draws`` [n, max_new]) now occupy ``slots`` [n]."""
        on_device = slots.to(self.next_pos.device)
        if self.logits is None:
            self.logits = first.new_zeros((len(self.row), first.shape[-1]))
        self.logits[on_device] = first
        self.next_pos[on_device] = torch.tensor(lengths, device=on_device.device)
        for s, r in zip(slots.tolist(), rows, strict=True):
            self.row[s] = r
        self.alive[slots], self.steps[slots], self.draws[slots] = True, 0, draws

    def keep(self, idx: torch.Tensor) -> None:
        """Keep slots ``idx`` [k] only, renumbered 0..k-1."""
        on_device = idx.to(self.next_pos.device)
        self.row = [self.row[s] for s in idx.tolist()]
        self.alive, self.steps, self.draws = self.alive[idx], self.steps[idx], self.draws[idx]
        self.next_pos, self.logits = self.next_pos[on_device], self.logits[on_device]


@torch.inference_mode()
def decode(
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
    batch_size: int,
    share_prefixes: bool = True,
    on_done: Callable[[int], None] | None = None,
) -> list[tuple[list[int], bool]]:
    """Sample every prompt's answer; returns each prompt's (new tokens without the end
    marker, whether it stopped at ``max_new_tokens``), in the order of ``prompts``.

    ``batch_size`` bounds the rows decoded together; ``on_done(n)`` is told as rows end."""
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    if not prompts or max_new_tokens <= 0:
        return [([], max_new_tokens <= 0) for _ in prompts]
    probe = max(prompts, key=len)
    share = share_prefixes and prefix_sharing_exact(model, probe, pad_id)
    seat = seating_exact(model, probe, pad_id)  # else: static batches, columns never shift
    # Sorted prompts put shared prefixes side by side; sorted by length, they pad less.
    order = sorted(
        range(len(prompts)), key=lambda i: list(prompts[i]) if share else len(prompts[i])
    )
    queue = deque(order)
    device = next(model.parameters()).device
    n = min(batch_size, len(prompts))
    cache = SlotCache(n, room_for(max(len(p) for p in prompts)), device)
    state = _Slots.empty(n, max_new_tokens, device)
    eos = torch.tensor(sorted(set(eos_ids)), dtype=torch.long)
    out: list[list[int]] = [[] for _ in prompts]
    ended = [False] * len(prompts)
    while queue or bool(state.alive.any()):
        free = (~state.alive).nonzero()[:, 0]
        idle = not bool(state.alive.any())
        if queue and (idle or (seat and 4 * len(free) >= n)):
            rows = [queue.popleft() for _ in range(min(len(free), len(queue)))]
            slots = free[: len(rows)]
            fresh, mask, first = prefill(model, [list(prompts[r]) for r in rows], pad_id, share)
            cache.place(fresh, mask, slots, restart=idle)
            lengths = [len(prompts[r]) for r in rows]
            state.fill(slots, rows, lengths, first, _draws(seeds, rows, max_new_tokens))
        live = state.alive.nonzero()[:, 0]  # [k]
        toks = sample_rows(
            state.logits[live.to(device), :valid_vocab],
            state.draws[live, state.steps[live]],
            temperature,
            top_p,
        ).cpu()  # [k]
        stop = torch.isin(toks, eos)
        for s, t, e in zip(live.tolist(), toks.tolist(), stop.tolist(), strict=True):
            if e:
                ended[state.row[s]] = True
            else:
                out[state.row[s]].append(t)
        state.steps[live] += 1
        finished = stop | (state.steps[live] >= max_new_tokens)
        state.alive[live[finished]] = False
        if on_done and bool(finished.any()):
            on_done(int(finished.sum()))
        if not bool(state.alive.any()):
            continue
        inputs = torch.full((cache.slots,), pad_id, dtype=torch.long)  # [slots]
        inputs[live] = toks
        if seat and not queue and 4 * int((~state.alive).sum()) >= cache.slots:
            keep = state.alive.nonzero()[:, 0]  # the batch shrinks for the tail of the run
            cache.keep_slots(keep)
            state.keep(keep)
            inputs = inputs[keep]
        cache.open_column(state.alive, trim=seat)
        alive = state.alive.to(device)
        state.next_pos = torch.where(alive, state.next_pos, 0)  # free slots: any valid position
        state.logits = forward_step(
            model, inputs.to(device)[:, None], cache.visible_mask(), state.next_pos[:, None], cache
        )
        cache.close_column()
        state.next_pos += 1
    return [(out[r], not ended[r] and len(out[r]) >= max_new_tokens) for r in range(len(prompts))]
