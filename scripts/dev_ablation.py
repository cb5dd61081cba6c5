#!/usr/bin/env python
"""Dev-split ablations of the tiny-world demo: ProFuser alone, one factor at a time.

Defaults are chosen here, on the ``worlddev_*`` tasks (questions no model trains
on, kept apart from the ``world_*`` benchmark, which is only for reporting)::

    python scripts/dev_ablation.py --out runs/ablation --seeds 0 1 \\
        --arm epochs2=train.epoch_scale=2 --arm epochs4=train.epoch_scale=4

For each seed a base run (data through align, and the sources' dev scores) is made
once under ``OUT/seed-S/base``; each arm copies its upstream artifacts, trains
ProFuser with the arm's overrides (``key=value``, separated by ``;``) and evaluates the
result on the dev tasks. Every record (with per-item scores) is written to
``OUT/seed-S/<arm>.json``; ``OUT/records.json`` collects them all.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

from profuser.config import load_config
from profuser.io import atomic_write_json, read_json
from profuser.pipeline import run_pipeline
from profuser.report.stats import bootstrap
from profuser.report.transfer import transfer_table
from profuser.stages.common import target_source
from profuser.stages.eval import ModelEntry, evaluate_entry, expected_variants
from profuser.world.resolve import materialize_world

DEV = ["eval.tasks=[worlddev_mc, worlddev_gen]", "variants=[]", "merges=[]"]
UPSTREAM = ("data", "select", "generate", "score", "teacher", "align")
log = logging.getLogger("profuser")


def _arm(text: str) -> tuple[str, list[str]]:
    name, _, spec = text.partition("=")
    return name, [o.strip() for o in spec.split(";") if o.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--config", default="demo", help="a config file or a packaged config's name (demo)"
    )
    ap.add_argument("--out", type=Path, default=Path("runs/ablation"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--arm", action="append", default=[], help="NAME=key=value;key=value")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    records: list[dict] = read_json(args.out / "records.json") or []
    done = {(r["seed"], r["arm"], r["kind"], r["name"]) for r in records}
    for seed in args.seeds:
        root = args.out / f"seed-{seed}"
        base = root / "base"
        cfg, _ = materialize_world(load_config(args.config, [*DEV, f"seed={seed}"]))
        if not (base / "report" / "results.json").is_file():
            # Made once: the sources' dev scores and ProFuser at the config's settings then;
            # later arms compare against this record, not against a re-trained one.
            run_pipeline(cfg, base)
        for m in read_json(base / "eval" / "scores.json") or []:
            rec = read_json(base / "eval" / "models" / f"{m['kind']}-{m['name']}.json")
            if (seed, "base", m["kind"], m["name"]) not in done:
                records.append({**rec, "arm": "base"})
        for name, overrides in map(_arm, args.arm):
            if (seed, name, "variant", "profuser") in done:
                continue
            arm_dir = root / name
            if not (arm_dir / "train").is_dir():
                arm_dir.mkdir(parents=True, exist_ok=True)
                for stage_name in UPSTREAM:
                    if not (arm_dir / stage_name).exists():
                        shutil.copytree(base / stage_name, arm_dir / stage_name)
            acfg, _ = materialize_world(
                load_config(args.config, [*DEV, f"seed={seed}", *overrides])
            )
            started = time.time()
            for stage_name in (*UPSTREAM, "pairs", "logprobs", "train"):
                run_pipeline(acfg, arm_dir, only=stage_name)
            trained = time.time() - started
            tgt = target_source(acfg)
            main_variant = expected_variants(acfg)[0]  # "custom" for a schedule spelled out
            entry = ModelEntry(
                "variant",
                "profuser",
                str(arm_dir / "train" / main_variant / "final"),
                tgt.chat_template,
                tgt.dtype,
            )
            rec = {**evaluate_entry(entry, acfg), "arm": name, "overrides": overrides}
            rec["train_seconds"] = round(trained, 1)
            atomic_write_json(root / f"{name}.json", rec)
            records.append(rec)
            atomic_write_json(args.out / "records.json", records)
            log.info("%s seed %d: dev average %.4f (%s)", name, seed, rec["average"], rec["scores"])
    atomic_write_json(args.out / "records.json", records)
    text = summarize(records)
    (args.out / "summary.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


def summarize(records: list[dict], target: str = "vicuna-like") -> str:
    """One row per arm: dev average (mean over seeds), its pooled 95% interval against the
    target and the default arm, and the median takeover / retained over seeds."""
    seeds = sorted({r["seed"] for r in records})
    by = {(r["seed"], r["arm"], r["kind"], r["name"]): r for r in records}
    arms = ["base"] + sorted({r["arm"] for r in records if r["arm"] != "base"})
    lines = [
        f"Dev split (worlddev_mc, worlddev_gen), seeds {seeds}; intervals pooled over seeds.",
        "",
        "| arm | seeds | dev average | − target [95%] | − default arm [95%] "
        "| median takeover | median retained |",
        "|---|---|---|---|---|---|---|",
    ]

    def runs(arm: str, kind: str, name: str, over: list[int]) -> list[dict]:
        return [by[(s, arm, kind, name)] for s in over]

    def cell(iv) -> str:  # noqa: ANN001
        if iv is None:
            return "–"
        return f"{100 * iv.estimate:+.1f} [{100 * iv.low:+.1f}, {100 * iv.high:+.1f}]"

    for arm in arms:
        have = [s for s in seeds if (s, arm, "variant", "profuser") in by]
        have = [s for s in have if (s, "base", "source", target) in by]
        if not have:
            continue
        mine = runs(arm, "variant", "profuser", have)
        tgt = runs("base", "source", target, have)
        base = runs("base", "variant", "profuser", have)
        takeovers, retained = [], []
        for s, m in zip(have, mine, strict=True):
            srcs = [
                r for (ss, a, k, _), r in by.items() if ss == s and a == "base" and k == "source"
            ]
            t = transfer_table([*srcs, {**m, "name": "profuser"}], target)
            v = (t or {}).get("variants", {}).get("variant-profuser", {})
            takeovers.append(v.get("median_takeover"))
            retained.append(v.get("median_retained"))
        avg = sum(m["average"] for m in mine) / len(mine)

        def mean_pct(xs: list) -> str:
            xs = [x for x in xs if x is not None]
            return f"{100 * sum(xs) / len(xs):.0f}%" if xs else "–"

        lines.append(
            f"| {arm} | {len(have)} | {100 * avg:.1f} | "
            f"{cell(bootstrap([m['items'] for m in mine], [t['items'] for t in tgt]))} | "
            f"{cell(bootstrap([m['items'] for m in mine], [b['items'] for b in base]))} | "
            f"{mean_pct(takeovers)} | {mean_pct(retained)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
