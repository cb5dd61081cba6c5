"""Stage `train`: the target trained under each schedule (the main one and every variant).

Each variant starts from the target's own weights and ends as a
`save_pretrained` directory ``train/<variant>/final`` with tokenizer and chat
template; ``train/<variant>/log.csv`` holds every loss component per step and
``train/<variant>/variant.json`` the variant's own key: its phases, the training
settings and the upstream artifacts it learned from. When the variant list (or the
merges) change, the stage runs again, but a variant whose key is unchanged is taken
back from the previous outputs (``.stale/train-*``) instead of being trained again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil

from profuser.errors import UserError
from profuser.io import atomic_write_json, read_json
from profuser.io.shards import read_rows_file, write_rows
from profuser.models.loading import load_causal_lm, load_tokenizer
from profuser.pipeline import StageContext, stage
from profuser.stages.common import read_data, target_source
from profuser.stages.contracts import (
    ALIGNED,
    CHOSEN,
    FUSION_ROWS,
    MERGED,
    PAIR_LOGPROBS,
    PAIRS,
    STALE,
    TRAINED,
)
from profuser.teacher.storage import DistributionReader
from profuser.train.examples import FusionExample, make_sequence
from profuser.train.loop import train_fusion
from profuser.train.order import phase_pool
from profuser.train.preference_data import pair_examples, response_logprobs
from profuser.train.preference_loop import train_preference
from profuser.train.schedules import Phase, fusion_phases, preference_phase, resolve_schedule

log = logging.getLogger("profuser")


def variant_schedules(cfg) -> dict[str, list[Phase]]:
    """name -> phases: the main schedule (its preset name, or "custom") and each variant,
    every phase's epochs times ``train.epoch_scale``."""
    main = cfg.schedule if isinstance(cfg.schedule, str) else "custom"
    out = {main: resolve_schedule(cfg.schedule)}
    for v in cfg.variants:
        out.setdefault(v, resolve_schedule(v))
    scale = cfg.train.epoch_scale
    return {
        name: [p.model_copy(update={"epochs": p.epochs * scale}) for p in phases]
        for name, phases in out.items()
    }


def _teacher(reader: DistributionReader | None, eid: str):
    if reader is None or eid not in reader:
        return None
    rec = reader.get(eid)
    return rec.ids, rec.logprobs


def build_examples(ctx: StageContext, tok) -> list[FusionExample]:
    """Both modes of every example in the target's tokens, with aligned teachers."""
    rows = read_data(ctx)
    train_dir, infer_dir = (ctx.path(ALIGNED, mode=m) for m in ("train_mode", "infer_mode"))
    train_r = DistributionReader(train_dir) if train_dir.is_dir() else None
    infer_r = DistributionReader(infer_dir) if infer_dir.is_dir() else None
    chosen_path = ctx.path(CHOSEN)
    chosen = {r["id"]: r for r in read_rows_file(chosen_path)} if chosen_path.is_file() else {}
    out = []
    for r in rows:
        train = make_sequence(
            tok, r["system"], r["instruction"], r["response"], _teacher(train_r, r["id"])
        )
        pick = chosen.get(r["id"])
        infer = None
        if pick and pick["winner"]:
            infer = make_sequence(
                tok, r["system"], r["instruction"], pick["answer"], _teacher(infer_r, r["id"])
            )
        score = pick.get("target_score", math.nan) if pick else math.nan
        out.append(
            FusionExample(
                r["id"],
                len(r["response"]),
                train,
                infer,
                float(score) if score is not None else math.nan,
            )
        )
    return out


# The settings a trained variant depends on, besides its own phases and the upstream data.
VARIANT_READS = ("train", "seed", "target", "target_path", "advantage.top_k")


