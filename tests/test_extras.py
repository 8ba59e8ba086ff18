"""The engines are extras (harness/extras.py): a command that needs one that is not installed
says which extra to install, in one line, exit 2; and no module of the core install imports an
engine when it is imported (tests/test_install.py installs without them for real)."""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from importlib.machinery import ModuleSpec

import pytest

from harness import extras
from harness.cli import main as harness_main
from reference_server.cli import main as serve_main
from tests.test_layout import modules

ENGINE_MODULES = {module for pairs in extras.EXTRAS.values() for module, _ in pairs}


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """Top-level modules to hide from ``importlib.util.find_spec`` (as if not installed)."""
    hidden: set[str] = set()
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> ModuleSpec | None:
        if name.split(".")[0] in hidden:
            return None
        return real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    yield hidden


def test_nothing_is_missing_when_the_extra_is_installed(without: set[str]) -> None:
    if importlib.util.find_spec("locust") is None:  # never imported: it patches for gevent
        pytest.skip("Locust is not installed")
    assert extras.missing("load", "load") is None


def test_the_line_names_what_is_absent_and_the_extra(without: set[str]) -> None:
    without.add("gevent")
    assert extras.missing("load", "load") == (
        "load needs gevent, which the core install leaves out: "
        "pip install 'edusphere-conformance[load]'"
    )
    without.add("locust")
    line = extras.missing("load", "load")
    assert line is not None and line.startswith("load needs locust and gevent,")


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def test_load_without_locust_names_the_load_extra(
    without: set[str], capsys: pytest.CaptureFixture[str]
) -> None:
    without.update({"locust", "gevent"})
    assert harness_main(["load", "--users", "1", "--rate", "1", "--duration", "1"]) == 2
    line = _one_line(capsys)
    assert line.startswith("edusphere-conformance load: error: load needs locust and gevent")
    assert line.endswith("pip install 'edusphere-conformance[load]'")


def test_load_help_works_without_locust(
    without: set[str], capsys: pytest.CaptureFixture[str]
) -> None:
    without.update({"locust", "gevent"})
    assert harness_main(["load", "--help"]) == 0
    assert "--users" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "hidden", "what"),
    [
        (["serve", "--demo", "--broker", "redis://127.0.0.1:9"], "redis", "--broker"),
        (
            ["serve", "--demo", "--nodes", "2", "--broker", "redis://127.0.0.1:9", "--db", "x"],
            "redis",
            "--broker",
        ),
        (["serve", "--demo", "--db", "postgresql://u@127.0.0.1:9/chat"], "psycopg", "--db"),
        (["provision", "--db", "postgres://u@127.0.0.1:9/chat", "--user", "a"], "psycopg", "--db"),
    ],
    ids=["broker", "nodes", "postgres", "provision-postgres"],
)
def test_serve_without_the_cluster_engines_names_the_cluster_extra(
    without: set[str],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    hidden: str,
    what: str,
) -> None:
    without.add(hidden)
    assert serve_main(argv, prog="edusphere-conformance") == 2
    line = _one_line(capsys)
    assert line.startswith(f"edusphere-conformance: error: {what}")
    assert line.endswith("pip install 'edusphere-conformance[cluster]'")


def test_serve_with_sqlite_needs_no_engine(without: set[str]) -> None:
    """Only a broker or a PostgreSQL database need the cluster extra: the check passes for the
    bundled server's own settings (serve_config is what main builds them with)."""
    from reference_server.cli import build_parser, check_engines

    without.update(ENGINE_MODULES)
    check_engines(build_parser().parse_args(["serve", "--demo", "--db", "chat.sqlite3"]))


def test_run_n_without_xdist_names_the_parallel_extra(
    without: set[str], capsys: pytest.CaptureFixture[str]
) -> None:
    without.add("xdist")
    assert harness_main(["run", "-n", "2"]) == 2
    line = _one_line(capsys)
    assert line.startswith("edusphere-conformance: error: -n (the suites in N processes) needs")
    assert line.endswith("pip install 'edusphere-conformance[parallel]'")


def _imports_at_import_time(node: ast.AST) -> Iterator[str]:
    """Modules that importing ``node``'s module imports: none inside a function, none under
    ``if TYPE_CHECKING``."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        return
    if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
        yield from (name for child in node.orelse for name in _imports_at_import_time(child))
        return
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        yield node.module
        yield from (f"{node.module}.{alias.name}" for alias in node.names)
    for child in ast.iter_child_nodes(node):
        yield from _imports_at_import_time(child)


#: The engine's own adapters (the workers' side and the master's): imported only by the command
#: that needs them, after the check.
ADAPTERS = {"harness.load.runtime", "harness.load.master"}


def test_no_module_imports_an_engine_when_imported() -> None:
    """Only an engine's adapter imports the engine, and nothing but another adapter imports an
    adapter when it is imported: ``import harness.server.plugin`` (what pytest autoloads) reaches no
    engine."""
    found = {
        f"{name} imports {imported}"
        for name, path in modules().items()
        for imported in _imports_at_import_time(ast.parse(path.read_text(encoding="utf-8")))
        if (imported.split(".")[0] in ENGINE_MODULES and name not in ADAPTERS)
        or (imported in ADAPTERS and name not in ADAPTERS)
    }
    assert not found, sorted(found)
    assert set(modules()) >= ADAPTERS
