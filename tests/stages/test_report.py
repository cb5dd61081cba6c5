"""The report stage from a fixture run directory: every table, figure and claim."""

from pathlib import Path

import datasets
import pytest

from profuser.config import load_config
from profuser.demo.markdown import summary_figures
from profuser.demo.runs import aggregate
from profuser.io import atomic_write_json, read_json
from profuser.io.shards import write_rows
from profuser.pipeline import StageContext, load_stages
from profuser.world.system_messages import ORCA_SYSTEM_MESSAGES

SOURCES = ["t", "a", "b"]


def _fixture(run: Path) -> None:
    rows = [
        {
            "id": f"x{i}",
            "system": ORCA_SYSTEM_MESSAGES[i % 3],
            "instruction": "q",
            "response": "a long gt answer " * 3,
        }
        for i in range(12)
    ]
    (run / "select").mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(str(run / "select" / "rows.parquet"))
    for s in SOURCES:
        write_rows(
            run / "generate" / s / "shard-00000.parquet",
            [
                {
                    "id": r["id"],
                    "source": s,
                    "answer": "short",
                    "num_tokens": 1,
                    "truncated": False,
                    "empty": False,
                }
                for r in rows
            ],
        )
    atomic_write_json(
        run / "teacher" / "manifest.json",
        {"complete": True, "summary": {"win_share": {"t": 0.5, "a": 0.3, "b": 0.2}}},
    )
    atomic_write_json(
        run / "score" / "manifest.json",
        {"complete": True, "summary": {"win_share": {"t": 0.2, "a": 0.6, "b": 0.2}}},
    )
    for v in ("profuser", "csft"):
        (run / "train" / v).mkdir(parents=True)
        (run / "train" / v / "log.csv").write_text(
            "step,phase,lr,seconds,sft_infer,kl_infer,sft_train,kl_train\n1,p,0.1,0.1,1.0,0.5,0.0,0.0\n2,p,0.1,0.1,0.8,0.4,0.2,0.1\n"
        )
    models = [("source", s, 0.4 + 0.01 * i) for i, s in enumerate(SOURCES)]
    models += [
        ("variant", "csft", 0.5),
        ("variant", "fuse", 0.52),
        ("variant", "simulfuse", 0.53),
        ("variant", "reversefuse", 0.51),
        ("variant", "profuser", 0.55),
        ("variant", "gtlen_fuse", 0.54),
        ("variant", "rmscore_fuse", 0.5),
        ("merge", "slerp", 0.45),
        ("merge", "ties", 0.46),
    ]
    atomic_write_json(
        run / "eval" / "scores.json",
        [
            {
                "kind": k,
                "name": n,
                "seed": 0,
                "scores": {"world_mc_capital": v, "world_gen_add": v - 0.1},
            }
            for k, n, v in models
        ],
    )


def _report(run: Path) -> dict:
    """The report stage on the fixture run in ``run`` (target ``t``); its summary."""
    cfg = load_config(
        base={
            "sources": [{"name": s, "path": f"/m/{s}"} for s in SOURCES],
            "target": "t",
            "dataset": {"path": "d.jsonl"},
        }
    )
    (run / "report").mkdir()
    return load_stages()["report"].fn(StageContext(cfg, run, "report", "fp"))


