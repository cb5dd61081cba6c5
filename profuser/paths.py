"""Path schemes: ``scheme:relative/path`` in a config, resolved to a local directory on demand.

A plugin registers a :class:`PathScheme` (the tiny world registers ``world:``, built
and cached on first use); a config then names its options in a top-level section of
the scheme's name (``world: {seed: 0}``) and its paths as ``world:models/vicuna-like``.
The core knows no scheme of its own: an unregistered one is a clear config error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PathScheme:
    """How ``<name>:`` paths resolve.

    ``check(options)`` raises :class:`~profuser.errors.ConfigError` naming a bad option
    (it must be cheap: it runs whenever a config is loaded); ``materialize(options)``
    makes the scheme's files exist (building them if needed) and returns their root.
    """

    name: str
    check: Callable[[dict[str, Any]], None]
    materialize: Callable[[dict[str, Any]], Path]
    help: str = ""


PATH_SCHEMES: dict[str, PathScheme] = {}


def register_path_scheme(scheme: PathScheme) -> None:
    """Make ``<scheme.name>:`` paths and the ``<scheme.name>:`` options section known."""
    PATH_SCHEMES[scheme.name] = scheme


def split_scheme(path: str | None) -> tuple[str, str] | None:
    """``("world", "models/x")`` for ``"world:models/x"``; None for a plain path or hub id.

    A Windows drive (``C:\\...``) or a URL is not a scheme: only registered names count.
    """
    if not path or ":" not in path:
        return None
    name, rest = path.split(":", 1)
    return (name, rest) if name in PATH_SCHEMES else None


def model_paths(cfg: Any) -> list[tuple[object, str]]:
    """(owner, attribute) of every path field in ``cfg``: sources, reward models, dataset, target."""
    out: list[tuple[object, str]] = [(s, "path") for s in cfg.sources]
    out += [(r, "path") for r in cfg.reward_models]
    return out + [(cfg.dataset, "path"), (cfg, "target_path")]


def resolve_paths(cfg: Any) -> tuple[Any, dict[str, Path]]:
    """``cfg`` with every ``scheme:rel`` path replaced by ``<scheme's root>/rel`` (each used
    scheme materialized once), and the roots by scheme name. A config with no scheme paths
    comes back as it is."""
    used = {
        hit[0] for owner, attr in model_paths(cfg) if (hit := split_scheme(getattr(owner, attr)))
    }
    if not used:
        return cfg, {}
    roots = {n: PATH_SCHEMES[n].materialize(cfg.path_options.get(n, {})) for n in sorted(used)}
    cfg = cfg.model_copy(deep=True)
    for owner, attr in model_paths(cfg):
        hit = split_scheme(getattr(owner, attr))
        if hit:
            setattr(owner, attr, str(roots[hit[0]] / hit[1]))
    return cfg, roots
