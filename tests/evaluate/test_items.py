"""Compact per-item scores from hand-made lm-eval sample logs; eval records with items."""

from __future__ import annotations

from pathlib import Path

from profuser.evaluate.items import item_scores, leaf_tasks, split_metric
from profuser.io import atomic_write_json
from profuser.stages.eval import load_eval_records


def _sample(doc_id: int, filt: str = "none", **metrics: object) -> dict:
    return {"doc_id": doc_id, "filter": filt, "doc": {"big": "x" * 100}, "resps": [], **metrics}


def test_groups_flatten_to_leaf_strata_and_plain_tasks_to_all() -> None:
    groups = {"world_gen": ["world_gen_add", "world_gen_next"], "mmlu": ["mmlu_stem"]}
    groups["mmlu_stem"] = ["mmlu_algebra", "mmlu_physics"]
    samples = {
        "world_gen_add": [_sample(0, exact_match=1.0), _sample(1, exact_match=0.0)],
        "world_gen_next": [_sample(0, exact_match=0.0)],
        "mmlu_algebra": [_sample(3, acc=1.0)],
        "mmlu_physics": [_sample(0, acc=0.0), _sample(1, acc=True)],
        "hellaswag": [_sample(7, acc=0.0, acc_norm=1.0)],
    }
    assert leaf_tasks("mmlu", groups) == ["mmlu_algebra", "mmlu_physics"]
    got = item_scores(
        samples,
        groups,
        {"world_gen": "world_gen", "mmlu_5shot": "mmlu", "hellaswag_10shot": "hellaswag"},
        {"world_gen": "exact_match", "mmlu_5shot": "acc", "hellaswag_10shot": "acc_norm"},
    )
    assert got == {
        "world_gen": {"add": {"0": 1.0, "1": 0.0}, "next": {"0": 0.0}},
        "mmlu_5shot": {"algebra": {"3": 1.0}, "physics": {"0": 0.0, "1": 1.0}},
        "hellaswag_10shot": {"all": {"7": 1.0}},
    }


def test_the_headline_metrics_filter_picks_its_samples() -> None:
    assert split_metric("exact_match,strict-match") == ("exact_match", "strict-match")
    assert split_metric("acc") == ("acc", "none")
    samples = {
        "gsm8k": [
            _sample(0, "strict-match", exact_match=0.0),
            _sample(0, "flexible-extract", exact_match=1.0),
            _sample(1, "strict-match", exact_match=1.0),
            _sample(1, "flexible-extract", exact_match=1.0),
        ]
    }
    got = item_scores(samples, {}, {"g": "gsm8k"}, {"g": "exact_match,strict-match"})
    assert got == {"g": {"all": {"0": 0.0, "1": 1.0}}}


def test_tasks_without_numeric_items_are_left_out() -> None:
    samples = {"wmt": [_sample(0, bleu=("ref", "hyp"))], "empty": []}
    got = item_scores(samples, {}, {"wmt": "wmt", "e": "empty"}, {"wmt": "bleu", "e": "acc"})
    assert got == {}


def test_load_eval_records_adds_items_and_reads_old_runs(tmp_path: Path) -> None:
    rows = [
        {"kind": "source", "name": "a", "seed": 0, "scores": {"t": 0.5}},
        {"kind": "variant", "name": "b", "seed": 0, "scores": {"t": 0.4}},
    ]
    atomic_write_json(tmp_path / "eval" / "scores.json", rows)
    items = {"t": {"all": {"0": 1.0, "1": 0.0}}}
    atomic_write_json(tmp_path / "eval" / "models" / "source-a.json", {**rows[0], "items": items})
    atomic_write_json(tmp_path / "eval" / "models" / "variant-b.json", rows[1])  # no items: old
    got = load_eval_records(tmp_path)
    assert [r["items"] for r in got] == [items, {}]
    assert got[0]["scores"] == {"t": 0.5}
    assert load_eval_records(tmp_path / "nothing") == []
