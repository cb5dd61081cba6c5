"""``world:`` paths in a config point into the tiny world, built (or reused) on demand."""

from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path

from profuser.config import RunConfig
from profuser.errors import ConfigError

log = logging.getLogger("profuser")
PREFIX = "world:"


def world_spec_from(options: dict):
    """A WorldSpec from the config's ``world`` options, naming an unknown option."""
    from profuser.world.build import WorldSpec

    valid = {f.name for f in fields(WorldSpec)} - {"sources", "version", "extra"}
    for key in options:
        if key not in valid:
            raise ConfigError(f"unknown key `world.{key}`; valid: {', '.join(sorted(valid))}")
    return WorldSpec(**options)


def uses_world(cfg: RunConfig) -> bool:
    paths = [s.path for s in cfg.sources] + [cfg.dataset.path, cfg.target_path or ""]
    paths += [r.path or "" for r in cfg.reward_models]
    return any(p.startswith(PREFIX) for p in paths)


def materialize_world(cfg: RunConfig) -> tuple[RunConfig, Path | None]:
    """Build the world if the config refers to it, and replace ``world:`` paths by real ones."""
    if not uses_world(cfg):
        return cfg, None
    from profuser.world.build import build_world

    spec = world_spec_from(cfg.world)
    log.info("tiny world %s: building or reusing", spec.key())
    root = build_world(spec)

    def fix(p: str | None) -> str | None:
        return str(root / p[len(PREFIX) :]) if p and p.startswith(PREFIX) else p

    cfg = cfg.model_copy(deep=True)
    for s in cfg.sources:
        s.path = fix(s.path)
    for r in cfg.reward_models:
        r.path = fix(r.path)
    cfg.dataset.path = fix(cfg.dataset.path)
    cfg.target_path = fix(cfg.target_path)
    return cfg, root
