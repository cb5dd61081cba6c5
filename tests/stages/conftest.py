"""One small pipeline run on the mini world, shared by the stage tests that read a finished run."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pytest
import yaml

from profuser.config import RunConfig, load_config
from profuser.pipeline import run_pipeline


def small_config(world: Path) -> RunConfig:
    base = yaml.safe_load((resources.files("profuser.configs") / "demo.yaml").read_text())
    base.pop("world", None)
    for s in base["sources"]:
        s["path"] = str(world / s["path"].removeprefix("world:"))
    base["dataset"]["path"] = str(world / "data" / "train.jsonl")
    base["reward_models"] = [r for r in base["reward_models"] if "path" not in r]
    base["variants"] = []
    base["merges"] = [{"method": "slerp", "variant": "profuser", "source": "llama-chat-like"}]
    base["advantage"]["sampling"]["max_new_tokens"] = 12
    base["train"].update(effective_batch=8, micro_batch=8, epoch_scale=1)
    base["eval"]["limit"] = 1
    return load_config(base=base)


@pytest.fixture(scope="session")
def full_run(mini_world: Path, tmp_path_factory: pytest.TempPathFactory):
    old = os.environ.get("PROFUSER_EVAL_CACHE")
    os.environ["PROFUSER_EVAL_CACHE"] = str(tmp_path_factory.mktemp("contract-eval-cache"))
    try:
        cfg = small_config(mini_world)
        run_dir = tmp_path_factory.mktemp("contract-run")
        summaries = run_pipeline(cfg, run_dir)
        yield cfg, run_dir, summaries, tmp_path_factory
    finally:
        if old is None:
            os.environ.pop("PROFUSER_EVAL_CACHE", None)
        else:
            os.environ["PROFUSER_EVAL_CACHE"] = old
