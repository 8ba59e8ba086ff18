"""The coverage self-test: the catalogue and the tests that check it name each other.

Every server requirement has a suite test, every id a suite test names is in the catalogue, every
suite test names a requirement, and every client requirement is exercised by client-check's tests.
The suites are collected (not run) in a subprocess with a small plugin of ours,
``tests/coverage_probe.py``, that records each item's requirement markers.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import catalogue
from tests import coverage_probe

ROOT = Path(__file__).resolve().parent.parent
SUITES = ROOT / "suites"
CLIENTCHECK_TESTS = ROOT / "tests" / "clientcheck"
PROBE_ARGS = ("-q", "-p", "no:cacheprovider", "-p", "tests.coverage_probe", "-o", "addopts=")


@dataclass(frozen=True)
class Collected:
    returncode: int
    output: str
    items: list[dict[str, object]]


def probe(path: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """Collect ``path`` with the probe plugin, which writes every item's markers to ``out``."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(path), "--collect-only", *PROBE_ARGS],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, coverage_probe.ENV: str(out)},
        check=False,
    )


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Collected:
    out = tmp_path_factory.mktemp("coverage") / "items.json"
    done = probe(SUITES, out)
    assert out.is_file(), f"the probe wrote nothing:\n{done.stdout}\n{done.stderr}"
    items = json.loads(out.read_text(encoding="utf-8"))
    return Collected(done.returncode, done.stdout + done.stderr, items)


def named_ids(collected: Collected) -> dict[str, list[str]]:
    """Requirement id -> node ids of the suite tests naming it."""
    out: dict[str, list[str]] = {}
    for item in collected.items:
        for rid in item["requirements"]:  # type: ignore[attr-defined]
            out.setdefault(str(rid), []).append(str(item["nodeid"]))
    return out


def test_suites_collect_without_errors(collected: Collected) -> None:
    assert collected.returncode == 0, collected.output
    assert len(collected.items) >= 50


def test_every_suite_file_contributes_tests(collected: Collected) -> None:
    files = {Path(str(item["file"])).name for item in collected.items}
    expected = {p.name for p in SUITES.glob("test_*.py")}
    assert expected, "no suite files found"
    assert files == expected


def test_every_server_requirement_has_a_suite_test(collected: Collected) -> None:
    cat = catalogue.load()
    named = named_ids(collected)
    untested = [r.id for r in cat.scoped("server") if r.id not in named]
    assert untested == [], f"server requirements with no suite test: {untested}"


def test_every_id_named_by_a_suite_test_is_in_the_catalogue(collected: Collected) -> None:
    cat = catalogue.load()
    unknown = {rid: nodes for rid, nodes in named_ids(collected).items() if rid not in cat}
    assert unknown == {}


def test_suites_name_only_server_requirements(collected: Collected) -> None:
    cat = catalogue.load()
    wrong = {
        rid: nodes
        for rid, nodes in named_ids(collected).items()
        if rid in cat and cat[rid].scope != "server"
    }
    assert wrong == {}, "client requirements are checked by client-check, not the suites"


def test_every_collected_suite_test_carries_a_requirement_marker(collected: Collected) -> None:
    unmarked = [item["nodeid"] for item in collected.items if not item["requirements"]]
    assert unmarked == []


def _test_functions(path: Path) -> set[str]:
    """Names of the ``test_*`` functions a suite file defines (module level or in a class)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_suite_test_function_is_collected_with_a_marker(collected: Collected) -> None:
    """Read from the source, so that a test pytest does not collect cannot hide."""
    marked = {
        (Path(str(item["file"])).name, str(item["function"]))
        for item in collected.items
        if item["requirements"]
    }
    missing = [
        f"{path.name}::{name}"
        for path in sorted(SUITES.glob("test_*.py"))
        for name in sorted(_test_functions(path))
        if (path.name, name) not in marked
    ]
    assert missing == [], f"suite test functions without a requirement marker: {missing}"


def test_every_client_requirement_is_named_by_a_clientcheck_test() -> None:
    cat = catalogue.load()
    sources = {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted(CLIENTCHECK_TESTS.glob("test_*.py"))
    }
    assert sources, "no tests under tests/clientcheck/"
    client = cat.scoped("client")
    assert client, "the catalogue has no client requirements"
    unnamed = [
        r.id
        for r in client
        if not any(re.search(rf"\b{re.escape(r.id)}\b", text) for text in sources.values())
    ]
    assert unnamed == [], f"client requirements no client-check test names: {unnamed}"


def test_probe_reports_unmarked_tests_and_unknown_ids(tmp_path: Path) -> None:
    """The probe itself can see what the checks above must catch."""
    suite = tmp_path / "test_fake.py"
    suite.write_text(
        "import pytest\n\n"
        "@pytest.mark.requirement('NOPE-999')\n"
        "def test_names_an_unknown_id():\n    pass\n\n"
        "def test_has_no_marker():\n    pass\n",
        encoding="utf-8",
    )
    out = tmp_path / "items.json"
    done = probe(suite, out)
    items = {item["function"]: item["requirements"] for item in json.loads(out.read_text())}
    assert items == {"test_names_an_unknown_id": ["NOPE-999"], "test_has_no_marker": []}
    # The harness plugin refuses the unknown id after the probe ran.
    assert done.returncode != 0
    assert "NOPE-999 is not in the catalogue" in done.stdout + done.stderr
