"""The configs shipped inside the package, found with `importlib.resources`.

Run configs sit at the top (``demo``, ``paper``); accelerate launch configs under
``accelerate/`` (``accelerate/ddp``, ...). They come with a wheel, so ``profuser run demo``
works from any directory. A config argument is a file path or a packaged name, with or
without ``.yaml``; an existing file wins over a packaged name. ``profuser configs`` lists the
packaged configs and their paths (``profuser configs paper`` prints one, to copy and edit).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from profuser.errors import ConfigError

SUFFIX = ".yaml"


def _root() -> Path:
    root = resources.files(__name__)
    if not isinstance(root, Path):  # pragma: no cover - a zipped install
        raise ConfigError(f"the packaged configs are not files on disk ({root}); install unzipped")
    return root


def packaged_configs(include_accelerate: bool = False) -> dict[str, Path]:
    """Packaged configs by name: the run configs (``demo``, ``paper``) and, with
    ``include_accelerate``, the accelerate launch configs (``accelerate/ddp``, ...)."""
    root = _root()
    found = sorted(root.glob(f"*{SUFFIX}"))
    if include_accelerate:
        found += sorted((root / "accelerate").glob(f"*{SUFFIX}"))
    return {p.relative_to(root).with_suffix("").as_posix(): p for p in found}


def _name(text: str) -> str:
    return text[: -len(SUFFIX)] if text.endswith(SUFFIX) else text


def config_path(name_or_path: str | Path) -> Path:
    """The run config file ``name_or_path`` names: that file where it exists, else the packaged
    config of that name (``demo``, ``paper``, ``demo.yaml``); else a one-line `ConfigError`."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = packaged_configs()
    if len(path.parts) == 1 and _name(path.name) in shipped:
        return shipped[_name(path.name)]
    raise ConfigError(
        f"{name_or_path}: config file not found, nor a packaged config "
        f"(packaged: {', '.join(shipped)})"
    )


def packaged_path(name: str) -> Path:
    """A packaged config of any kind by name (``paper``, ``accelerate/ddp``, ``ddp.yaml``)."""
    shipped = packaged_configs(include_accelerate=True)
    name = _name(name.strip("/"))
    for key in (name, f"accelerate/{name}"):
        if key in shipped:
            return shipped[key]
    raise ConfigError(f"no packaged config {name!r} (packaged: {', '.join(shipped)})")
