"""Stage `generate`: inference mode, each source samples one answer per instruction.

Each source answers in its own chat template, with per-example seeds so that an
answer does not depend on batch size or shard count. Empty answers and answers
cut at ``max_new_tokens`` are kept, flagged and counted.
"""

from __future__ import annotations

import logging

from profuser.chat import end_of_turn_ids, render_prompt
from profuser.errors import UserError
from profuser.generation import example_seed, generate
from profuser.models import usable_vocab
from profuser.pipeline import StageContext, stage
from profuser.shards import read_rows, run_shards
from profuser.stages.common import open_source, read_data

log = logging.getLogger("profuser")


@stage("generate", reads=("sources", "seed", "advantage.sampling"), upstream=("data",))
def run(ctx: StageContext) -> dict:
    cfg = ctx.cfg
    sampling = cfg.advantage.sampling
    if sampling.backend == "vllm":
        raise UserError(
            "advantage.sampling.backend=vllm: the vLLM backend is not available in this version; use hf"
        )
    ctx.upstream("data")
    rows = read_data(ctx.run_dir)
    done = True
    summary: dict = {}
    for src in cfg.sources:
        tok, model = open_source(src)
        stops = end_of_turn_ids(tok)
        vocab = usable_vocab(model, tok)

        def work(
            chunk: list[dict], tok=tok, model=model, src=src, stops=stops, vocab=vocab
        ) -> list[dict]:
            prompts = [render_prompt(tok, r["system"], r["instruction"]) for r in chunk]
            seeds = [example_seed(cfg.seed, r["id"], src.name) for r in chunk]
            outs = generate(
                model,
                tok,
                prompts,
                seeds,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_new_tokens=sampling.max_new_tokens,
                batch_size=sampling.batch_size,
                stop_ids=stops,
                valid_vocab=vocab,
                progress=f"generate {src.name}",
            )
            return [
                {
                    "id": r["id"],
                    "source": src.name,
                    "answer": g.text,
                    "num_tokens": g.num_tokens,
                    "truncated": g.hit_limit,
                    "empty": not g.text.strip(),
                }
                for r, g in zip(chunk, outs, strict=True)
            ]

        done &= run_shards(ctx.dir / src.name, rows, cfg.advantage.shard_size, work, ctx.shard)
        got = read_rows(ctx.dir / src.name)
        summary[src.name] = {
            "answers": len(got),
            "empty": sum(g["empty"] for g in got),
            "truncated": sum(g["truncated"] for g in got),
            "mean_tokens": round(sum(g["num_tokens"] for g in got) / max(1, len(got)), 2),
        }
        del model
    for name, s in summary.items():
        if s["empty"] or s["truncated"]:
            log.warning(
                "generate %s: %d empty and %d truncated answers (kept, flagged)",
                name,
                s["empty"],
                s["truncated"],
            )
    return {"partial": not done, "sources": summary}