def test_report_from_fixture(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _fixture(run)
    summary = _report(run)
    assert summary == {"models": 12, "figures": 4}
    md = (run / "report" / "report.md").read_text()
    for heading in ("Table 1", "Table 2", "Table 3", "claims held"):
        assert heading in md
    assert "| t-profuser |" in md and "**" in md  # best in bold
    assert "ProFuser beats continual SFT on GT (Table 1): held" in md
    assert "Progressive beats simultaneous fusion (Table 1): held" in md
    assert "GT answers are longer than every source's" in md
    for fig in ("fig1a_win_share.png", "fig1b_answer_length.png", "train_loss.png"):
        assert (run / "report" / fig).stat().st_size > 1000
    res = read_json(run / "report" / "results.json")
    assert {m["kind"] for m in res["models"]} == {"source", "variant", "merge"}
    assert all("average" in m["scores"] for m in res["models"])
    # an old run: no per-item scores, so no intervals, and the claims say so
    assert "point estimates, no per-item scores" in md
    assert all(v is None for v in res["intervals"]["models"].values())
    assert {d["verdict"] for d in res["intervals"]["differences"]} == {"no interval"}
    cell = res["transfer"]["tasks"]["world_mc_capital"]["all"]["scores"]["variant-profuser"]
    assert cell == {"score": 0.55, "low": None, "high": None}
    assert "## Per-skill transfer" in md and "| variant-" not in md


def test_demo_figures_from_fixture(tmp_path: Path) -> None:
    def res(avg: float) -> dict:
        return {"models": [{"kind": "variant", "name": "profuser", "scores": {"average": avg}}]}

    s = aggregate(
        {
            "main": [res(0.5)],
            "rule:single_rm": [res(0.4)],
            "rule:reference": [res(0.45)],
            "sources:FuseMPT": [res(0.42)],
        }
    )
    summary_figures(s, tmp_path)
    assert (tmp_path / "fig3_selection_rules.png").stat().st_size > 1000
    assert (tmp_path / "fig4_num_sources.png").stat().st_size > 1000


def _right(k: int, n: int = 40) -> dict[str, float]:
    return {str(i): 1.0 if i < k else 0.0 for i in range(n)}


def test_report_with_item_scores_has_intervals_transfer_and_verdicts(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _fixture(run)
    # items right of 40 on world_gen's two skills: t leads `add`, b leads `next`
    right = {
        "source-t": (36, 4),
        "source-a": (4, 6),
        "source-b": (2, 36),
        "variant-profuser": (30, 30),
        "variant-csft": (36, 4),
        "variant-fuse": (36, 4),
    }
    rows = []
    for key, (add, nxt) in right.items():
        kind, _, name = key.partition("-")
        items = {"world_gen": {"add": _right(add), "next": _right(nxt)}}
        rec = {"kind": kind, "name": name, "seed": 0, "scores": {"world_gen": (add + nxt) / 80}}
        rec["per_skill"] = {"world_gen": {"add": {"exact_match": add / 40}}}
        atomic_write_json(run / "eval" / "models" / f"{key}.json", {**rec, "items": items})
        rows.append(rec)
    atomic_write_json(run / "eval" / "scores.json", rows)
    _report(run)
    res = read_json(run / "report" / "results.json")
    md = (run / "report" / "report.md").read_text()

    pf = res["intervals"]["models"]["variant-profuser"]
    assert pf["estimate"] == 60 / 80 and pf["low"] < 0.75 < pf["high"] and pf["level"] == 0.95
    diffs = {(d["a"], d["b"]): d for d in res["intervals"]["differences"]}
    # the target (average 0.5) is the best single source: one pair, measured once
    assert diffs[("variant-profuser", "source-t")]["verdict"] == "held"
    pf_key = "variant-profuser"
    assert set(diffs) == {
        (pf_key, "source-t"),
        (pf_key, "variant-csft"),
        (pf_key, "variant-fuse"),
        ("variant-fuse", "variant-csft"),
    }
    same = diffs[("variant-fuse", "variant-csft")]  # identical items: exactly 0
    assert (same["estimate"], same["low"], same["high"]) == (0.0, 0.0, 0.0)
    assert same["verdict"] == "not distinguishable"
    assert "Fuse beats CSFT (Table 1 order): not distinguishable" in md
    assert "ProFuser beats continual SFT on GT (Table 1): held" in md
    assert "Fusion improves the target over itself before fusion: held" in md
    assert "Not measured in this run" in md and "SimulFuse beats ReverseFuse" in md

    gen = res["transfer"]["tasks"]["world_gen"]
    assert gen["add"]["kind"] == "target-led" and gen["next"]["kind"] == "source-led"
    assert gen["next"]["takeover"]["variant-profuser"] == pytest.approx((30 - 4) / (36 - 4))
    assert gen["add"]["retained"]["variant-profuser"] == pytest.approx(30 / 36)
    summary = res["transfer"]["variants"]["variant-profuser"]
    oracle, target = (36 / 40 + 36 / 40) / 2, 40 / 80
    assert summary["oracle_gap_closed"] == pytest.approx((60 / 80 - target) / (oracle - target))
    assert "### world_gen" in md and "| target: t |" in md and "*takeover: profuser*" in md
    assert "| profuser | +81% (1) | 83% (1) |" in md
    assert (run / "report" / "fig_transfer.png").stat().st_size > 1000


def test_table2_groups_the_world_skills_of_benchmark_and_dev_alike() -> None:
    from profuser.report.tables import grouped

    def model(group: str) -> dict:
        per_skill = {
            f"{group}_gen": {"capital": {"exact_match": 1.0}, "next": {"exact_match": 0.0}}
        }
        return {"kind": "variant", "name": "profuser", "scores": {}, "per_skill": per_skill}

    for group in ("world", "worlddev"):
        (row,) = grouped([model(group)])
        assert row["scores"] == {"knowledge": 1.0, "reasoning": 0.0}, group
