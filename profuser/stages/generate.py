"""Stage `generate`: inference mode, each source samples one answer per instruction.

With ``advantage.sampling.n`` > 1 each source samples n - 1 more answers per instruction
(``generate/samples/<source>/<k>``, other seeds) for the preference pairs; the first answer,
the one inference mode votes on, is the same whatever n is.

Each source answers in its own chat template, with per-example seeds so that an
answer does not depend on batch size or shard count. Empty answers and answers
cut at ``max_new_tokens`` are kept, flagged and counted. With
``advantage.sampling.backend: vllm`` the sampling runs in vLLM (where installed).
"""

from __future__ import annotations

import functools
import logging

from profuser.generate.engine import Generation, example_seed, generate
from profuser.io.shards import read_rows, run_shards
from profuser.models.chat import end_of_turn_ids, render_prompt
from profuser.models.loading import load_tokenizer, usable_vocab
from profuser.pipeline import StageContext, stage
from profuser.stages.common import open_source, read_data
from profuser.stages.contracts import ANSWERS, FUSION_ROWS, SAMPLES

log = logging.getLogger("profuser")


def _rows(chunk: list[dict], outs: list[Generation], source: str) -> list[dict]:
    return [
        {
            "id": r["id"],
            "source": source,
            "answer": g.text,
            "num_tokens": g.num_tokens,
            "truncated": g.hit_limit,
            "empty": not g.text.strip(),
        }
        for r, g in zip(chunk, outs, strict=True)
    ]


def _answer_fn(cfg, src):
    """A function from a chunk of data rows to answer rows, for one source."""
    sampling = cfg.advantage.sampling
    if sampling.backend == "vllm":
        from profuser.generate.vllm_engine import generate_vllm

        tok = load_tokenizer(src.path, src.chat_template, src.trust_remote_code)
        backend = {"dtype": src.dtype, "trust_remote_code": src.trust_remote_code}

        def run(prompts: list[str], seeds: list[int], stops: list[int]):
            return generate_vllm(src.path, tok, prompts, seeds, stop_ids=stops, **common, **backend)
    else:
        tok, model = open_source(src)
        backend = {
            "batch_size": sampling.batch_size,
            "valid_vocab": usable_vocab(model, tok),
            "share_prefixes": sampling.share_prefixes,
        }

        def run(prompts: list[str], seeds: list[int], stops: list[int]):
            return generate(
                model,
                tok,
                prompts,
                seeds,
                stop_ids=stops,
                progress=f"generate {src.name}",
                **common,
                **backend,
            )

    common = {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_new_tokens": sampling.max_new_tokens,
    }
    stops = end_of_turn_ids(tok)

    def work(chunk: list[dict], k: int = 0) -> list[dict]:
        prompts = [render_prompt(tok, r["system"], r["instruction"]) for r in chunk]
        # sample 0 keeps the seeds it had before extra samples existed
        salt = src.name if k == 0 else f"{src.name}/sample-{k}"
        seeds = [example_seed(cfg.seed, r["id"], salt) for r in chunk]
        return _rows(chunk, run(prompts, seeds, stops), src.name)

    return work


@stage(
    "generate",
    reads=("sources", "seed", "advantage.sampling", "advantage.shard_size"),
    upstream=("select",),
    inputs=(FUSION_ROWS,),
    outputs=(ANSWERS, SAMPLES),
)
def run(ctx: StageContext) -> dict:
    cfg = ctx.cfg
    ctx.upstream("select")
    rows = read_data(ctx)
    done = True
    summary: dict = {}
    for src in cfg.sources:
        work = _answer_fn(cfg, src)
        done &= run_shards(
            ctx.path(ANSWERS, source=src.name), rows, cfg.advantage.shard_size, work, ctx.shard
        )
        for k in range(1, cfg.advantage.sampling.n):
            done &= run_shards(
                ctx.path(SAMPLES, source=src.name, k=str(k)),
                rows,
                cfg.advantage.shard_size,
                functools.partial(work, k=k),
                ctx.shard,
            )
        del work
        got = read_rows(ctx.path(ANSWERS, source=src.name))
        summary[src.name] = {
            "answers": len(got),
            "empty": sum(g["empty"] for g in got),
            "truncated": sum(g["truncated"] for g in got),
            "mean_tokens": round(sum(g["num_tokens"] for g in got) / max(1, len(got)), 2),
            "extra_samples": cfg.advantage.sampling.n - 1,
        }
        if summary[src.name]["empty"] or summary[src.name]["truncated"]:
            log.warning(
                "generate %s: %d empty and %d truncated answers (kept and flagged)",
                src.name,
                summary[src.name]["empty"],
                summary[src.name]["truncated"],
            )
    return {"partial": not done, "sources": summary}
