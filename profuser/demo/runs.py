"""The tiny-world demo: the pipeline over several seeds and studies, then mean ± std tables.

``--quick``: the sources and ProFuser, one seed (add ``variants=[csft]`` for the
SFT control; its training and eval add about a minute here). Full: every schedule
variant and the merges over three seeds, plus the inference-mode selection-rule
study (Figure 3), the number-of-sources study (Table 4 / Figure 4) and ProFuser
through LoRA adapters, each ProFuser run of a study paired item by item with the
main run of its seed; and the selection study (`profuser.demo.selection`), whose
arms fuse the same budget of rows curated from the world's candidate pool by each
selection rule, paired with its ``random`` arm; the implicit-fusion study
(`profuser.demo.implicit`) on every seed; with ``scaling``, the source-scaling study
(`profuser.demo.scaling`). The other studies run on the first seed only unless
``study_seeds`` names more: more trainings a seed would take the full demo past its time
budget. Every run is an ordinary run directory, so an interrupted demo resumes where it
stopped.

The summary also carries each study's per-skill transfer over seeds (``transfer``,
see `profuser.demo.summary`) and, for the main runs, intervals pooled over seeds
of ProFuser − target and ProFuser − best single source (``main.pooled_intervals``).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import yaml

from profuser.config import RunConfig, load_config
from profuser.demo.implicit import LABEL as IMPLICIT_LABEL
from profuser.demo.implicit import (
    implicit_comparison,
    implicit_overrides,
)
from profuser.demo.jobs import default_jobs, run_all, run_seed
from profuser.demo.markdown import LORA_STUDY, summary_figures, summary_markdown
from profuser.demo.scaling import PREFIX as SCALE_PREFIX
from profuser.demo.scaling import SIZES as SCALE_SIZES
from profuser.demo.scaling import WORLD as SCALE_WORLD
from profuser.demo.scaling import scaling_facts, scaling_sources, scaling_summary
from profuser.demo.selection import BASELINE as SELECT_BASELINE
from profuser.demo.selection import PREFIX as SELECT_PREFIX
from profuser.demo.selection import (
    SELECT_ARMS,
    select_overrides,
    selection_facts,
    selection_summary,
    with_random_arm,
)
from profuser.demo.summary import (
    aggregate_transfer,
    mean_std,
    pooled_intervals,
    study_intervals,
)
from profuser.errors import UserError
from profuser.evaluate.merging import mergekit_available
from profuser.io import atomic_write_bytes, atomic_write_json, read_json
from profuser.pipeline import fingerprints, load_stages, run_pipeline
from profuser.stages.eval import load_eval_records
from profuser.world.resolve import materialize_world, world_spec_from

log = logging.getLogger("profuser")

QUICK = ["variants=[]", "merges=[]"]
RULE_STUDY = ("single_rm", "reference")  # compared with the main runs' rm_vote
# Stages a study run may take from its seed's main run, where the study's config gives them
# the same fingerprint: the selection-rule study reuses the main run's answers and teacher
# outputs instead of computing them again.
SHARED_STAGES = ("data", "select", "generate", "score", "teacher", "align")
SOURCE_STUDY = {
    "FuseMPT": ["vicuna-like", "mpt-like"],
    "FuseLlama": ["vicuna-like", "llama-chat-like"],
}


@dataclass
class DemoPlan:
    """Which runs the demo makes: (label, run directory, overrides)."""

    runs: list[tuple[str, Path, list[str], list[str] | None]] = field(default_factory=list)


def plan(
    out: Path,
    quick: bool,
    seeds: list[int],
    extra: list[str],
    study_seeds: list[int] | None = None,
    select_rows: int | None = None,
    scaling: bool = False,
) -> DemoPlan:
    """The runs of a quick or full demo, in order; the studies run for ``study_seeds``
    (default: the implicit-fusion study for every seed, since it compares implicit with
    explicit fusion over the demo's seeds; the other studies for the first).
    ``select_rows``: the selection study's budget of fusion rows (the fusion set's size;
    None leaves the study out). ``scaling``: add the source-scaling study
    (`profuser.demo.scaling`; full demo only)."""
    p = DemoPlan()
    implicit_seeds = seeds if study_seeds is None else study_seeds
    study_seeds = seeds[:1] if study_seeds is None else study_seeds
    base = [*(QUICK if quick else []), *extra]
    single = ["variants=[]", "merges=[]"]  # studies train ProFuser alone
    # Every seed's main run first: the table of every schedule is what a user waits for;
    # the studies follow, each seed's reusing its main run's upstream stages.
    for s in seeds:
        p.runs.append(("main", out / f"seed-{s}", [*base, f"seed={s}"], None))
    # The longest study runs first, so that with several jobs the demo does not end on
    # one long run while the other cores wait.
    for s in [] if quick else implicit_seeds:
        overrides = [*base, f"seed={s}", *implicit_overrides()]
        p.runs.append((IMPLICIT_LABEL, out / f"implicit-seed-{s}", overrides, None))
    for s in [] if quick else study_seeds:
        for rule in SELECT_ARMS if select_rows else ():  # random: the main run
            overrides = [*base, f"seed={s}", *select_overrides(rule, select_rows), *single]
            p.runs.append(
                (f"{SELECT_PREFIX}{rule}", out / f"select-{rule}-seed-{s}", overrides, None)
            )
        overrides = [*base, f"seed={s}", *LORA_STUDY, *single]
        p.runs.append(("train:lora", out / f"lora-seed-{s}", overrides, None))
        for rule in RULE_STUDY:
            overrides = [*base, f"seed={s}", f"advantage.inference_rule={rule}", *single]
            p.runs.append((f"rule:{rule}", out / f"rule-{rule}-seed-{s}", overrides, None))
        for label, keep in SOURCE_STUDY.items():
            overrides = [*base, f"seed={s}", *single]
            p.runs.append((f"sources:{label}", out / f"sources-{label}-seed-{s}", overrides, keep))
        for n in reversed(SCALE_SIZES) if scaling else ():  # the most sources (longest) first
            overrides = [*base, f"seed={s}", *SCALE_WORLD, *single]
            keep = scaling_sources(n)
            p.runs.append((f"{SCALE_PREFIX}{n}", out / f"scale-{n}-seed-{s}", overrides, keep))
    return p


def only_runs(runs: list, only: list[str] | None) -> list:
    """The planned ``runs`` whose label, or its family (before ``:``), is in ``only`` (all
    where ``only`` is None), with the main run of each seed of a chosen selection arm (the
    study's ``random`` arm); a one-line error names a choice that matches no planned run."""
    if only is None:
        return runs
    arms = [r for r in runs if r[0].startswith(SELECT_PREFIX)]
    labels = {r[0] for r in runs} | {r[0].split(":", 1)[0] for r in runs}
    labels |= {SELECT_BASELINE} if arms else set()
    unknown = [o for o in only if o not in labels]
    if unknown:
        raise UserError(
            f"--only {' '.join(unknown)}: no such run in this demo; choose from "
            f"{', '.join(sorted(labels))}"
        )
    chosen = [r for r in runs if r[0] in only or r[0].split(":", 1)[0] in only]
    # the selection study's random arm is the main run of its seed
    wanted = arms if SELECT_BASELINE in only else [r for r in chosen if r in arms]
    seeds = {run_seed(r) for r in wanted}
    return [r for r in runs if r in chosen or (r[0] == "main" and run_seed(r) in seeds)]


def demo_seeds(quick: bool, seeds: list[int] | None, study_seeds: list[int] | None) -> list[int]:
    """The run seeds (default: 0 quick, 0 1 2 full); raises a one-line error where a study
    seed is not a run seed (a study is paired with its seed's main run)."""
    seeds = seeds or ([0] if quick else [0, 1, 2])
    if study_seeds is not None and not set(study_seeds) <= set(seeds):
        raise UserError(
            f"--study-seeds {' '.join(map(str, study_seeds))}: each study seed must also be a "
            f"run seed (--seeds {' '.join(map(str, seeds))}); a study is paired with its seed's main run"
        )
    return seeds


def demo_config(cfg_path: Path, overrides: list[str], keep: list[str] | None) -> RunConfig:
    """The demo config with ``overrides``; ``keep`` names its sources, in order (the
    number-of-sources and source-scaling studies): the config's own entry of each, or for a
    source the config does not name (the extended world's), its model in the world."""
    if keep is None:
        return load_config(cfg_path, overrides)
    tree = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    named = {s["name"]: s for s in tree["sources"]}
    tree["sources"] = [named.get(n, {"name": n, "path": f"world:models/{n}"}) for n in keep]
    return load_config(base=tree, overrides=overrides)


def _fusion_rows(cfg: RunConfig) -> int:
    """The world's number of fusion rows: the selection study's budget from its pool."""
    return world_spec_from(cfg.path_options.get("world", {})).n_train


def _skip_unavailable(cfg_path: Path, quick: bool, extra: list[str]) -> list[str]:
    """Overrides that leave out what needs an extra that is not installed (MergeKit for the
    weight-merging baselines), each with a one-line notice."""
    cfg = load_config(cfg_path, [*(QUICK if quick else []), *extra])
    if cfg.merges and not mergekit_available():
        log.warning(
            "demo: MergeKit is not installed, so the weight-merging baselines (%s) are skipped; "
            "pip install 'profuser[merge]' to include them",
            ", ".join(m.name or m.method for m in cfg.merges),
        )
        return ["merges=[]"]
    return []


def run_demo(
    cfg_path: Path,
    out: Path,
    quick: bool,
    extra: list[str],
    force: bool = False,
    seeds: list[int] | None = None,
    study_seeds: list[int] | None = None,
    only: list[str] | None = None,
    jobs: int | None = None,
    scaling: bool = False,
) -> dict:
    """Run every planned pipeline and write ``summary.json`` / ``summary.md`` under ``out``.

    ``only``: run just the planned runs of these labels or label families (``main``,
    ``rule``, ``sources``, ``train``, ``select``, ``implicit``; `only_runs`); the summary
    also covers the other planned runs already finished in ``out``.

    ``seeds``: the run seeds (default: 0 for the quick demo, 0, 1 and 2 for the full one).
    ``study_seeds``: the seeds the full demo's studies run for (default: the first run seed);
    each must be a run seed, since a study is paired with its seed's main run.
    ``jobs``: how many runs at once, each in its own process (`profuser.demo.jobs`; default
    two for the full demo where there are two cores, one for the quick demo).
    ``scaling``: add the source-scaling study (`profuser.demo.scaling`); ``only`` naming
    ``scale`` adds it too. Its world is built (once, cached) before any run starts.
    """
    seeds = demo_seeds(quick, seeds, study_seeds)
    extra = [*extra, *_skip_unavailable(cfg_path, quick, extra)]
    cfg = load_config(cfg_path, extra)
    select_rows = None if quick else _fusion_rows(cfg)
    scaling = scaling_planned(scaling, only)
    everything = plan(out, quick, seeds, extra, study_seeds, select_rows, scaling).runs
    runs = only_runs(everything, only)
    scale_runs = [r for r in runs if r[0].startswith(SCALE_PREFIX)]
    if scale_runs:  # built here, once, not by two runs at once
        materialize_world(demo_config(cfg_path, scale_runs[0][2], scale_runs[0][3]))
    # plan index -> (seed, target) of finished runs: those this call runs, and with --only
    # the other planned runs an earlier call finished in ``out``, so the summary keeps them
    target = cfg.target
    finished = {
        i: (run_seed(spec), target)
        for i, spec in enumerate(everything)
        if spec not in runs and _finished(spec[1])
    }
    summary: dict = {}

    def collect(index: int, seed_target: tuple[int, str]) -> None:
        nonlocal summary
        finished[everything.index(runs[index])] = seed_target
        # Rebuilt in plan order after every run, so a long demo shows its tables as they
        # fill in, and the same runs give the same summary whichever finished first.
        done = [(everything[i], finished[i]) for i in sorted(finished)]
        summary = _summarise(out, done, quick)

    jobs = default_jobs(quick) if jobs is None else jobs
    run_all(runs, partial(run_planned, cfg_path, out, force), jobs, collect)
    return summary


def scaling_planned(scaling: bool, only: list[str] | None) -> bool:
    """Whether the demo plans the source-scaling study: asked for, or named by ``--only``."""
    return scaling or any(o.split(":", 1)[0] == SCALE_PREFIX[:-1] for o in only or ())


def _finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run whose report stage completed."""
    return bool((read_json(run_dir / "report" / "manifest.json") or {}).get("complete"))


def run_planned(cfg_path: Path, out: Path, force: bool, spec: tuple) -> tuple[int, str]:
    """One planned run ``(label, dir, overrides, keep)``, its upstream stages taken from its
    seed's main run where they match; returns the run's seed and target."""
    label, run_dir, overrides, keep = spec
    cfg, _ = materialize_world(demo_config(cfg_path, overrides, keep))
    log.info("demo: %s (seed %d) -> %s", label, cfg.seed, run_dir)
    if label != "main":
        share_upstream(out / f"seed-{cfg.seed}", run_dir, cfg)
    run_pipeline(cfg, run_dir, force=force)
    return cfg.seed, cfg.target


def _summarise(out: Path, done: list[tuple[tuple, tuple[int, str]]], quick: bool) -> dict:
    """`write_summary` over the finished runs ``(spec, (seed, target))``, in plan order."""
    results: dict[str, list[dict]] = {}
    main_records: list[list[dict]] = []  # each main seed's eval records, for pooled intervals
    implicit_records: list[list[dict]] = []  # each implicit-study seed's eval records
    profuser: dict[str, dict[int, dict]] = {}  # label -> seed -> ProFuser's eval record
    mains: list[tuple[int, Path, dict, dict | None]] = []  # for the selection study's random arm
    target = None
    for (label, run_dir, _, _), (seed, run_target) in done:
        res = read_json(run_dir / "report" / "results.json") or {}
        if label.startswith(SELECT_PREFIX):
            res["selection"] = selection_facts(run_dir)
        if label.startswith(SCALE_PREFIX):
            res["scaling"] = scaling_facts(run_dir)
        results.setdefault(label, []).append(res)
        records = load_eval_records(run_dir)
        rec = next((r for r in records if r["kind"] == "variant" and r["name"] == "profuser"), None)
        if rec is not None:
            profuser.setdefault(label, {})[seed] = rec
        if label == "main":
            main_records.append(records)
            mains.append((seed, run_dir, res, rec))
            target = run_target
        if label == IMPLICIT_LABEL:
            implicit_records.append(records)
    results = with_random_arm(results, profuser, mains)
    return write_summary(out, results, main_records, target, quick, profuser, implicit_records)


def write_summary(
    out: Path,
    results: dict[str, list[dict]],
    main_records: list[list[dict]],
    target: str | None,
    quick: bool,
    profuser: dict[str, dict[int, dict]] | None = None,
    implicit_records: list[list[dict]] | None = None,
) -> dict:
    """``summary.json``, ``summary.md`` and the figures for the runs finished so far.

    ``profuser``: per study label, each seed's ProFuser eval record; every study's ProFuser
    is then compared with the main runs' ProFuser of the same seeds (``vs_main``)."""
    summary = aggregate(results)
    if main_records and target is not None:
        summary["main"]["pooled_intervals"] = pooled_intervals(main_records, target)
    for label, by_seed in (profuser or {}).items():
        # the scaling study's runs are in another world, on another benchmark
        other_world = label.startswith(SCALE_PREFIX)
        if label not in ("main", SELECT_BASELINE) and label in summary and not other_world:
            summary[label]["vs_main"] = study_intervals(by_seed, profuser.get("main", {}))
    summary["selection"] = selection_summary(results, profuser or {})
    summary["scaling"] = scaling_summary(results, profuser or {})
    summary["implicit_vs_explicit"] = implicit_comparison(implicit_records or [])
    atomic_write_json(out / "summary.json", summary)
    atomic_write_bytes(out / "summary.md", summary_markdown(summary, quick).encode())
    summary_figures(summary, out)
    return summary


def share_upstream(main_dir: Path, run_dir: Path, cfg: RunConfig) -> list[str]:
    """Copy into a study's run directory the main run's complete upstream stages that have
    the fingerprint ``cfg`` gives them (and that the study has not made yet); returns them."""
    load_stages()
    fps = fingerprints(cfg)
    copied = []
    for name in SHARED_STAGES:
        src, dst = main_dir / name, run_dir / name
        manifest = read_json(src / "manifest.json") or {}
        if dst.exists() or not manifest.get("complete") or manifest.get("fingerprint") != fps[name]:
            continue
        shutil.copytree(src, dst)
        copied.append(name)
    if copied:
        log.info("demo: %s reuses the main run's %s", run_dir.name, ", ".join(copied))
    return copied


def aggregate(results: dict[str, list[dict]]) -> dict:
    """Per study label, per model: mean and std over seeds of each task score."""
    out: dict = {}
    for label, runs in results.items():
        models: dict[tuple[str, str], dict[str, list[float]]] = {}
        for res in runs:
            for m in res.get("models", []):
                scores = models.setdefault((m["kind"], m["name"]), {})
                for task, v in m["scores"].items():
                    scores.setdefault(task, []).append(v)
        out[label] = {
            "seeds": len(runs),
            "models": [
                {"kind": k, "name": n, "scores": {t: tuple(mean_std(v)) for t, v in s.items()}}
                for (k, n), s in models.items()
            ],
            "win_share": [r.get("win_share", {}) for r in runs],
            "transfer": aggregate_transfer([r.get("transfer") for r in runs]),
        }
    return out
