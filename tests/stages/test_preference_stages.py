"""Implicit fusion on the mini world: extra samples, pairs, reference log-probs and the
preference variants, stage by stage."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from profuser.config import load_config
from profuser.errors import UserError
from profuser.io import read_json
from profuser.io.shards import read_rows, read_rows_file
from profuser.pipeline import run_pipeline
from tests.stages.test_end_to_end import _config

UPSTREAM = ("data", "select", "generate", "score", "teacher", "align", "pairs", "logprobs")
SOURCES = ["vicuna-like", "llama-chat-like", "mpt-like", "neox-like"]


def _run(cfg_path: Path, out: Path, stages: tuple[str, ...], *overrides: str) -> None:
    cfg = load_config(cfg_path, ["merges=[]", *overrides])
    for name in stages:
        run_pipeline(cfg, out, only=name)


def test_pairs_reference_log_probs_and_preference_variants(
    mini_world: Path, tmp_path: Path
) -> None:
    cfg = _config(mini_world, tmp_path)
    out = tmp_path / "run"
    overrides = (
        "variants=[implicit, infifpo, profuser_po]",
        "advantage.sampling.n=2",
        "advantage.sampling.temperature=1.5",
        "reward_models=[{name: reference, kind: reference, strongest: true}]",
    )
    _run(cfg, out, UPSTREAM, *overrides)
    # the inference-mode answers are those of a run without extra samples
    first = {a["id"]: a["answer"] for a in read_rows(out / "generate" / "mpt-like")}
    extra = {
        a["id"]: a["answer"] for a in read_rows(out / "generate" / "samples" / "mpt-like" / "1")
    }
    assert first.keys() == extra.keys() and first != extra
    plain = tmp_path / "plain"
    _run(cfg, plain, ("data", "select", "generate"), "advantage.sampling.temperature=1.5")
    assert {a["id"]: a["answer"] for a in read_rows(plain / "generate" / "mpt-like")} == first

    summary = read_json(out / "pairs" / "manifest.json")["summary"]
    assert summary["rules"] == ["intra_source"]
    got = summary["intra_source"]
    assert got["pairs"] + got["dropped"] == summary["rows"]
    assert sum(got["by_chosen_source"].values()) == got["pairs"] > 0
    assert sum(got["by_skill"].values()) == got["pairs"]
    pairs = read_rows_file(out / "pairs" / "intra_source.parquet")
    for p in pairs:
        assert p["chosen_source"] == p["rejected_source"]  # FuseChat-3.0's rule
        assert p["chosen_score"] > p["rejected_score"] and p["chosen"] != p["rejected"]

    # the fused reference needs every source's log-probs; each is a real log-probability
    logps = {r["id"]: r for r in read_rows_file(out / "logprobs" / "intra_source.parquet")}
    assert logps.keys() == {p["id"] for p in pairs}
    row = next(iter(logps.values()))
    assert {f"{n}/{s}" for n in ["target", *SOURCES] for s in ("chosen", "rejected")} <= set(row)
    assert all(v < 0 and math.isfinite(v) for k, v in row.items() if k != "id")
    # the target's starting model is vicuna-like: the same model, the same values
    assert row["target/chosen"] == pytest.approx(row["vicuna-like/chosen"], abs=1e-4)

    _run(cfg, out, ("train", "eval", "report"), *overrides)
    variants = read_json(out / "train" / "manifest.json")["summary"]["variants"]
    assert set(variants) == {"profuser", "implicit", "infifpo", "profuser_po"}
    # phases already trained in this stage are not trained again: infifpo starts from
    # implicit's SFT phase, profuser_po from ProFuser
    assert (out / "train" / "implicit" / "fusion" / "final" / "config.json").is_file()
    assert not (out / "train" / "infifpo" / "fusion").exists()
    assert not (out / "train" / "profuser_po" / "fusion").exists()
    refs = {
        n: read_rows_file(out / "train" / n / "reference.parquet")
        for n in ("implicit", "infifpo", "profuser_po")
    }
    assert refs["infifpo"] == refs["implicit"] != refs["profuser_po"]
    for name in ("implicit", "infifpo", "profuser_po"):
        assert (out / "train" / name / "final" / "config.json").is_file()
        header = (out / "train" / name / "log.csv").read_text().splitlines()[0]
        assert header == "step,phase,lr,seconds,dpo,margin,accuracy"
        assert variants[name]["steps"] >= 1 and math.isfinite(variants[name]["dpo"])
        # the reference is the model the preference phase starts from (after the SFT phase)
        ref = {r["id"]: r for r in read_rows_file(out / "train" / name / "reference.parquet")}
        assert ref.keys() == logps.keys()
        assert any(abs(ref[i]["chosen"] - logps[i]["target/chosen"]) > 1e-3 for i in ref)
    first = (out / "train" / "implicit" / "log.csv").read_text().splitlines()[1].split(",")
    assert float(first[5]) == pytest.approx(0.0, abs=1e-2)  # margin at step 0: π = ρ
    results = read_json(out / "report" / "results.json")
    assert {"variant-implicit", "variant-infifpo"} <= set(results["transfer"]["variants"])
    assert (out / "report" / "train_loss.png").stat().st_size > 1000


def test_a_preference_variant_without_enough_samples_is_refused(
    mini_world: Path, tmp_path: Path
) -> None:
    cfg = _config(mini_world, tmp_path)
    with pytest.raises(UserError, match=r"intra_source needs advantage.sampling.n >= 2"):
        _run(cfg, tmp_path / "run", UPSTREAM, "variants=[implicit]")
