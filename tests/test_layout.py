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
    assert "harness.core.results" in edges["harness.server.plugin"]
    assert "harness.server.records" in edges["harness.render.server_report"]


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


#: What no module outside harness/wire/ may import: the network (tests/test_layout.py proves
#: "every socket of the harness, and only sockets, in harness/wire/").
SOCKET_MODULES = ("socket", "ssl", "websockets")
#: What the core may not import beyond the network: modules that read files, run commands or
#: hold the process's state (the registry of secrets, the schemas and catalogue read from
#: disk, the target file's reader, the wire).
STATEFUL_MODULES = (
    "os",
    "io",
    "pathlib",
    "shutil",
    "tempfile",
    "tomllib",
    "logging",
    "harness.redact",
    "harness.schemas",
    "harness.spec",
    "harness.catalogue",
    "harness.target",
    "harness.targetcheck",
    "harness.commands",
    "harness.tokens",
    "harness.wire",
)
#: Calls that read or write files.
FILE_CALLS = frozenset({"open", "read_text", "read_bytes", "write_text", "write_bytes"})


def test_only_the_wire_touches_sockets() -> None:
    offenders = {
        name: sorted(t for t in imported(path) if t.split(".")[0] in SOCKET_MODULES)
        for name, path in modules().items()
        if name.startswith("harness") and not name.startswith("harness.wire")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    wire = [n for n in modules() if n.startswith("harness.wire.")]
    assert len(wire) >= 6  # the wire exists and was read
    assert any("websockets" in t for n in wire for t in imported(modules()[n]))


def _stateful(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in STATEFUL_MODULES)


def _module_state(path: Path) -> list[str]:
    """Module-level names bound to a mutable container, and calls that read or write files."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        mutable = isinstance(value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp)
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            mutable = value.func.id in ("dict", "list", "set", "defaultdict", "deque", "Counter")
        if mutable:
            found += [ast.unparse(t) for t in targets if ast.unparse(t) != "__all__"]
        if isinstance(node, ast.FunctionDef) and any(
            ast.unparse(d).split(".")[-1].split("(")[0] in ("cache", "lru_cache")
            for d in node.decorator_list
        ):
            found.append(f"@cache {node.name}")  # a memo of the process, not of an object
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if called in FILE_CALLS:
                found.append(f"{called}()")
    return found


def test_the_core_reads_no_file_and_holds_no_process_state() -> None:
    core = {n: p for n, p in modules().items() if n.startswith("harness.core")}
    imports = {n: sorted(t for t in imported(p) if _stateful(t)) for n, p in core.items()}
    assert {k: v for k, v in imports.items() if v} == {}
    state = {n: _module_state(p) for n, p in core.items()}
    assert {k: v for k, v in state.items() if v} == {}


def test_the_state_finder_finds_state(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(
        "import functools\nSEEN: dict[str, int] = {}\nCACHE = dict()\nFROZEN = (1, 2)\n"
        "@functools.cache\ndef f() -> str:\n    return open('x').read()\n",
        encoding="utf-8",
    )
    assert sorted(_module_state(path)) == ["@cache f", "CACHE", "SEEN", "open()"]
