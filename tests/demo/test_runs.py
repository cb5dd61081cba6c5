import math
from pathlib import Path

import pytest

from profuser.demo.runs import aggregate, demo_seeds, only_runs, plan, summary_markdown
from profuser.errors import UserError


def _res(seed_shift: float) -> dict:
    return {
        "models": [
            {
                "kind": "source",
                "name": "a",
                "scores": {"t1": 0.5 + seed_shift, "average": 0.5 + seed_shift},
            },
            {
                "kind": "variant",
                "name": "profuser",
                "scores": {"t1": 0.7 + seed_shift, "average": 0.7 + seed_shift},
            },
            {"kind": "variant", "name": "csft", "scores": {"t1": 0.6, "average": 0.6}},
        ],
        "win_share": {},
    }


def test_plan_quick_and_full() -> None:
    q = plan(Path("o"), True, [0], [])
    assert [r[0] for r in q.runs] == ["main"]
    assert "variants=[]" in q.runs[0][2]
    f = plan(Path("o"), False, [0, 1, 2], [])
    labels = [r[0] for r in f.runs]
    assert labels.count("main") == 3
    assert {"rule:single_rm", "rule:reference", "sources:FuseMPT", "sources:FuseLlama"} <= set(
        labels
    )
    keep = [r[3] for r in f.runs if r[0] == "sources:FuseMPT"][0]
    assert keep == ["vicuna-like", "mpt-like"]
    # the studies run on the first seed unless told otherwise, each beside its seed's main run
    assert {r[1].name for r in f.runs if r[0] != "main"} == {
        "rule-single_rm-seed-0",
        "rule-reference-seed-0",
        "sources-FuseMPT-seed-0",
        "sources-FuseLlama-seed-0",
        "lora-seed-0",
        # the implicit-fusion study compares with ProFuser over the demo's seeds
        "implicit-seed-0",
        "implicit-seed-1",
        "implicit-seed-2",
    }
    lora = [r[2] for r in f.runs if r[0] == "train:lora"][0]
    assert any(o.startswith("train.lora=") for o in lora) and "variants=[]" in lora
    every = plan(Path("o"), False, [0, 1, 2], [], study_seeds=[0, 2])
    assert sorted(
        o for r in every.runs if r[0] == "rule:single_rm" for o in r[2] if o.startswith("seed=")
    ) == [
        "seed=0",
        "seed=2",
    ]
    assert len([r for r in every.runs if r[0] != "main"]) == 12
    implicit = [r[2] for r in f.runs if r[0] == "implicit"][0]
    assert "advantage.sampling.n=2" in implicit
    assert "variants=[implicit, profuser_po, infifpo]" in implicit
    # the selection study joins where the plan is given its budget of rows
    sel = plan(Path("o"), False, [0, 1, 2], [], select_rows=1200)
    arms = {r[0]: r[2] for r in sel.runs if r[0].startswith("select:")}
    # random is the main run of the seed (the fusion set: a random draw of the pool's questions)
    assert list(arms) == ["select:advantage_gap", "select:advantage_stratified"]
    gap = arms["select:advantage_gap"]
    assert {"dataset.path=world:data/pool.jsonl", "select.rows=1200", "variants=[]"} <= set(gap)
    assert "select.rule=advantage_gap" in gap and "seed=0" in gap
    assert not [r for r in plan(Path("o"), True, [0], [], select_rows=1200).runs if r[0] != "main"]


def test_study_seeds_must_be_run_seeds() -> None:
    assert demo_seeds(False, None, [1]) == [0, 1, 2]
    assert demo_seeds(True, None, None) == [0]
    with pytest.raises(
        UserError, match=r"--study-seeds 3: each study seed must also be a run seed"
    ):
        demo_seeds(False, [0, 1], [3])


def test_aggregate_mean_and_std_over_seeds() -> None:
    s = aggregate(
        {
            "main": [_res(0.0), _res(0.1)],
            "rule:single_rm": [_res(-0.1)],
            "sources:FuseMPT": [_res(0.0)],
        }
    )
    pf = next(m for m in s["main"]["models"] if m["name"] == "profuser")
    mean, std = pf["scores"]["average"]
    assert math.isclose(mean, 0.75) and math.isclose(std, 0.0707106781, rel_tol=1e-6)
    md = summary_markdown(s, quick=False)
    assert "**75.0 ± 7.1**" in md  # best of its column in bold
    assert "Figure 3" in md and "single_rm: 60.0 ± 0.0" in md
    assert "Table 4" in md and "FuseMPT: 70.0 ± 0.0" in md


