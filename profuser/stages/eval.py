"""Stage `eval`: every source, trained variant and merge through lm-evaluation-harness.

Models evaluated, in this order:

* ``source``: each entry of ``cfg.sources`` (its own chat template, or the named one);
* ``variant``: each trained schedule found at ``train/<variant>/final`` (a
  `save_pretrained` directory with tokenizer and chat template); the expected
  names are the main schedule (its preset name, or ``custom``) and each of
  ``cfg.variants``, as the train stage names them;
* ``merge``: each weight-merged model found at ``train/merges/<name>`` (when present).

The stage only looks for what exists; it never requires the train stage to be
complete (sources alone are still evaluated). ``train`` is listed as upstream
only so that eval's fingerprint changes when anything the variants depend on
changes; while an expected variant is missing the stage stays incomplete
(``partial``) so that a later run evaluates it instead of skipping eval as up to
date.

A model whose files were evaluated the same way before takes its record from the eval
cache (`profuser.evaluate.cache`, ``eval.cache``) instead of running lm-eval again.

Outputs: one file per model ``eval/models/<kind>-<name>.json`` (written
atomically; a re-run skips models already evaluated) with every metric, the
per-skill scores and ``items``, each item's headline value
(``{task: {skill or "all": {doc_id: score}}}``, for the report's intervals),
and ``eval/scores.json``,
rewritten from the per-model files after every run:
``[{kind, name, seed, scores: {task: value}, per_skill: {...}, average}]``.
With ``--shard i/n`` a process evaluates the models whose index is i modulo n.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import profuser.evaluate.cache as eval_cache
from profuser.config import RunConfig
from profuser.errors import UserError
from profuser.evaluate.harness import evaluate_model
from profuser.io import atomic_write_json, read_json
from profuser.models.loading import load_causal_lm, load_tokenizer
from profuser.pipeline import StageContext, stage
from profuser.stages.common import target_source
from profuser.stages.contracts import EVAL_RECORDS, EVAL_SCORES, MERGED, TRAINED

log = logging.getLogger("profuser")


@dataclass(frozen=True)
class ModelEntry:
    """One model to evaluate."""

    kind: str  # source | variant | merge
    name: str
    path: str
    chat_template: str | None  # named template to use when the tokenizer has none
    dtype: str
    trust_remote_code: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}-{self.name}"


def expected_variants(cfg: RunConfig) -> list[str]:
    """The variant names the train stage produces: the main schedule, then ``cfg.variants``."""
    main = cfg.schedule if isinstance(cfg.schedule, str) else "custom"
    return list(dict.fromkeys([main, *cfg.variants]))


def _found(folder: Path, marker: str) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / marker).is_file())


def models_to_evaluate(ctx: StageContext) -> tuple[list[ModelEntry], list[str]]:
    """(models present, expected variants not trained yet)."""
    cfg = ctx.cfg
    variants_dir = ctx.path(TRAINED, variant="")
    merges_dir = ctx.path(MERGED, merge="")
    out = [
        ModelEntry("source", s.name, s.path, s.chat_template, s.dtype, s.trust_remote_code)
        for s in cfg.sources
    ]
    tgt = target_source(cfg)

    def trained_model(kind: str, name: str, path: Path) -> ModelEntry:
        return ModelEntry(
            kind, name, str(path), tgt.chat_template, tgt.dtype, tgt.trust_remote_code
        )

    expected = expected_variants(cfg)
    trained = _found(variants_dir, "final/config.json")
    order = [v for v in expected if v in trained] + [v for v in trained if v not in expected]
    out += [trained_model("variant", v, ctx.path(TRAINED, variant=v) / "final") for v in order]
    out += [
        trained_model("merge", m, ctx.path(MERGED, merge=m))
        for m in _found(merges_dir, "config.json")
    ]
    return out, [v for v in expected if v not in trained]


def _tokenizer(entry: ModelEntry):
    """The directory's own tokenizer and chat template, else the named template."""
    try:
        return load_tokenizer(entry.path, None, entry.trust_remote_code)
    except UserError:
        if entry.chat_template is None:
            raise
        return load_tokenizer(entry.path, entry.chat_template, entry.trust_remote_code)


