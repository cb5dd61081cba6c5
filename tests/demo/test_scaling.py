"""The demo's source-scaling study: its plan, configs, costs, summary and section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from profuser.demo.runs import (
    aggregate,
    demo_config,
    only_runs,
    plan,
    scaling_planned,
    summary_markdown,
)
from profuser.demo.scaling import (
    ROSTER,
    WORLD,
    scaling_facts,
    scaling_sources,
    scaling_summary,
)
from profuser.demo.summary import SUMMARY_KEYS
from profuser.errors import ConfigError

N = 20


def _record(right: int) -> dict:
    items = {"worldx_gen": {"half": {str(i): float(i < right) for i in range(N)}}}
    return {
        "kind": "variant",
        "name": "profuser",
        "scores": {"worldx_gen": right / N},
        "items": items,
    }


def _result(avg: float, takeover: float | None, seconds: float) -> dict:
    scores = {"source-vicuna-like": 0.1, "source-qwen2-like": 0.9, "variant-profuser": avg}
    half = {
        "scores": {m: {"score": v} for m, v in scores.items()},
        "kind": "source-led",
        "takeover": {},
        "retained": {},
    }
    mine = {"median_takeover": takeover, "average": avg}
    return {
        "models": [{"kind": "variant", "name": "profuser", "scores": {"average": avg}}],
        "transfer": {  # the shape of a run's report/results.json transfer table
            "target": "source-vicuna-like",
            "tasks": {"worldx_gen": {"half": half}},
            "variants": {"variant-profuser": dict.fromkeys(SUMMARY_KEYS, 0.9) | mine},
            "oracle": {"average": 0.95},
        },
        "scaling": {"seconds": seconds, "train_seconds": seconds / 2, "stored_bytes": 2e6},
    }


def test_the_study_is_planned_only_when_asked_the_most_sources_first() -> None:
    assert not [r for r in plan(Path("o"), False, [0], []).runs if r[0].startswith("scale:")]
    runs = plan(Path("o"), False, [0, 1], [], scaling=True).runs
    scale = [r for r in runs if r[0].startswith("scale:")]
    assert [r[0] for r in scale] == ["scale:6", "scale:4", "scale:2", "scale:1"]
    assert [r[1].name for r in scale] == [f"scale-{n}-seed-0" for n in (6, 4, 2, 1)]
    assert [r[3] for r in scale][-1] == ["vicuna-like"]
    assert scale[0][3] == list(ROSTER)
    assert set(WORLD) <= set(scale[0][2]) and "variants=[]" in scale[0][2]
    assert not [r for r in plan(Path("o"), True, [0], [], scaling=True).runs if r[0] != "main"]
    # --only scale plans the study and runs just it (no main run: another world)
    assert scaling_planned(False, ["scale"]) and scaling_planned(False, ["scale:2"])
    assert not scaling_planned(False, ["select"]) and not scaling_planned(False, None)
    assert [r[0] for r in only_runs(runs, ["scale:2"])] == ["scale:2"]


def test_a_size_fuses_the_first_models_of_the_extended_world() -> None:
    from profuser.configs import config_path

    assert scaling_sources(2) == ["vicuna-like", "llama-chat-like"]
    with pytest.raises(ValueError, match="has 6 models; 7 asked"):
        scaling_sources(7)
    cfg = demo_config(config_path("demo"), ["seed=0", "merges=[]", *WORLD], scaling_sources(6))
    assert [s.name for s in cfg.sources] == list(ROSTER)
    assert cfg.sources[-1].path == "world:models/gemma-like"
    assert cfg.sources[1].path == "world:models/llama-chat-like"  # the config's own entry
    assert cfg.path_options["world"]["roster"] == "six"
    assert cfg.eval.tasks == ["worldx_mc", "worldx_gen"]
    alone = demo_config(config_path("demo"), ["seed=0", "merges=[]", *WORLD], scaling_sources(1))
    assert [s.name for s in alone.sources] == ["vicuna-like"] and alone.target == "vicuna-like"


def test_an_unknown_roster_is_refused_by_name() -> None:
    from profuser.world.resolve import world_spec_from

    with pytest.raises(ConfigError, match=r"world.roster: 'seven' is not a roster; choose one of"):
        world_spec_from({"roster": "seven"})
    six = world_spec_from({"roster": "six"})
    assert [s.name for s in six.sources] == list(ROSTER) and len(six.skills) == 12
    assert world_spec_from({}).key() != six.key()


def test_facts_count_the_stage_seconds_and_the_bytes_each_size_stores(tmp_path: Path) -> None:
    for stage, seconds in (("generate", 3.0), ("teacher", 5.0), ("train", 20.0)):
        (tmp_path / stage).mkdir()
        (tmp_path / stage / "manifest.json").write_text(json.dumps({"seconds": seconds}))
    (tmp_path / "teacher" / "shard.npz").write_bytes(b"x" * 1000)
    (tmp_path / "train" / "model.bin").write_bytes(b"x" * 5000)  # not a stored-per-source stage
    facts = scaling_facts(tmp_path)
    assert facts["seconds"] == 28.0 and facts["train_seconds"] == 20.0
    (tmp_path / "eval").mkdir()  # eval's time depends on the cache: not a fusion cost
    (tmp_path / "eval" / "manifest.json").write_text(json.dumps({"seconds": 99.0}))
    assert scaling_facts(tmp_path)["seconds"] == 28.0
    teacher_manifest = len((tmp_path / "teacher" / "manifest.json").read_bytes())
    generate_manifest = len((tmp_path / "generate" / "manifest.json").read_bytes())
    assert facts["teacher_bytes"] == 1000 + teacher_manifest
    assert facts["stored_bytes"] == 1000 + teacher_manifest + generate_manifest


def test_each_size_is_compared_with_the_next_smaller_one_item_by_item() -> None:
    results = {
        "scale:6": [_result(0.8, 0.7, 300)],
        "scale:1": [_result(0.5, None, 100)],
        "scale:2": [_result(0.6, 0.5, 150)],
    }
    profuser = {
        "scale:1": {0: _record(8)},
        "scale:2": {0: _record(12)},
        "scale:6": {0: _record(16)},
    }
    got = scaling_summary(results, profuser)
    assert list(got) == ["scale:1", "scale:2", "scale:6"]  # in size order
    assert "vs_smaller" not in got["scale:1"]
    assert got["scale:6"]["vs_smaller"]["than"] == "scale:2"
    assert got["scale:2"]["vs_smaller"]["estimate"] == pytest.approx(0.2)
    assert got["scale:2"]["median_takeover"][0] == pytest.approx(0.5)
    assert got["scale:6"]["seconds"][0] == 300
    summary = aggregate(results)
    summary["scaling"] = got
    md = summary_markdown(summary, quick=False)
    assert "## Scaling the number of sources" in md
    assert "| 1 | none (the target alone) | 50.0 ± 0.0 | – |" in md
    assert "(vs 2)" in md and "llama-chat-like, mpt-like" in md
    # per skill: the target, the best source, then ProFuser at each size
    assert "| target (vicuna-like) | 10 |" in md and "| best of the sources fused at 6 | 90 |" in md
    assert "| ProFuser, 1 model | 50 |" in md and "| ProFuser, 6 models | 80 |" in md


def test_a_size_without_a_record_is_skipped_in_the_comparisons() -> None:
    results = {f"scale:{n}": [_result(0.5 + n / 100, 0.5, 100)] for n in (1, 2, 4)}
    profuser = {"scale:1": {0: _record(8)}, "scale:4": {0: _record(12)}}  # no record at 2
    got = scaling_summary(results, profuser)
    assert "vs_smaller" not in got["scale:2"]
    assert got["scale:4"]["vs_smaller"]["than"] == "scale:1"
    # sizes that share no seed get no interval rather than a wrong reason
    got = scaling_summary(results, {"scale:1": {0: _record(8)}, "scale:4": {1: _record(12)}})
    assert "vs_smaller" not in got["scale:4"]
