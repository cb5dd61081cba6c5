"""Shared fixtures: offline Hugging Face, the tiny world (built once per machine and cached)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import profuser.world  # noqa: E402, F401  (the tiny world plugs in: world: paths, verifier, tasks)


@pytest.fixture(scope="session")
def world_dir() -> Path:
    """The default tiny world (the demo's), with its accuracy check; cached across runs."""
    from profuser.world.build import WorldSpec, build_world

    return build_world(WorldSpec())


MINI_OPTIONS = dict(
    n_train=40, n_heldout_per_skill=3, n_source_examples=64, steps=4, batch=8, rm_steps=4
)


@pytest.fixture(scope="session")
def mini_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A very small, barely trained world for fast plumbing tests (no accuracy check)."""
    from profuser.world.build import WorldSpec, build_world

    spec = WorldSpec(**MINI_OPTIONS)
    return build_world(spec, root=tmp_path_factory.mktemp("mini-world"), check=False)


@pytest.fixture(scope="session")
def mini_world6(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The extended world (roster ``six``: six sources, twelve skills), as small as mini_world."""
    from dataclasses import replace

    from profuser.world.build import build_world
    from profuser.world.resolve import world_spec_from

    spec = replace(world_spec_from({"roster": "six"}), **MINI_OPTIONS)
    return build_world(spec, root=tmp_path_factory.mktemp("mini-world6"), check=False)


@pytest.fixture(autouse=True)
def _private_eval_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """Each test gets its own eval cache, so no test reuses another's records."""
    monkeypatch.setenv("PROFUSER_EVAL_CACHE", str(tmp_path_factory.mktemp("eval-cache")))
