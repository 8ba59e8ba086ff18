"""The shape of the house: no import cycles, and a core that does no I/O.

Read from the source (every ``import`` statement, including those inside functions and under
``TYPE_CHECKING``), so a cycle cannot hide behind a late import.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import ROOT

PACKAGES = ("harness", "reference_server")
#: What the core may not import: it judges frames it is given and touches no socket.
IO_MODULES = ("websockets", "pytest", "socket", "ssl", "asyncio", "subprocess", "_pytest")


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imported(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports (``from a import b`` gives a.b and a)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def graph() -> dict[str, set[str]]:
    mods = modules()
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps = set()
        for target in imported(path):
            # "from harness import redact" names the module harness.redact, not the package.
            if target in mods:
                deps.add(target)
        # A "from pkg import module" also lists pkg itself: keep the more precise edge only.
        edges[name] = {
            d for d in deps if d != name and not any(o.startswith(d + ".") for o in deps)
        }
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_known_edges() -> None:
    edges = graph()
    assert "reference_server.config" in edges["reference_server.demo"]
    assert "reference_server.faults" in edges["reference_server.config"]
    assert "harness.core.results" in edges["harness.plugin"]
    assert "harness.records" in edges["harness.report"]  # a function-level import counts too


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_core_does_no_io() -> None:
    offenders = {
        name: sorted(t for t in imported(path) if t.split(".")[0] in IO_MODULES)
        for name, path in modules().items()
        if name.startswith("harness.core")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert len(offenders) >= 5  # the core exists and was read
