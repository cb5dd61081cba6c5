"""A small registry of benchmark areas, filled by the modules of `profuser.bench`."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

BenchFn = Callable[[], dict[str, float | int | str | dict]]
_BENCHES: dict[str, BenchFn] = {}


def register(name: str) -> Callable[[BenchFn], BenchFn]:
    """Register a benchmark area under ``name``; the function returns ``{dotted key: figure}``."""

    def wrap(fn: BenchFn) -> BenchFn:
        _BENCHES[name] = fn
        return fn

    return wrap


def available() -> dict[str, BenchFn]:
    """Import every module of `profuser.bench` and return the registered areas by name."""
    import profuser.bench as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name != "registry":
            importlib.import_module(f"profuser.bench.{info.name}")
    return dict(sorted(_BENCHES.items()))
