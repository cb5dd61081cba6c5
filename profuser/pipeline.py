"""Run orchestration: stages in order, manifests, skip-if-complete, no mixing of settings.

A run directory holds ``run.json`` (the resolved config) and one folder per
stage with a ``manifest.json``. A stage's fingerprint hashes the config sections
it reads and its upstream stages' fingerprints; a stage whose manifest is
complete under the same fingerprint is skipped, one whose fingerprint changed
is moved aside to ``.stale/`` and re-run (so are its dependants, through the
chained fingerprints), and an incomplete one resumes from what it stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from profuser.config import RunConfig
from profuser.errors import UserError
from profuser.io import atomic_write_json, read_json
from profuser.stages.contracts import Artifact, ConfigView, ContractError

log = logging.getLogger("profuser")

STAGE_ORDER = (
    "data",
    "select",
    "generate",
    "score",
    "teacher",
    "align",
    "pairs",
    "logprobs",
    "train",
    "eval",
    "report",
)
# Changing these makes it another run: refused unless forced.
IDENTITY_FIELDS = ("sources", "target", "target_path", "dataset")


@dataclass(frozen=True)
class Stage:
    """A pipeline stage: a function from artifacts to artifacts (see profuser.stages.contracts)."""

    name: str
    fn: Callable[[StageContext], dict[str, Any]]
    reads: tuple[str, ...]  # dotted config paths the outputs depend on
    upstream: tuple[str, ...] = ()
    version: int = 1  # bump when the stage's output format changes
    inputs: tuple[Artifact, ...] = ()  # other stages' artifacts it reads
    outputs: tuple[Artifact, ...] = ()  # its own artifacts
    # Reads the outputs depend on only through ``key_of(cfg)`` (e.g. the pairing rules of the
    # schedules, not the schedules): fingerprinted as that value, so a change elsewhere in
    # them does not redo the stage.
    keyed: tuple[str, ...] = ()
    key_of: Callable[[Any], Any] | None = None

    def config_key(self, cfg: RunConfig) -> str:
        """The hash of the config as this stage's outputs depend on it."""
        plain = cfg.fingerprint(*(r for r in self.reads if r not in self.keyed))
        if not self.keyed or self.key_of is None:
            return plain
        return json.dumps([plain, self.key_of(cfg)], sort_keys=True, default=str)


@dataclass
class StageContext:
    """What a stage function sees: a view of the config limited to the fields it declared, and
    the paths of the artifacts it declared."""

    cfg: Any  # ConfigView of the RunConfig
    run_dir: Path
    name: str
    fingerprint: str
    shard: tuple[int, int] = (0, 1)  # (index, count) for stages split across processes
    stage: Stage | None = None

    def path(self, artifact: Artifact, **parts: str) -> Path:
        """Where ``artifact`` lives in this run; refused unless the stage declared it."""
        st = self.stage
        if st is not None and artifact not in st.inputs and artifact not in st.outputs:
            raise ContractError(
                f"stage {self.name!r} uses artifact {artifact.pattern} without declaring it "
                "in its inputs or outputs"
            )
        return artifact.under(self.run_dir, **parts)

    def manifest_of(self, name: str) -> dict[str, Any]:
        """An upstream stage's manifest (fingerprint, summary...); {} where there is none."""
        if self.stage is not None and name not in self.stage.upstream:
            raise ContractError(
                f"stage {self.name!r} reads stage {name!r}, not one of its upstream"
            )
        return read_json(self.run_dir / name / "manifest.json") or {}

    def summary_of(self, name: str) -> dict[str, Any]:
        """The summary an upstream stage wrote in its manifest ({} where it has none)."""
        return self.manifest_of(name).get("summary") or {}

    def upstream(self, name: str) -> Path:
        d = self.run_dir / name
        if not (read_json(d / "manifest.json") or {}).get("complete"):
            raise UserError(
                f"stage {self.name!r} needs stage {name!r}; run it first (profuser run ... --stage {name})"
            )
        return d


STAGES: dict[str, Stage] = {}


def stage(
    name: str,
    reads: tuple[str, ...],
    upstream: tuple[str, ...] = (),
    version: int = 1,
    inputs: tuple[Artifact, ...] = (),
    outputs: tuple[Artifact, ...] = (),
    keyed: tuple[str, ...] = (),
    key_of: Callable[[Any], Any] | None = None,
) -> Callable:
    """Register ``fn`` as the pipeline stage ``name``, with the config fields it reads and
    the artifacts it reads (``inputs``, other stages') and writes (``outputs``, its own).
    ``keyed``: reads whose effect on the outputs ``key_of(cfg)`` sums up (see `Stage`)."""
    if set(keyed) - set(reads) or (keyed and key_of is None):
        raise ValueError(f"stage {name!r}: keyed reads must be reads, with a key_of")
    if name not in STAGE_ORDER:
        raise ValueError(f"unknown stage {name!r}")
    for a in outputs:
        if a.stage != name:
            raise ValueError(f"stage {name!r} declares another stage's artifact {a.pattern}")

    def wrap(fn: Callable[[StageContext], dict[str, Any]]) -> Callable:
        STAGES[name] = Stage(name, fn, reads, upstream, version, inputs, outputs, keyed, key_of)
        return fn

    return wrap


