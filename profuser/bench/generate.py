"""`profuser bench generate`: batched sampling against one prompt at a time, and RM scoring.

Both sides run the same :func:`profuser.generate.engine.generate` on the same
prompts and seeds with the demo's sampling settings (the packaged ``demo`` config):
one demo shard of prompts, in the demo's batch size, against ``batch_size=1``.
Rounds alternate between the two, and the ratio is taken of the medians, since
this shared machine is noisy.
"""

from __future__ import annotations

import statistics
import time

from profuser.bench.registry import register
from profuser.generate.engine import Generation, example_seed, generate
from profuser.models.chat import end_of_turn_ids, render_prompt
from profuser.models.loading import usable_vocab
from profuser.stages.common import open_source
from profuser.world.check import read_jsonl


def _demo_config():
    from profuser.config import load_config
    from profuser.world.resolve import materialize_world

    return materialize_world(load_config("demo"))


def _timed(fn) -> tuple[float, list[Generation]]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _speedup(src, rows: list[dict], sampling, rounds: int) -> dict:
    """Batched over one-at-a-time tokens per second for one source (medians of ``rounds``)."""
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

    t_one, t_many, t_plain = [], [], []
    for _ in range(rounds):
        dt, one = _timed(one_by_one)
        t_one.append(dt)
        dt, many = _timed(batched)
        t_many.append(dt)
        dt, _ = _timed(lambda: batched(share=False))
        t_plain.append(dt)
    tokens = sum(g.num_tokens for g in many)
    one_rate = sum(g.num_tokens for g in one) / statistics.median(t_one)
    same = sum(a.text == b.text for a, b in zip(one, many, strict=True)) / len(one)
    return {
        "speedup": round(tokens / statistics.median(t_many) / one_rate, 2),
        "speedup_without_prefix_sharing": round(tokens / statistics.median(t_plain) / one_rate, 2),
        "tokens_per_s": round(tokens / statistics.median(t_many), 1),
        "same_answer_share": round(same, 3),
        "answers": many,
    }


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
def bench_generate(rounds: int = 3, all_sources: bool = True) -> dict:
    """Tokens per second of the batched path over the sequential one, same prompts and seeds;
    reward-model scoring throughput on the target's answers."""
    cfg, world = _demo_config()
    sampling = cfg.advantage.sampling
    rows = read_jsonl(world / "data" / "train.jsonl")[: cfg.advantage.shard_size]
    by_source = {}
    for src in cfg.sources:
        if src.name == cfg.target or all_sources:
            by_source[src.name] = _speedup(src, rows, sampling, rounds)
    head = by_source[cfg.target]
    return {
        "generate.batched_speedup": head["speedup"],
        "generate.batched_speedup_without_prefix_sharing": head["speedup_without_prefix_sharing"],
        "generate.tokens_per_s_batched": head["tokens_per_s"],
        "generate.same_answer_share_batched_vs_single": head["same_answer_share"],
        "generate.batched_speedup_by_source": {n: r["speedup"] for n, r in by_source.items()},
        "generate.setup": (
            f"{cfg.target}, {len(rows)} prompts, batch {sampling.batch_size}, "
            f"max_new_tokens {sampling.max_new_tokens}, T={sampling.temperature}, "
            f"top_p={sampling.top_p}, medians of {rounds} rounds"
        ),
        **_scoring(cfg, rows, head["answers"]),
    }
