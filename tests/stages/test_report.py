"""The report stage from a fixture run directory: every table, figure and claim."""

from pathlib import Path

import datasets

from profuser.config import load_config
from profuser.demo import _figures, aggregate
from profuser.io import atomic_write_json, read_json
from profuser.pipeline import StageContext, load_stages
from profuser.shards import write_rows
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
    (run / "data").mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(str(run / "data" / "train.parquet"))
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


def test_report_from_fixture(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _fixture(run)
    cfg = load_config(
        base={
            "sources": [{"name": s, "path": f"/m/{s}"} for s in SOURCES],
            "target": "t",
            "dataset": {"path": "d.jsonl"},
        }
    )
    (run / "report").mkdir()
    summary = load_stages()["report"].fn(StageContext(cfg, run, "report", "fp"))
    assert summary == {"models": 12, "figures": 3}
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
    _figures(s, tmp_path)
    assert (tmp_path / "fig3_selection_rules.png").stat().st_size > 1000
    assert (tmp_path / "fig4_num_sources.png").stat().st_size > 1000
