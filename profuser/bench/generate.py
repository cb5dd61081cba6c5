"""`profuser bench generate`: batched generation against one prompt at a time."""

from __future__ import annotations

import time
from pathlib import Path

from profuser.bench.registry import register
from profuser.chat import end_of_turn_ids, render_prompt
from profuser.generation import example_seed, generate
from profuser.models import load_causal_lm, load_tokenizer, usable_vocab
from profuser.world.check import read_jsonl


@register("generate")
def bench_generate(
    n_prompts: int = 64,
    source: str = "vicuna-like",
    batch_size: int = 32,
    max_new_tokens: int = 48,
    world: Path | None = None,
) -> dict:
    """Tokens per second of the batched path over the sequential one, same prompts and seeds."""
    from profuser.world.build import WorldSpec, build_world

    world = world or build_world(WorldSpec())
    d = world / "models" / source
    tok, model = load_tokenizer(str(d)), load_causal_lm(str(d))
    rows = read_jsonl(world / "data" / "train.jsonl")[:n_prompts]
    prompts = [render_prompt(tok, r["system_prompt"], r["question"]) for r in rows]
    seeds = [example_seed(0, r["id"], source) for r in rows]
    kw = dict(
        temperature=0.7,
        top_p=0.95,
        max_new_tokens=max_new_tokens,
        stop_ids=end_of_turn_ids(tok),
        valid_vocab=usable_vocab(model, tok),
    )
    t0 = time.perf_counter()
    one = [
        generate(model, tok, [p], [s], batch_size=1, **kw)[0]
        for p, s in zip(prompts, seeds, strict=True)
    ]
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    many = generate(model, tok, prompts, seeds, batch_size=batch_size, **kw)
    t_many = time.perf_counter() - t0
    tok_one = sum(g.num_tokens for g in one)
    tok_many = sum(g.num_tokens for g in many)
    same = sum(a.text == b.text for a, b in zip(one, many, strict=True)) / len(one)
    return {
        "generate.batched_speedup": round((tok_many / t_many) / (tok_one / t_one), 2),
        "generate.tokens_per_s_batched": round(tok_many / t_many, 1),
        "generate.same_answer_share_batched_vs_single": round(same, 3),
        "generate.batch_size": batch_size,
    }
