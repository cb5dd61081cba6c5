"""The eval stage: sources, trained variants and merges; one file per model; resume."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402

pytest.importorskip("lm_eval")

from profuser.config import load_config  # noqa: E402
from profuser.io import read_json  # noqa: E402
from profuser.pipeline import StageContext, load_stages  # noqa: E402

TASKS = ["world_mc", "world_gen"]


def _cfg(world: Path, *overrides: str):
    base = {
        "sources": [
            {"name": "vicuna-like", "path": str(world / "models" / "vicuna-like")},
            {"name": "mpt-like", "path": str(world / "models" / "mpt-like")},
        ],
        "target": "vicuna-like",
        "dataset": {"path": str(world / "data" / "train.jsonl"), "id_field": "id"},
        "schedule": "profuser",
        "eval": {"tasks": TASKS, "limit": 1, "batch_size": 8},
        "seed": 3,
    }
    return load_config(base=base, overrides=list(overrides))


def _run(cfg, run_dir: Path) -> dict:
    stage = load_stages()["eval"]
    return stage.fn(StageContext(cfg, run_dir, "eval", "fp"))


def test_eval_stage_writes_one_file_per_model_and_resumes(
    mini_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    # A trained variant and a merge: here copies of the target's own directory.
    shutil.copytree(mini_world / "models" / "vicuna-like", run / "train" / "profuser" / "final")
    shutil.copytree(mini_world / "models" / "vicuna-like", run / "train" / "merges" / "slerp")
    (run / "train" / "csft").mkdir(parents=True)  # unfinished: no final/ yet, ignored

    summary = _run(_cfg(mini_world), run)
    keys = ["source-vicuna-like", "source-mpt-like", "variant-profuser", "merge-slerp"]
    assert list(summary["models"]) == keys
    assert not summary.get("partial")
    for key in keys:
        rec = read_json(run / "eval" / "models" / f"{key}.json")
        assert rec["seed"] == 3 and set(rec["scores"]) == set(TASKS)
        assert set(rec["per_skill"]["world_mc"]) >= {"capital", "add"}
        # per-item headline scores, not lm-eval's full sample logs
        assert "samples" not in rec and set(rec["items"]) == set(TASKS)
        for task, metric in (("world_mc", "acc"), ("world_gen", "exact_match")):
            assert set(rec["items"][task]) == set(rec["per_skill"][task])
            for skill, docs in rec["items"][task].items():
                assert list(docs) == ["0"]  # eval.limit = 1 item per skill
                mean = sum(docs.values()) / len(docs)
                assert mean == pytest.approx(rec["per_skill"][task][skill][metric])
    rows = read_json(run / "eval" / "scores.json")
    assert [f"{r['kind']}-{r['name']}" for r in rows] == keys
    assert set(rows[0]) == {"kind", "name", "seed", "scores", "per_skill", "average"}
    # Same weights, same numbers, whichever way the model was found.
    assert rows[2]["scores"] == rows[3]["scores"] == rows[0]["scores"]

    # Re-run: nothing is evaluated again.
    import profuser.stages.eval as eval_stage

    def boom(*a, **k):
        raise AssertionError("evaluated a model twice")

    monkeypatch.setattr(eval_stage, "evaluate_model", boom)
    again = _run(_cfg(mini_world), run)
    assert again["models"] == summary["models"]


def test_eval_stage_without_trained_variants_evaluates_sources_and_stays_partial(
    mini_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import profuser.stages.eval as eval_stage

    calls: list[str] = []

    def fake(model, tok, tasks, **kw):
        calls.append(model.config.model_type)
        return {"tasks": {}, "scores": {t: 0.5 for t in tasks}, "per_skill": {}, "average": 0.5}

    monkeypatch.setattr(eval_stage, "evaluate_model", fake)
    run = tmp_path / "run"
    summary = _run(_cfg(mini_world, "variants=[csft]"), run)  # no train/ folder at all
    assert calls == ["llama", "mpt"]
    assert summary["partial"] and summary["missing_variants"] == ["profuser", "csft"]
    assert len(read_json(run / "eval" / "scores.json")) == 2
    # Sharded: process 1 of 2 takes the second model only.
    shutil.rmtree(run / "eval")
    calls.clear()
    stage = load_stages()["eval"]
    stage.fn(StageContext(_cfg(mini_world, "eval.cache=false"), run, "eval", "fp", shard=(1, 2)))
    assert calls == ["mpt"]


def test_eval_cache_reuses_records_of_identical_files_only(
    mini_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import profuser.stages.eval as eval_stage

    calls: list[str] = []
    real = eval_stage.evaluate_model

    def counted(model, tok, tasks, **kw):
        calls.append(model.config.model_type)
        return real(model, tok, tasks, **kw)

    monkeypatch.setattr(eval_stage, "evaluate_model", counted)
    first = _run(_cfg(mini_world), tmp_path / "a")
    assert calls == ["llama", "mpt"]
    # Another run of the same sources, same settings: nothing is evaluated, same records.
    again = _run(_cfg(mini_world), tmp_path / "b")
    assert calls == ["llama", "mpt"] and again["models"] == first["models"]
    rec_a = read_json(tmp_path / "a" / "eval" / "models" / "source-mpt-like.json")
    rec_b = read_json(tmp_path / "b" / "eval" / "models" / "source-mpt-like.json")
    assert rec_b.pop("cached") and rec_a == rec_b
    # Another training seed scores the same files the same way (lm-eval runs with eval.seed):
    # the record is reused and carries the new run's seed.
    _run(_cfg(mini_world, "seed=4"), tmp_path / "s")
    assert calls == ["llama", "mpt"]
    rec_s = read_json(tmp_path / "s" / "eval" / "models" / "source-mpt-like.json")
    assert rec_s["seed"] == 4 and rec_s["eval_seed"] == 0 and rec_s["scores"] == rec_a["scores"]
    # One changed file, another eval seed, or the cache off: evaluated again.
    changed = tmp_path / "mpt-copy"
    shutil.copytree(mini_world / "models" / "mpt-like", changed)
    (changed / "config.json").write_text(
        (changed / "config.json").read_text().replace("{", '{"_edited": 1, ', 1)
    )
    _run(_cfg(mini_world, f"sources.1.path={changed}"), tmp_path / "c")
    assert calls == ["llama", "mpt", "mpt"]
    _run(_cfg(mini_world, "eval.seed=4"), tmp_path / "d")
    assert calls == ["llama", "mpt", "mpt", "llama", "mpt"]
    _run(_cfg(mini_world, "eval.cache=false"), tmp_path / "e")
    assert calls[5:] == ["llama", "mpt"]


def test_an_unwritable_eval_cache_costs_a_warning_not_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import profuser.evaluate.cache as eval_cache

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("PROFUSER_EVAL_CACHE", str(blocker / "eval"))
    eval_cache.store("k", {"average": 0.5})
    assert "eval cache" in caplog.text and eval_cache.load("k") is None
