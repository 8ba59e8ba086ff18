"""The reference server's modules form layers: no module imports one that imports it back.

Every import counts, also one inside a function or under ``TYPE_CHECKING``: a cycle hidden there
still ties the two modules together. The package ``__init__`` (which gathers the public API) and
``__main__`` are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import reference_server

PACKAGE = Path(reference_server.__file__).parent
NAME = "reference_server"


def _imports(path: Path) -> set[str]:
    """The reference_server modules that the module at ``path`` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == NAME:
                found |= {f"{NAME}.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
    return {name.split(".")[1] for name in found if name.startswith(NAME + ".")}


def _graph() -> dict[str, set[str]]:
    modules = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    return {name: _imports(path) & set(modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path of module names, or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for imported in sorted(graph[name]):
            cycle = visit(imported, [*path, name])
            if cycle:
                return cycle
        done.add(name)
        return None

    for name in sorted(graph):
        cycle = visit(name, [])
        if cycle:
            return cycle
    return None


def test_the_import_graph_sees_the_known_edges() -> None:
    graph = _graph()
    assert "config" in graph["demo"]
    assert "faults" in graph["config"]


def test_no_module_imports_one_that_imports_it_back() -> None:
    assert _cycle(_graph()) is None


def test_a_cycle_would_be_found() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
