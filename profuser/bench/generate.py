"""`profuser bench generate`: batched sampling against one prompt at a time, against
Hugging Face ``model.generate``, and RM scoring.

The project's side runs :func:`profuser.generate.engine.generate` on the same
prompts and seeds with the demo's sampling settings (the packaged ``demo`` config):
one demo shard of prompts, in the demo's batch size, against ``batch_size=1``.

The peer, on the target only, is Hugging Face ``model.generate`` as a user would
batch it: the same prompt tokens in their given order, left-padded batches of the
same size, the same sampling (``do_sample``, temperature, top-p, no top-k, the same
``max_new_tokens``, stop ids and pad id), ids past the tokenizer suppressed as our
loop cuts them. Its tokens are counted per row up to the row's first stop id, as
our loop counts its own (the stop id itself excluded); what a batch computes for a
row after the row stopped is not counted, since that is the cost being measured.

Rounds alternate between all sides (each warmed up first), and the ratios are
taken of the medians, since this shared machine is noisy.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch

from profuser.bench.registry import register
from profuser.generate.engine import Generation, example_seed, generate
from profuser.generate.prefill import left_pad
from profuser.models.chat import end_of_turn_ids, render_prompt
from profuser.models.loading import usable_vocab
from profuser.stages.common import open_source
from profuser.world.check import read_jsonl


def _demo_config():
    from profuser.config import load_config
    from profuser.world.resolve import materialize_world

    return materialize_world(load_config("demo"))


def _device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU, {torch.get_num_threads()} threads"


def _timed(fn) -> tuple[float, list[Generation]]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _tokens_to_stop(row: Sequence[int], stop: set[int]) -> int:
    """New tokens of one row before its first stop id (all of them when it has none)."""
    return next((i for i, t in enumerate(row) if t in stop), len(row))


def hf_generate_tokens(
    model: torch.nn.Module,
    encoded: Sequence[Sequence[int]],
    *,
    batch_size: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    pad_id: int,
    valid_vocab: int,
    seed: int = 0,
) -> list[int]:
    """Sample every prompt with Hugging Face ``model.generate`` on left-padded batches of
    ``batch_size`` in the given order; returns each prompt's count of new tokens up to its
    first stop id. The global random stream is seeded with ``seed`` and restored after."""
    device = next(model.parameters()).device
    width = model.get_output_embeddings().weight.shape[0]
    extra = dict(suppress_tokens=list(range(valid_vocab, width))) if valid_vocab < width else {}
    stop = set(stop_ids)
    counts: list[int] = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, len(encoded), batch_size):
            ids, mask = left_pad(encoded[start : start + batch_size], pad_id)
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                do_sample=True,
                temperature=temperature,
                top_p=top_p,
                top_k=0,
                max_new_tokens=max_new_tokens,
                eos_token_id=list(stop_ids),
                pad_token_id=pad_id,
                **extra,
            )
            counts += [_tokens_to_stop(r, stop) for r in out[:, ids.shape[1] :].tolist()]
    return counts


def _speedup(src, rows: list[dict], sampling, rounds: int, hf_peer: bool = False) -> dict:
    """Batched over one-at-a-time tokens per second for one source (medians of ``rounds``);
    with ``hf_peer``, also Hugging Face ``model.generate`` on the same prompts and batch size."""
    tok, model = open_source(src)
    prompts = [render_prompt(tok, r["system_prompt"], r["question"]) for r in rows]
    seeds = [example_seed(0, r["id"], src.name) for r in rows]
    kw = dict(
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_new_tokens=sampling.max_new_tokens,
        stop_ids=end_of_turn_ids(tok),
        valid_vocab=usable_vocab(model, tok),
    )

    def one_by_one() -> list[Generation]:
        return [
            generate(model, tok, [p], [s], batch_size=1, **kw)[0]
            for p, s in zip(prompts, seeds, strict=True)
        ]

    def batched(share: bool = True) -> list[Generation]:
        return generate(
            model, tok, prompts, seeds, batch_size=sampling.batch_size, share_prefixes=share, **kw
        )

    encoded = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    pad = tok.pad_token_id if tok.pad_token_id is not None else kw["stop_ids"][0]

    def hf(subset: Sequence[Sequence[int]] = encoded, max_new: int | None = None) -> list[int]:
        return hf_generate_tokens(
            model,
            subset,
            batch_size=sampling.batch_size,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_new_tokens=max_new or sampling.max_new_tokens,
            stop_ids=kw["stop_ids"],
            pad_id=pad,
            valid_vocab=kw["valid_vocab"],
        )

    if hf_peer:  # warm-up: two steps of one batch (ours is warmed by one_by_one, run first)
        hf(encoded[: sampling.batch_size], max_new=2)
    t_one, t_many, t_plain, t_hf = [], [], [], []
    hf_counts: list[int] = []
    for _ in range(rounds):
        dt, one = _timed(one_by_one)
        t_one.append(dt)
        dt, many = _timed(batched)
        t_many.append(dt)
        dt, _ = _timed(lambda: batched(share=False))
        t_plain.append(dt)
        if hf_peer:
            dt, hf_counts = _timed(hf)
            t_hf.append(dt)
    tokens = sum(g.num_tokens for g in many)
    rate = tokens / statistics.median(t_many)
    one_rate = sum(g.num_tokens for g in one) / statistics.median(t_one)
    same = sum(a.text == b.text for a, b in zip(one, many, strict=True)) / len(one)
    out = {
        "speedup": round(rate / one_rate, 2),
        "speedup_without_prefix_sharing": round(tokens / statistics.median(t_plain) / one_rate, 2),
        "tokens_per_s": round(rate, 1),
        "same_answer_share": round(same, 3),
        "mean_answer_tokens": round(tokens / len(many), 1),
        "answers": many,
    }
    if hf_peer:
        hf_rate = sum(hf_counts) / statistics.median(t_hf)
        out |= {
            "hf_tokens_per_s": round(hf_rate, 1),
            "ratio_vs_hf": round(rate / hf_rate, 2),
            "hf_mean_answer_tokens": round(sum(hf_counts) / len(hf_counts), 1),
        }
    return out


def _scoring(cfg, rows: list[dict], answers: list[Generation]) -> dict:
    """Answers per second of each configured reward model on the same (prompt, answer) pairs."""
    from profuser.reward import load_reward_model

    prompts = [(r["system_prompt"] or None, r["question"]) for r in rows]
    texts = [g.text for g in answers]
    rates = {}
    for rm_cfg in cfg.reward_models:
        rm = load_reward_model(rm_cfg)
        rm.score(prompts[:8], texts[:8], rows[:8])  # warm up
        dt, _ = _timed(lambda rm=rm: rm.score(prompts, texts, rows))
        rates[rm_cfg.name] = round(len(texts) / dt, 1)
    total = len(texts) / sum(len(texts) / r for r in rates.values())
    return {"score.answers_per_s": round(total, 1), "score.answers_per_s_by_rm": rates}


@register("generate")
def bench_generate(
    rounds: int = 3,
    all_sources: bool = True,
    prompts: int | None = None,
    batch_size: int | None = None,
) -> dict:
    """Tokens per second of the batched path over the sequential one, same prompts and seeds,
    and over Hugging Face ``model.generate`` batched alike (the target); reward-model scoring
    throughput on the target's answers. ``prompts`` caps the demo shard (default: all of it);
    ``batch_size`` replaces the demo's sampling batch (``generate.batch_size=32``)."""
    cfg, world = _demo_config()
    sampling = cfg.advantage.sampling
    if batch_size is not None:
        sampling = sampling.model_copy(update={"batch_size": batch_size})
    size = cfg.advantage.shard_size if prompts is None else min(prompts, cfg.advantage.shard_size)
    rows = read_jsonl(world / "data" / "train.jsonl")[:size]
    by_source = {}
    for src in cfg.sources:
        if src.name == cfg.target or all_sources:
            peer = src.name == cfg.target
            by_source[src.name] = _speedup(src, rows, sampling, rounds, hf_peer=peer)
    head = by_source[cfg.target]
    return {
        "generate.batched_speedup": head["speedup"],
        "generate.batched_speedup_without_prefix_sharing": head["speedup_without_prefix_sharing"],
        "generate.tokens_per_s_batched": head["tokens_per_s"],
        "generate.hf_generate_tokens_per_s": head["hf_tokens_per_s"],
        "generate.ratio_vs_hf_generate": head["ratio_vs_hf"],
        "generate.mean_answer_tokens": {
            "batched": head["mean_answer_tokens"],
            "hf_generate": head["hf_mean_answer_tokens"],
        },
        "generate.same_answer_share_batched_vs_single": head["same_answer_share"],
        "generate.batched_speedup_by_source": {n: r["speedup"] for n, r in by_source.items()},
        "generate.setup": (
            f"{cfg.target}, {len(rows)} prompts, batch {sampling.batch_size}, "
            f"max_new_tokens {sampling.max_new_tokens}, T={sampling.temperature}, "
            f"top_p={sampling.top_p}, medians of {rounds} rounds; hf_generate: "
            f"model.generate on left-padded batches of {sampling.batch_size} in prompt order, "
            f"top_k=0, same stop and pad ids, device {_device_name()}"
        ),
        **_scoring(cfg, rows, head["answers"]),
    }