def test_studies_reuse_only_the_main_runs_stages_with_their_own_fingerprint(
    tmp_path: Path,
) -> None:
    from profuser.configs import config_path
    from profuser.demo.runs import SHARED_STAGES, demo_config, share_upstream
    from profuser.io import atomic_write_json, read_json
    from profuser.pipeline import fingerprints, load_stages

    load_stages()
    cfg_path = config_path("demo")
    main_fps = fingerprints(demo_config(cfg_path, ["seed=0"], None))
    main = tmp_path / "seed-0"
    for name in SHARED_STAGES:
        atomic_write_json(
            main / name / "manifest.json", {"fingerprint": main_fps[name], "complete": True}
        )
    rule = demo_config(cfg_path, ["seed=0", "advantage.inference_rule=reference"], None)
    copied = share_upstream(main, tmp_path / "rule", rule)
    assert copied == [
        "data",
        "select",
        "generate",
    ]  # the rule picks the answers: scoring on differs
    assert copied == [n for n in SHARED_STAGES if fingerprints(rule)[n] == main_fps[n]]
    assert read_json(tmp_path / "rule" / "generate" / "manifest.json")["complete"]
    # Fewer sources: only the data stage is the same.
    fewer = demo_config(cfg_path, ["seed=0", "merges=[]"], ["vicuna-like", "mpt-like"])
    assert share_upstream(main, tmp_path / "fewer", fewer) == ["data"]  # select probes the sources
    # Another seed, or an incomplete main stage: nothing to share.
    assert share_upstream(main, tmp_path / "other", demo_config(cfg_path, ["seed=1"], None)) == [
        "data",
        "select",
    ]
    atomic_write_json(main / "data" / "manifest.json", {"fingerprint": main_fps["data"]})
    assert share_upstream(main, tmp_path / "partial", fewer) == []


def test_only_runs_keeps_the_named_runs_and_families() -> None:
    runs = plan(Path("o"), False, [0, 1], [], select_rows=10).runs
    # the selection arms bring the main run of their seed, the study's random arm
    assert [r[1].name for r in only_runs(runs, ["select"])] == [
        "seed-0",
        "select-advantage_gap-seed-0",
        "select-advantage_stratified-seed-0",
    ]
    assert [r[1].name for r in only_runs(runs, ["select:random"])] == ["seed-0"]
    assert [r[1].name for r in only_runs(runs, ["main", "train:lora"])] == [
        "seed-0",
        "seed-1",
        "lora-seed-0",
    ]
    assert only_runs(runs, None) == runs
    with pytest.raises(UserError, match=r"--only selekt: no such run in this demo; choose from"):
        only_runs(runs, ["selekt"])


def test_only_keeps_the_planned_runs_an_earlier_call_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import profuser.demo.runs as runs_mod
    from profuser.configs import config_path
    from profuser.io import atomic_write_json

    out = tmp_path / "demo"

    def finish(run_dir: Path, shift: float) -> None:
        atomic_write_json(run_dir / "report" / "results.json", _res(shift))
        atomic_write_json(run_dir / "report" / "manifest.json", {"complete": True})

    finish(out / "seed-0", 0.0)  # an earlier `--only main`
    (out / "rule-single_rm-seed-0" / "report").mkdir(parents=True)  # begun, never finished
    ran: list[str] = []

    def fake_run_all(specs, runner, jobs, on_done) -> None:
        for i, spec in enumerate(specs):
            finish(spec[1], 0.1)
            ran.append(spec[0])
            on_done(i, (0, "vicuna-like"))

    monkeypatch.setattr(runs_mod, "run_all", fake_run_all)
    summary = runs_mod.run_demo(config_path("demo"), out, False, [], only=["sources:FuseMPT"])
    assert ran == ["sources:FuseMPT"]
    # this call's run and the earlier main run, not the unfinished rule run
    assert {"main", "sources:FuseMPT"} == {k for k in summary if ":" in k or k == "main"}
    assert summary["main"]["seeds"] == summary["sources:FuseMPT"]["seeds"] == 1
