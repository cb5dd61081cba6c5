"""The ``world:`` path scheme: config paths that point into the tiny world, built on demand."""

from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path
from typing import Any

from profuser.config import RunConfig
from profuser.errors import ConfigError
from profuser.paths import PathScheme, resolve_paths

log = logging.getLogger("profuser")
SCHEME = "world"


def world_spec_from(options: dict):
    """A WorldSpec from the config's ``world`` options, naming an unknown option or roster.

    ``roster`` (``four``, the default, or ``six``) picks the world's sources and skills."""
    from profuser.world.build import ROSTERS, WorldSpec

    valid = {f.name for f in fields(WorldSpec)} - {"sources", "version", "extra", "skills"}
    valid.add("roster")
    for key in options:
        if key not in valid:
            raise ConfigError(f"unknown key `world.{key}`; valid: {', '.join(sorted(valid))}")
    options = dict(options)
    roster = options.pop("roster", "four")
    if roster not in ROSTERS:
        raise ConfigError(
            f"world.roster: {roster!r} is not a roster; choose one of {', '.join(ROSTERS)}"
        )
    sources, skills = ROSTERS[roster]
    return WorldSpec(**options, sources=sources, skills=skills)


def _materialize(options: dict[str, Any]) -> Path:
    from profuser.world.build import build_world

    spec = world_spec_from(options)
    log.info("tiny world %s: building or reusing", spec.key())
    return build_world(spec)


def _check(options: dict[str, Any]) -> None:
    world_spec_from(options)


WORLD_SCHEME = PathScheme(
    SCHEME,
    check=_check,
    materialize=_materialize,
    help="the tiny demo world (profuser world)",
)


def materialize_world(cfg: RunConfig) -> tuple[RunConfig, Path | None]:
    """Build the world if the config refers to it, and replace ``world:`` paths by real ones."""
    cfg, roots = resolve_paths(cfg)
    return cfg, roots.get(SCHEME)
