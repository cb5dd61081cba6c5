"""Teacher forcing: a source's per-example CE and compact next-token distributions.

Only the answer positions go through the output layer: the body runs on the
whole (prompt + answer) batch, then the hidden states that predict answer
tokens are gathered and projected chunk by chunk, so neither prompt nor padding
costs vocabulary-sized work, and at most one ``[chunk, V]`` block of logits
exists at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from profuser.advantage.compress import compress_logits
from profuser.models.chat import encode_turn


@dataclass(frozen=True)
class ForcedItem:
    """One (prompt, answer) pair in a source's own tokenization."""

    key: str
    prompt_ids: list[int]
    answer_ids: list[int]


@dataclass
class ForcedResult:
    """CE and compact distributions along one answer (None when the source's logits were not finite)."""

    key: str
    ce: float  # mean NLL per answer token (temperature 1)
    n_tokens: int
    ids: np.ndarray | None  # [n, k] int64, -1 empty
    logprobs: np.ndarray | None  # [n, k] float32, temperature-scaled, -inf empty
    finite: bool = True


def turn_items(
    tok, rows: Sequence[dict], answers: dict[str, str], max_len: int, counts: dict[str, int]
) -> tuple[list[ForcedItem], dict[str, int]]:
    """Each row's (prompt, answer) in ``tok``'s chat format, cut to ``max_len`` tokens, and each
    answer's length in UTF-8 bytes. A row whose prompt leaves no room (or whose answer has no
    token) is left out and counted in ``counts["too_long"]``; one cut short in
    ``counts["truncated"]``."""
    items, n_bytes = [], {}
    for r in rows:
        answer = answers[r["id"]]
        turn = encode_turn(tok, r["system"], r["instruction"], answer)
        room = max_len - len(turn.prompt_ids)
        if room <= 0 or not turn.answer_ids:
            counts["too_long"] += 1
            continue
        if len(turn.answer_ids) > room:
            counts["truncated"] += 1
        items.append(ForcedItem(r["id"], turn.prompt_ids, turn.answer_ids[:room]))
        n_bytes[r["id"]] = len(answer.encode("utf-8"))
    return items, n_bytes


def length_batches(items: Sequence[ForcedItem], batch_tokens: int) -> list[list[int]]:
    """Indices grouped by length so that (rows x longest) stays within ``batch_tokens``."""
    order = sorted(
        range(len(items)), key=lambda i: len(items[i].prompt_ids) + len(items[i].answer_ids)
    )
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        width = len(items[i].prompt_ids) + len(items[i].answer_ids)
        if cur and width * (len(cur) + 1) > batch_tokens:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def answer_hidden(model: torch.nn.Module, batch: Sequence[ForcedItem], pad_id: int) -> torch.Tensor:
    """Final hidden states at the positions that predict each answer token, concatenated.

    Returns ``[sum(n_answer), H]`` in batch order.
    """
    device = next(model.parameters()).device
    width = max(len(it.prompt_ids) + len(it.answer_ids) for it in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    rows, cols = [], []
    for r, it in enumerate(batch):
        seq = it.prompt_ids + it.answer_ids
        ids[r, : len(seq)] = torch.tensor(seq)
        mask[r, : len(seq)] = 1
        start = len(it.prompt_ids) - 1  # position p predicts token p + 1
        rows += [r] * len(it.answer_ids)
        cols += range(start, start + len(it.answer_ids))
    out = model.base_model(input_ids=ids.to(device), attention_mask=mask.to(device))
    hidden = out[0]  # [B, T, H]
    return hidden[torch.tensor(rows, device=device), torch.tensor(cols, device=device)]


def teacher_force(
    model: torch.nn.Module,
    items: Sequence[ForcedItem],
    *,
    pad_id: int,
    valid_vocab: int,
    batch_tokens: int = 16384,
    temperature: float = 2.0,
    top_k: int = 10,
    top_p: float = 0.95,
    chunk_positions: int = 1024,
    keep_distributions: bool = True,
    progress: str | None = None,
) -> Iterator[ForcedResult]:
    """Yield each item's CE and compressed distributions, in ``items`` order per batch."""
    head = model.get_output_embeddings()
    bar = tqdm(total=len(items), desc=progress, disable=progress is None, leave=False)
    for batch_idx in length_batches(items, batch_tokens):
        batch = [items[i] for i in batch_idx]
        with torch.inference_mode():
            hidden = answer_hidden(model, batch, pad_id)  # [P, H]
            targets = torch.tensor([t for it in batch for t in it.answer_ids], device=hidden.device)
            nll = torch.empty(len(targets), dtype=torch.float32)
            finite = torch.empty(len(targets), dtype=torch.bool)
            top_ids, top_lp = [], []
            for s in range(0, len(targets), chunk_positions):
                logits = head(hidden[s : s + chunk_positions]).float()[:, :valid_vocab]  # [c, V]
                ok = torch.isfinite(logits).all(dim=-1)  # [c]
                finite[s : s + len(logits)] = ok.cpu()
                # Rows with NaN/inf are dropped below; zero them only when there are any.
                safe = (
                    logits
                    if bool(ok.all())
                    else torch.nan_to_num(logits, nan=0.0, posinf=0.0, neginf=0.0)
                )
                lsm = torch.log_softmax(safe, dim=-1)
                nll[s : s + len(logits)] = -lsm.gather(1, targets[s : s + len(logits), None])[
                    :, 0
                ].cpu()
                if keep_distributions:
                    i, lp = compress_logits(safe, temperature, top_k, top_p, chunk_positions)
                    top_ids.append(i)
                    top_lp.append(lp)
            all_ids = torch.cat(top_ids).numpy() if keep_distributions else None
            all_lp = torch.cat(top_lp).numpy() if keep_distributions else None
        at = 0
        for it in batch:
            n = len(it.answer_ids)
            ok = bool(finite[at : at + n].all())
            yield ForcedResult(
                key=it.key,
                ce=float(nll[at : at + n].mean()) if ok else math.nan,
                n_tokens=n,
                ids=all_ids[at : at + n] if (ok and all_ids is not None) else None,
                logprobs=all_lp[at : at + n] if (ok and all_lp is not None) else None,
                finite=ok,
            )
            at += n
        bar.update(len(batch))
    bar.close()
