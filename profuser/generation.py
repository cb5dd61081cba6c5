"""Batched generation with per-example seeded sampling.

Hugging Face `generate` draws from one global random stream, so a row's sample
depends on its batch-mates. Here each row owns a generator seeded from
(run seed, example id, model name): a logits processor draws that row's token
itself and hands `generate` a one-hot score, and `generate` runs in greedy mode.
A row's answer then does not depend on batch size, order or shard count (up to
the floating-point noise of padded batched matmuls).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedTokenizerBase,
)


def example_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (run seed, example id, model name)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class SeededSampler(LogitsProcessor):
    """Samples each row with its own generator, after temperature and top-p."""

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float, valid_vocab: int):
        self.gens = [torch.Generator().manual_seed(s) for s in seeds]
        self.temperature = temperature
        self.top_p = top_p
        self.valid_vocab = valid_vocab

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        # scores: [batch, V]
        logits = scores[:, : self.valid_vocab].float() / self.temperature
        probs = torch.softmax(logits, dim=-1)
        sorted_p, order = probs.sort(dim=-1, descending=True)
        cum = sorted_p.cumsum(dim=-1)
        keep = (cum - sorted_p) < self.top_p  # the smallest prefix reaching top_p
        sorted_p = sorted_p * keep
        cum = sorted_p.cumsum(dim=-1)
        # One uniform draw per row from that row's own generator, then one batched search.
        u = torch.stack([torch.rand((), generator=g) for g in self.gens]).to(cum.device)  # [batch]
        pick = torch.searchsorted(cum, (u * cum[:, -1]).unsqueeze(1).contiguous(), right=True)
        pick = pick.clamp(max=cum.shape[1] - 1)  # [batch, 1]
        chosen = order.gather(1, pick)  # [batch, 1]
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, chosen, 0.0)
        return out


class _MaskBeyond(LogitsProcessor):
    """Never pick ids past the tokenizer: a model's output layer may be padded wider."""

    def __init__(self, valid_vocab: int):
        self.valid_vocab = valid_vocab

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[-1] > self.valid_vocab:
            scores = scores.clone()
            scores[:, self.valid_vocab :] = float("-inf")
        return scores


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
    progress: str | None = None,
) -> list[Generation]:
    """Generate one answer per prompt; greedy when ``temperature`` is 0.

    Prompts are batched by length with left padding and the KV cache.
    """
    device = next(model.parameters()).device
    valid_vocab = valid_vocab or len(tok)
    encoded = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    results: list[Generation | None] = [None] * len(prompts)
    eos_ids = sorted({*stop_ids} or ({tok.eos_token_id} - {None}))
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos_ids[0]
    gen_cfg = GenerationConfig(
        do_sample=False,
        max_new_tokens=max_new_tokens,
        eos_token_id=eos_ids,
        pad_token_id=pad,
    )
    bar = tqdm(total=len(prompts), desc=progress, disable=progress is None, leave=False)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = max(len(encoded[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            n = len(encoded[i])
            ids[row, width - n :] = torch.tensor(encoded[i])
            mask[row, width - n :] = 1
        procs = LogitsProcessorList([_MaskBeyond(valid_vocab)])
        if temperature > 0:
            procs.append(SeededSampler([seeds[i] for i in idx], temperature, top_p, valid_vocab))
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                generation_config=gen_cfg,
                logits_processor=procs,
            )
        new = out[:, width:].cpu()
        for row, i in enumerate(idx):
            toks = new[row].tolist()
            ended = next((t for t, x in enumerate(toks) if x in eos_ids), None)
            kept = toks if ended is None else toks[:ended]
            results[i] = Generation(
                text=tok.decode(kept, skip_special_tokens=True).strip(),
                num_tokens=len(kept),
                hit_limit=ended is None and len(toks) >= max_new_tokens,
            )
        bar.update(len(idx))
    bar.close()
    return [r for r in results if r is not None]
