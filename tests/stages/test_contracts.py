"""Stage contracts: each stage touches only the config fields and artifacts it declares.

The pipeline runs once on the mini world; then every stage runs again alone in a fresh run
directory that holds only its declared inputs (and its upstream stages' manifests). A stage
that read an undeclared file would fail there or give another summary; one that read an
undeclared config field fails already in the first run (its config view raises).
"""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path

import pytest

from profuser.io import read_json
from profuser.pipeline import STAGE_ORDER, STAGES, StageContext, load_stages, run_pipeline
from profuser.stages.contracts import (
    ANSWERS,
    CHOSEN,
    DATA_ROWS,
    FUSION_ROWS,
    Artifact,
    ConfigView,
    ContractError,
)

FRAMEWORK_FILES = ("run.json", "*/manifest.json")


def _file_map(run_dir: Path) -> dict[str, Path]:
    """Every file of a run by its relative name; a tensorboard event file by its folder
    alone (its name carries the time it was written)."""
    out = {}
    for p in run_dir.rglob("*"):
        if p.is_file() and ".stale" not in p.parts:
            rel = p.relative_to(run_dir)
            out[str(rel.parent / "events.out.tfevents" if "tfevents" in p.name else rel)] = p
    return out


def _files(run_dir: Path) -> set[str]:
    return set(_file_map(run_dir))


def _matches(rel: str, artifacts: tuple[Artifact, ...]) -> bool:
    """Whether ``rel`` is one of the artifacts or lies inside one (a folder artifact)."""
    for a in artifacts:
        pat = a.pattern
        if fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel, pat + "/*"):
            return True
    return False


def _ancestors(name: str) -> set[str]:
    out: set[str] = set()
    for up in STAGES[name].upstream:
        out |= {up, *_ancestors(up)}
    return out


def test_declarations_are_consistent() -> None:
    load_stages()
    assert set(STAGES) == set(STAGE_ORDER)
    for name, st in STAGES.items():
        assert st.outputs, f"stage {name} declares no outputs"
        assert all(a.stage == name for a in st.outputs)
        for a in st.inputs:
            # a stage may take back its own earlier outputs (train's variants, select's probes)
            assert a.stage in _ancestors(name) or a.stage == ".stale", (
                f"stage {name} reads {a.pattern} from a stage that is not upstream of it"
            )


def test_every_file_of_a_run_was_declared_by_the_stage_that_wrote_it(full_run) -> None:
    _, run_dir, _, _ = full_run
    files = _files(run_dir)
    assert files
    undeclared = [
        f
        for f in files
        if not any(fnmatch.fnmatch(f, p) for p in FRAMEWORK_FILES)
        and not _matches(f, STAGES[f.split("/")[0]].outputs)
    ]
    assert undeclared == []


@pytest.mark.parametrize("name", STAGE_ORDER)
def test_each_stage_runs_on_its_declared_inputs_alone(full_run, name: str) -> None:
    cfg, run_dir, summaries, factory = full_run
    st = STAGES[name]
    alone = factory.mktemp(f"alone-{name}")
    all_files = _file_map(run_dir)
    for f, src in all_files.items():
        stage_of = f.split("/")[0]
        keep = _matches(f, st.inputs) or (
            f.endswith("manifest.json") and stage_of in _ancestors(name)
        )
        if keep:
            (alone / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, alone / f)
    got = run_pipeline(cfg, alone, only=name)[name]
    assert read_json(alone / name / "manifest.json")["complete"]
    assert got == summaries[name]
    wrote = {f for f in _files(alone) if f.startswith(name + "/")}
    assert wrote == {f for f in all_files if f.startswith(name + "/")}


def test_config_view_gives_declared_fields_and_refuses_others(full_run) -> None:
    cfg = full_run[0]
    view = ConfigView(cfg, ("advantage.top_k", "sources", "seed"), "demo-stage")
    assert view.advantage.top_k == cfg.advantage.top_k
    assert view.sources == cfg.sources and view.seed == cfg.seed
    assert view.fingerprint("seed") == cfg.fingerprint("seed")
    with pytest.raises(ContractError, match="advantage.top_p"):
        _ = view.advantage.top_p
    with pytest.raises(ContractError, match="`target`"):
        _ = view.target
    with pytest.raises(ContractError):
        view.fingerprint("train")
    with pytest.raises(ContractError):
        view.seed = 3
    assert view.used == {"advantage.top_k", "sources", "seed"}


def test_a_stage_may_not_use_an_undeclared_artifact(tmp_path: Path) -> None:
    load_stages()
    ctx = StageContext(None, tmp_path, "score", "fp", stage=STAGES["score"])
    assert ctx.path(CHOSEN) == tmp_path / "score" / "chosen.parquet"
    assert ctx.path(ANSWERS, source="a") == tmp_path / "generate" / "a"
    assert ctx.path(FUSION_ROWS) == tmp_path / "select" / "rows.parquet"
    from profuser.stages.contracts import SELECTION

    with pytest.raises(ContractError, match="teacher/selection.parquet"):
        ctx.path(SELECTION)
    with pytest.raises(ContractError, match="data/train.parquet"):  # the pool: select's alone
        ctx.path(DATA_ROWS)
    with pytest.raises(ContractError, match="not one of its upstream"):
        ctx.summary_of("train")