def variant_key(ctx: StageContext, phases: list[Phase]) -> str:
    """What one trained variant depends on: its phases, `VARIANT_READS`, and the data and
    align stages' fingerprints (which chain everything upstream)."""
    names = ("select", "align", "logprobs") if preference_phase(phases) else ("select", "align")
    upstream = [ctx.manifest_of(n).get("fingerprint") for n in names]
    blob = json.dumps(
        [
            ctx.cfg.fingerprint(*VARIANT_READS),
            [p.model_dump(mode="json") for p in phases],
            upstream,
        ],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def reuse_trained(ctx: StageContext, name: str, key: str) -> bool:
    """Move back a finished ``name`` trained under ``key`` from earlier outputs of this stage."""
    for old in sorted(
        ctx.path(STALE, stage="train", fingerprint="*").parent.glob(f"train-*/{name}")
    ):
        if (old / "final" / "config.json").is_file() and (
            read_json(old / "variant.json") or {}
        ).get("key") == key:
            shutil.move(str(old), str(ctx.path(TRAINED, variant=name)))
            log.info("train %s: same phases, settings and data as before; reused %s", name, old)
            return True
    return False


@stage(
    "train",
    reads=(
        "train",
        "schedule",
        "variants",
        "merges",
        "seed",
        "target",
        "target_path",
        "advantage.top_k",
        "sources",
    ),
    upstream=("select", "align", "pairs", "logprobs"),
    inputs=(FUSION_ROWS, ALIGNED, CHOSEN, PAIRS, PAIR_LOGPROBS, STALE),
    outputs=(TRAINED, MERGED),
)
def run(ctx: StageContext) -> dict:
    cfg = ctx.cfg
    tgt = target_source(cfg)
    tok = load_tokenizer(tgt.path, tgt.chat_template, tgt.trust_remote_code)
    examples = build_examples(ctx, tok)
    n_infer = sum(e.infer is not None for e in examples)
    summary: dict = {"examples": len(examples), "with_inference_answer": n_infer, "variants": {}}
    schedules = variant_schedules(cfg)
    for phases in schedules.values():  # fail before any training, not after hours of it
        for phase in phases:
            phase_pool(examples, phase)
    for name, phases in schedules.items():
        out = ctx.path(TRAINED, variant=name)
        key = variant_key(ctx, phases)
        if (out / "final" / "config.json").is_file() or reuse_trained(ctx, name, key):
            summary["variants"][name] = {"done": True}
            continue
        if any(p.w1 > 0 for p in phases) and n_infer == 0:
            log.warning(
                "train %s: no inference-mode answers (no score stage): its inference-mode terms are empty",
                name,
            )
        if any(p.sources for p in phases):
            raise UserError(
                f"schedule {name!r} restricts sources per phase; run a separate config with those sources instead"
            )
        if preference_phase(phases) is not None:
            res = _train_with_preference(ctx, tok, examples, phases, out)
        else:
            model = load_causal_lm(
                tgt.path, cfg.train.dtype, trust_remote_code=tgt.trust_remote_code
            )
            res = train_fusion(
                model, tok, examples, phases, cfg.train, out, seed=cfg.seed, k=cfg.advantage.top_k
            )
            del model
        atomic_write_json(
            out / "variant.json",
            {"key": key, "phases": [p.model_dump(mode="json") for p in phases]},
        )
        summary["variants"][name] = {
            "steps": res.steps,
            **{k: round(v, 4) for k, v in res.last_losses.items()},
        }
    if cfg.merges:
        summary["merges"] = run_merges(ctx)
    return summary


def _train_with_preference(ctx: StageContext, tok, examples, phases: list[Phase], out):
    """A schedule ending in a preference phase: its fusion phases first (into
    ``<variant>/fusion``, resumable, skipped where there are none), then the preference phase
    from their result on the pairs of its rule, with the reference it names."""
    cfg = ctx.cfg
    tgt = target_source(cfg)
    start = tgt.path
    fusion = fusion_phases(phases)
    if fusion:
        fdir = out / "fusion"
        key = variant_key(ctx, fusion)
        same = _trained_with_key(ctx, key)
        if same is not None:
            log.info("train: fusion phases as %s trained them; starting from there", same.parent)
            start = str(same)
        else:
            if not (fdir / "final" / "config.json").is_file():
                model = load_causal_lm(
                    tgt.path, cfg.train.dtype, trust_remote_code=tgt.trust_remote_code
                )
                train_fusion(
                    model,
                    tok,
                    examples,
                    fusion,
                    cfg.train,
                    fdir,
                    seed=cfg.seed,
                    k=cfg.advantage.top_k,
                )
                del model
                atomic_write_json(fdir / "variant.json", {"key": key})
            start = str(fdir / "final")
    pref = preference_phase(phases)
    opts = pref.preference
    pairs = read_rows_file(ctx.path(PAIRS, rule=opts.pairing))
    logps = {r["id"]: r for r in read_rows_file(ctx.path(PAIR_LOGPROBS, rule=opts.pairing))}
    names = [s.name for s in cfg.sources]
    model = load_causal_lm(start, cfg.train.dtype, trust_remote_code=tgt.trust_remote_code)
    if fusion:
        logps = _phase_start_reference(model, tok, pairs, logps, out, cfg.train)
    pex = pair_examples(tok, pairs, logps, names, opts.reference, opts.fuse_rule, opts.clip)
    return train_preference(model, tok, pex, pref, cfg.train, out, seed=cfg.seed)


def _trained_with_key(ctx: StageContext, key: str):
    """A finished model of this stage trained under ``key``: a variant whose whole schedule,
    or a preference variant whose fusion phases, are the phases ``key`` names, with the same
    settings and data (training is reproducible, so it equals training them again)."""
    root = ctx.path(TRAINED, variant="-").parent
    for found in sorted(root.glob("*/variant.json")) + sorted(root.glob("*/fusion/variant.json")):
        final = found.parent / "final"
        if (read_json(found) or {}).get("key") == key and (final / "config.json").is_file():
            return final
    return None


def _phase_start_reference(model, tok, pairs, logps: dict, out, train_cfg) -> dict:
    """DPO's reference is the model the preference phase starts from: after fusion phases,
    that model's log-probs of each pair stand for the target's (the reference, and the fused
    reference's clip anchor). Computed once, before training, into
    ``<variant>/reference.parquet`` (kept for a resumed run), so no second model is held."""
    path = out / "reference.parquet"
    if not path.is_file():
        items = [
            (p["system"], p["instruction"], p[s]) for p in pairs for s in ("chosen", "rejected")
        ]
        batch_tokens = train_cfg.micro_batch * train_cfg.max_length
        vals = response_logprobs(model, tok, items, train_cfg.max_length, batch_tokens)
        out.mkdir(parents=True, exist_ok=True)
        rows = [
            {"id": p["id"], "chosen": vals[2 * i], "rejected": vals[2 * i + 1]}
            for i, p in enumerate(pairs)
        ]
        write_rows(path, rows)
    ref = {r["id"]: r for r in read_rows_file(path)}
    return {
        i: {**row, "target/chosen": ref[i]["chosen"], "target/rejected": ref[i]["rejected"]}
        for i, row in logps.items()
    }


def run_merges(ctx: StageContext) -> list[str]:
    """The weight-merging baselines (paper, Table 3), each into ``train/merges/<name>``."""
    from profuser.evaluate.merging import merge_models

    paths = {s.name: s.path for s in ctx.cfg.sources}
    done = []
    for m in ctx.cfg.merges:
        name = m.name or m.method
        out = ctx.path(MERGED, merge=name)
        if not (out / "config.json").is_file():
            merge_models(
                m.method,
                ctx.path(TRAINED, variant=m.variant) / "final",
                paths[m.source],
                out,
                base=m.base,
                params=m.params,
                seed=ctx.cfg.seed,
            )
        done.append(name)
    return done
