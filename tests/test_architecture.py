"""The layering of docs/architecture.md, checked on the source: which package may import
which, no import cycles, no oversized modules.

Layers, bottom up: the library core (every package and module not named below), the
orchestration (``profuser.stages``, ``profuser.pipeline``), the application built on
them (the tiny world and its demo: ``profuser.world``, ``profuser.demo``) and the entry
points (``profuser.cli``, ``profuser.bench``). A layer may import those below it, never
those above; the world plugs into the core through the registries any plugin uses.
Every import counts, also those inside functions: an import edge goes to the module
named (``from a.b import c`` names ``a.b.c`` when that is a module, else ``a.b``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "profuser"
ORCHESTRATION = ("profuser.stages", "profuser.pipeline")
ENTRY = ("profuser.cli", "profuser.bench")
APPLICATION = ("profuser.world", "profuser.demo")
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every profuser module ``name`` imports."""
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_pkg else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            out.update(
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            )
    return {m for m in out if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {n: _imports(n, p, known) for n, p in mods.items()}


def _layer(mod: str) -> int:
    def under(prefixes: tuple[str, ...]) -> bool:
        return any(mod == p or mod.startswith(p + ".") for p in prefixes)

    if under(ENTRY):
        return 3
    if under(APPLICATION):
        return 2
    if under(ORCHESTRATION):
        return 1
    return 0


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for every import of a higher layer from a lower one (``profuser`` itself,
    the top package, is every layer's)."""
    return sorted(
        f"{a} -> {b}"
        for a, deps in graph.items()
        for b in deps
        if b != "profuser" and a != "profuser" and _layer(b) > _layer(a)
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_layer_imports_one_above_it() -> None:
    assert layer_violations(_graph()) == []


def test_no_import_cycles() -> None:
    assert cycles(_graph()) == []


def test_no_module_over_400_lines() -> None:
    long = {
        n: len(p.read_text(encoding="utf-8").splitlines())
        for n, p in _modules().items()
        if len(p.read_text(encoding="utf-8").splitlines()) > MAX_LINES
    }
    assert long == {}


@pytest.mark.parametrize(
    ("graph", "bad"),
    [
        (
            {"profuser.config": {"profuser.world.resolve"}},
            ["profuser.config -> profuser.world.resolve"],
        ),
        (
            {"profuser.stages.report": {"profuser.demo.runs"}},
            ["profuser.stages.report -> profuser.demo.runs"],
        ),
        ({"profuser.align.spans": {"profuser.cli"}}, ["profuser.align.spans -> profuser.cli"]),
        ({"profuser.cli": {"profuser.world"}, "profuser.world": {"profuser.config"}}, []),
        (
            {"profuser.world.build": {"profuser.bench.align"}},
            ["profuser.world.build -> profuser.bench.align"],
        ),
    ],
)
def test_the_checks_catch_what_they_should(graph: dict, bad: list[str]) -> None:
    assert layer_violations(graph) == bad


def test_cycle_check_finds_a_cycle() -> None:
    graph = {"profuser.a": {"profuser.b.c"}, "profuser.b": set(), "profuser.b.c": {"profuser.d"}}
    graph["profuser.d"] = {"profuser.a"}
    assert cycles(graph) == [["profuser.a", "profuser.b.c", "profuser.d"]]
    assert cycles({**graph, "profuser.d": set()}) == []
