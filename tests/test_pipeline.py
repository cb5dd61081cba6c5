import json
from pathlib import Path

import pytest

from profuser.config import load_config
from profuser.errors import UserError
from profuser.io import read_json
from profuser.pipeline import fingerprints, load_stages, run_pipeline


def _dataset(tmp_path: Path, n: int = 12) -> Path:
    p = tmp_path / "d.jsonl"
    with p.open("w") as f:
        for i in range(n):
            f.write(
                json.dumps(
                    {"id": f"x{i}", "system_prompt": "s", "question": f"q{i}", "response": f"r{i}"}
                )
                + "\n"
            )
    return p


def _cfg(tmp_path: Path, *overrides: str):
    base = {
        "sources": [{"name": "a", "path": "/m/a"}, {"name": "b", "path": "/m/b"}],
        "target": "a",
        "dataset": {"path": str(_dataset(tmp_path)), "id_field": "id"},
    }
    return load_config(base=base, overrides=list(overrides))


def test_stage_skipped_on_rerun_and_rerun_when_its_setting_changes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    s1 = run_pipeline(_cfg(tmp_path), run, only="data")
    assert s1["data"]["rows"] == 12
    m1 = read_json(run / "data" / "manifest.json")
    assert m1["complete"]
    s2 = run_pipeline(_cfg(tmp_path), run, only="data")
    assert s2["data"]["up_to_date"] is True
    # A setting the stage does not read leaves it alone.
    s3 = run_pipeline(_cfg(tmp_path, "train.lr=0.1"), run, only="data")
    assert s3["data"]["up_to_date"] is True
    # One it reads re-runs it (allowed with --force since dataset is part of a run's identity);
    # the old output is kept aside, not deleted.
    s4 = run_pipeline(_cfg(tmp_path, "dataset.limit=5"), run, only="data", force=True)
    assert s4["data"]["rows"] == 5 and not s4["data"].get("up_to_date")
    assert read_json(run / "data" / "manifest.json")["fingerprint"] != m1["fingerprint"]
    assert (run / ".stale" / f"data-{m1['fingerprint']}" / "train.parquet").is_file()


def test_run_directory_from_another_config_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_pipeline(_cfg(tmp_path), run, only="data")
    with pytest.raises(
        UserError, match=r"another run config \(differs in dataset.limit\).*--force"
    ):
        run_pipeline(_cfg(tmp_path, "dataset.limit=3"), run, only="data")
    with pytest.raises(UserError, match="sources.1.path"):
        run_pipeline(_cfg(tmp_path, "sources.1.path=/m/c"), run, only="data")


def test_fingerprints_chain_through_upstream(tmp_path: Path) -> None:
    load_stages()
    a = fingerprints(_cfg(tmp_path))
    b = fingerprints(_cfg(tmp_path, "dataset.seed=5"))
    assert a["data"] != b["data"]
    for name, fp in a.items():
        if name != "data":
            assert fp != b[name], f"{name} must change when its upstream data changes"


def test_the_pair_stages_see_the_schedules_only_through_their_preference_phases(
    tmp_path: Path,
) -> None:
    load_stages()
    n2 = "advantage.sampling.n=2"
    base = fingerprints(_cfg(tmp_path, n2, "variants=[implicit]"))
    more = fingerprints(_cfg(tmp_path, n2, "variants=[csft, implicit]"))
    assert (more["pairs"], more["logprobs"]) == (base["pairs"], base["logprobs"])
    assert more["train"] != base["train"]  # which variants are trained changed
    fused = fingerprints(_cfg(tmp_path, n2, "variants=[implicit, infifpo]"))
    assert fused["pairs"] == base["pairs"]  # the same pairing rule
    assert fused["logprobs"] != base["logprobs"]  # the sources' log-probs are needed now
    cross = "schedule=[{name: p, epochs: 1, w1: 0, w2: 0, lam: 0, beta: 0, preference: "
    other = fingerprints(_cfg(tmp_path, n2, cross + "{pairing: cross_source}}]"))
    assert other["pairs"] != base["pairs"]


def test_unknown_stage_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a stage"):
        run_pipeline(_cfg(tmp_path), tmp_path / "r", only="nope")