def load_stages() -> dict[str, Stage]:
    """Import the stage modules (they register themselves) and return them by name."""
    import importlib
    import pkgutil

    import profuser.stages as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"profuser.stages.{info.name}")
    return STAGES


def fingerprints(cfg: RunConfig) -> dict[str, str]:
    """Each available stage's fingerprint, chained through its upstream stages."""
    out: dict[str, str] = {}
    for name in STAGE_ORDER:
        st = STAGES.get(name)
        if st is None:
            continue
        ups = [out.get(u, "absent") for u in st.upstream]
        blob = json.dumps([name, st.version, st.config_key(cfg), ups])
        out[name] = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return out


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys for d in _diff(a.get(k), b.get(k), f"{prefix}{k}.")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _diff(x, y, f"{prefix}{i}.")
        ]
    return [] if a == b else [prefix.rstrip(".")]


def check_identity(cfg: RunConfig, run_dir: Path, force: bool) -> None:
    """Refuse a run directory made from another run's config, naming the differing fields."""
    stored = read_json(run_dir / "run.json")
    if stored is None:
        return
    now = cfg.model_dump(mode="json")
    diffs = [
        d for f in IDENTITY_FIELDS for d in _diff(stored["config"].get(f), now.get(f), f + ".")
    ]
    if diffs and not force:
        shown = ", ".join(diffs[:6]) + (" ..." if len(diffs) > 6 else "")
        raise UserError(
            f"{run_dir} was made by another run config (differs in {shown}); "
            "use another --out, or --force to re-run what depends on the changed fields"
        )


def run_pipeline(
    cfg: RunConfig,
    run_dir: Path,
    only: str | None = None,
    force: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> dict[str, dict]:
    """Run the stages in order (or just ``only``), skipping complete ones; returns summaries."""
    load_stages()
    if only is not None and only not in STAGE_ORDER:
        raise UserError(f"--stage {only!r} is not a stage; stages: {', '.join(STAGE_ORDER)}")
    if only is not None and only not in STAGES:
        raise UserError(f"stage {only!r} is not available in this version of profuser")
    run_dir.mkdir(parents=True, exist_ok=True)
    check_identity(cfg, run_dir, force)
    if _is_main_process():
        atomic_write_json(run_dir / "run.json", {"config": cfg.model_dump(mode="json")})
    fps = fingerprints(cfg)
    summaries: dict[str, dict] = {}
    for name in STAGE_ORDER:
        st = STAGES.get(name)
        if st is None or (only is not None and name != only):
            continue
        summaries[name] = run_stage(st, cfg, run_dir, fps[name], shard)
    return summaries


def _is_main_process() -> bool:
    """Under `accelerate launch` only the main process writes manifests."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0


def run_stage(
    st: Stage, cfg: RunConfig, run_dir: Path, fp: str, shard: tuple[int, int] = (0, 1)
) -> dict:
    """Run one stage unless complete under ``fp``; stale outputs are moved aside, not deleted."""
    main = _is_main_process()
    d = run_dir / st.name
    manifest = read_json(d / "manifest.json")
    if manifest and manifest.get("fingerprint") == fp and manifest.get("complete"):
        log.info("stage %-8s up to date, skipped", st.name)
        return {**manifest.get("summary", {}), "up_to_date": True}
    if manifest and manifest.get("fingerprint") != fp and main:
        stale = run_dir / ".stale" / f"{st.name}-{manifest.get('fingerprint', 'unknown')}"
        log.info("stage %-8s settings changed: moving old outputs to %s", st.name, stale)
        shutil.rmtree(stale, ignore_errors=True)
        stale.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(d), str(stale))
    d.mkdir(parents=True, exist_ok=True)
    started = time.time()
    if main:
        atomic_write_json(
            d / "manifest.json", {"stage": st.name, "fingerprint": fp, "complete": False}
        )
    log.info("stage %-8s running", st.name)
    view = ConfigView(cfg, st.reads, st.name)
    summary = st.fn(StageContext(view, run_dir, st.name, fp, shard, st)) or {}
    if summary.get("partial") or not main:
        # One shard of several finished (the stage completes when its last shard does),
        # or a worker process under accelerate: the main process writes the manifest.
        return summary
    atomic_write_json(
        d / "manifest.json",
        {
            "stage": st.name,
            "fingerprint": fp,
            "complete": True,
            "seconds": round(time.time() - started, 2),
            "summary": summary,
        },
    )
    log.info("stage %-8s done in %.1fs", st.name, time.time() - started)
    return summary


def print_run_summary(run_dir: Path) -> None:
    """One line per stage: done/incomplete/not run, its time and summary figures."""
    print(f"\nStages in {run_dir}:")
    for name in STAGE_ORDER:
        m = read_json(Path(run_dir) / name / "manifest.json")
        if m is None:
            print(f"  {name:<9} not run")
            continue
        state = "done" if m.get("complete") else "incomplete"
        summ = m.get("summary") or {}
        brief = ", ".join(f"{k}={v}" for k, v in summ.items() if not isinstance(v, dict | list))
        print(f"  {name:<9} {state:<10} {m.get('seconds', '-')!s:>7}s  {brief}")


__all__ = [
    "STAGE_ORDER",
    "STAGES",
    "Stage",
    "StageContext",
    "print_run_summary",
    "run_pipeline",
    "stage",
]