def evaluate_entry(entry: ModelEntry, cfg: RunConfig) -> dict:
    """One model's record: settings, every metric, per-skill scores, the average and the
    per-item headline scores (``items``)."""
    started = time.time()
    tok = (
        load_tokenizer(entry.path, entry.chat_template, entry.trust_remote_code)
        if entry.kind == "source"
        else _tokenizer(entry)
    )
    model = load_causal_lm(entry.path, entry.dtype, trust_remote_code=entry.trust_remote_code)
    try:
        res = evaluate_model(
            model,
            tok,
            list(cfg.eval.tasks),
            limit=cfg.eval.limit,
            batch_size=cfg.eval.batch_size,
            split_continuation=cfg.eval.split_continuation,
            generation=cfg.eval.generation,
            seed=cfg.eval.seed,
            log_samples=True,
        )
    finally:
        del model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    res.pop("samples", None)  # the full lm-eval logs are large; `items` keeps what intervals need
    return {
        "kind": entry.kind,
        "name": entry.name,
        "path": entry.path,
        "seed": cfg.seed,  # the run's (training) seed; lm-eval ran with eval.seed
        "eval_seed": cfg.eval.seed,
        "seconds": round(time.time() - started, 2),
        **res,
    }


def cached_or_evaluated(entry: ModelEntry, cfg: RunConfig) -> dict:
    """``entry``'s record: from the eval cache when the same files were evaluated the same
    way before (``eval.cache``), else evaluated now and kept there."""
    identity = {
        "kind": entry.kind,  # sources and trained models find their chat template differently
        "chat_template": entry.chat_template,
        "dtype": entry.dtype,
        "trust_remote_code": entry.trust_remote_code,
        "tasks": list(cfg.eval.tasks),
        "limit": cfg.eval.limit,
        "batch_size": cfg.eval.batch_size,
        "split_continuation": cfg.eval.split_continuation,
        "generation": cfg.eval.generation,
        "seed": cfg.eval.seed,
    }
    key = eval_cache.record_key(entry.path, identity) if cfg.eval.cache else None
    hit = eval_cache.load(key)
    if hit is not None:
        log.info("eval %s: same files evaluated before (eval cache %s)", entry.key, key)
        return {
            **hit,
            "kind": entry.kind,
            "name": entry.name,
            "path": entry.path,
            "seed": cfg.seed,
            "cached": key,
        }
    record = evaluate_entry(entry, cfg)
    eval_cache.store(key, record)
    return record


def _row(record: dict) -> dict:
    keys = ("kind", "name", "seed", "scores", "per_skill", "average")
    return {k: record[k] for k in keys}


@stage(
    "eval",
    reads=("eval", "seed", "sources", "target", "target_path", "schedule", "variants"),
    upstream=("train",),
    inputs=(TRAINED, MERGED),
    outputs=(EVAL_RECORDS, EVAL_SCORES),
)
def run(ctx: StageContext) -> dict:
    cfg = ctx.cfg
    if not cfg.eval.tasks:
        raise UserError("eval.tasks is empty; name the benchmarks (e.g. [world_mc, world_gen])")
    models, missing = models_to_evaluate(ctx)
    index, count = ctx.shard
    for i, entry in enumerate(models):
        path = ctx.path(EVAL_RECORDS, model=entry.key)
        if i % count != index or path.is_file():
            continue
        log.info("eval %s (%s)", entry.key, entry.path)
        record = cached_or_evaluated(entry, cfg)
        atomic_write_json(path, record)
        log.info("eval %s: average %.4f", entry.key, record["average"])
    records = [read_json(ctx.path(EVAL_RECORDS, model=m.key)) for m in models]
    summary: dict = {
        "tasks": list(cfg.eval.tasks),
        "models": {m.key: r["average"] for m, r in zip(models, records, strict=True) if r},
    }
    if missing:
        log.warning(
            "eval: variants not trained yet: %s; the eval stage stays incomplete until they are",
            ", ".join(missing),
        )
        summary["missing_variants"] = missing
    atomic_write_json(ctx.path(EVAL_SCORES), [_row(r) for r in records if r])
    if any(r is None for r in records) or missing:
        summary["partial"] = True
    return summary


def load_eval_records(run_dir: Path) -> list[dict[str, Any]]:
    """The eval stage's rows (``eval/scores.json``), each with its per-item scores from
    ``eval/models/<kind>-<name>.json`` under ``items`` (empty for a record written
    before items were kept). No eval output: an empty list."""
    out = []
    for row in read_json(EVAL_SCORES.under(run_dir)) or []:
        full = read_json(EVAL_RECORDS.under(run_dir, model=f"{row['kind']}-{row['name']}"))
        out.append({**row, "items": (full or {}).get("items") or {}})
    return out
