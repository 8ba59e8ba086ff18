"""The README is true: its generated sections are fresh and every command it shows is run.

Two halves:

* the catalogue and fault tables between the ``<!-- ...:start -->`` markers are what
  ``tests.readme_sections`` / ``bench/mutation_matrix.py --markdown`` generate;
* every command the README shows (```sh blocks, the ``run:`` / ``script:`` entries of the
  ```yaml CI examples, and inline code spans that start with a command) appears in
  :data:`COMMANDS`, which says how it is exercised; a command missing from the table fails, and
  so does a table entry the README no longer shows (pytest-httpserver's tests/examples habit).

Commands run for real, in subprocesses with timeouts and tmp directories, against
``ServerThread`` reference servers bound to 127.0.0.1. Nothing here needs the network.
"""

from __future__ import annotations

import configparser
import difflib
import importlib.metadata
import json
import os
import queue
import re
import select
import shlex
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import trustme
import yaml
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from harness.target import parse
from reference_server.cluster import TARGET_END, TARGET_START
from reference_server.demo import (
    DEMO_ALGORITHM,
    DEMO_HOST,
    DEMO_ROOMS,
    DEMO_SECRET,
    demo_config,
    demo_target_dict,
    demo_user_id,
)
from reference_server.faults import FAULTS
from reference_server.runner import RedisServer, ServerThread
from tests import readme_sections
from tests.clientcheck.reports import read_reports
from tests.support import (
    ROOT,
    default_run,
    not_tested,
    stop_process,
    verdicts,
    write_target,
)

README = ROOT / "README.md"
#: The environment's bin directory: ``edusphere-conformance``, and the ``python`` that a README
#: command such as ``client-check --command "python -m reference_client"`` finds on PATH.
BIN = Path(sys.executable).parent

QUICK = 60.0  # seconds: listing, help, provisioning, a selected run
SLOW = 30.0  # seconds: a handshake or a frame of a `serve` the test started, on a loaded machine
FULL = 180.0  # seconds: a whole conformance run or a benchmark, on a loaded 2-core CI machine

# --- the commands the README shows, as it shows them -----------------------------------------

TOX_CONFORMANCE = "python3 -m pip install tox && python3 -m tox -e conformance"
TOX = "python3 -m pip install tox && python3 -m tox"
PIP_EDITABLE = "python3 -m pip install -e '.[dev]'"
TOX_CANARY = "python3 -m tox -e canary"
TOX_PINS = "python3 -m tox -e pins"
RUN_TARGET = "edusphere-conformance run --target my-server.toml"
PYTEST_TARGET = "pytest suites/ --target my-server.toml"
CI_INSTALL = "python -m pip install ./conformance-harness"
CI_RUN = (
    "edusphere-conformance run --target ci/staging.toml"
    " --baseline ci/conformance-baseline.toml --report-dir reports"
)
CLIENT_CHECK = (
    'edusphere-conformance client-check --command "python -m reference_client" --base-delay-ms 100'
)
PROGRAM = "edusphere-conformance"
LIST_MARKDOWN = "edusphere-conformance list --format markdown"
LIST_FAULTS = "list --faults"
SERVE_HELP = "serve --help"
SERVE_FAULT = "edusphere-conformance serve --demo --fault NAME"
PROVISION = "edusphere-conformance provision --db FILE --user NAME --room HOST/SLUG:USER,USER"
BENCH_SUITES = "python bench/bench_suites.py"
BENCH_SERVER = "python bench/bench_server.py"
MATRIX = "python bench/mutation_matrix.py"
MATRIX_MARKDOWN = "python bench/mutation_matrix.py --markdown"
MATRIX_WHOLE = "python bench/mutation_matrix.py --whole"
BENCH_SPEED = "python bench/bench_speed.py"
BENCH_LOAD = "python bench/bench_load.py"
BENCH_CLIENT_CHECK = "python bench/bench_client_check.py"
SERVE_LATENCY = "serve --latency 20-80"
SERVE_TLS = "serve --tls-cert server.pem --tls-key server.key"
SERVE_GATEWAY = "serve --require-header X-Api-Key=VALUE"
SERVE_NODES = "serve --nodes 2 --broker redis://HOST:PORT"
PYTEST_N2 = "pytest -n 2"
LOAD_RUN = (
    "edusphere-conformance load --target my-server.toml --users 200 --rate 1 --duration 60"
    " --workers 2"
)
LOAD_MASTER = (
    "edusphere-conformance load --target my-server.toml --users 2000 --rate 0.5 --duration 300"
    " --expect-workers 8 --master-bind-host 0.0.0.0 --master-port 5557"
)
LOAD_WORKER = "edusphere-conformance load --master-host MASTER --master-port 5557"
BENCH_LOADMODE = "python bench/bench_loadmode.py"
BENCH_ASGI = "python bench/bench_asgi.py"


@dataclass(frozen=True)
class Exercise:
    """How a README command is exercised: the test that runs it, and what it runs."""

    test: str
    how: str


#: Every command the README shows (exact text) -> how this file exercises it.
COMMANDS: dict[str, Exercise] = {
    "python -m tests.readme_sections": Exercise(
        "test_readme_sections_main_leaves_a_fresh_readme_unchanged", "main() on a tmp copy"
    ),
    TOX_CONFORMANCE: Exercise(
        "test_tox_conformance_runs_the_suites_against_the_bundled_server",
        "tox itself is not run: tox.ini's [testenv:conformance] commands must be"
        " `edusphere-conformance run {posargs}`; that command (no posargs) runs from a tmp cwd,"
        " once a session (tests.support.default_run; tests/test_report.py reads it too):"
        " exit 0, reports/compliance.html, junit.xml, results.json, 'verdict: CONFORMANT'",
    ),
    TOX: Exercise(
        "test_tox_runs_the_harness_tests_lint_and_types",
        "not run (it is the command that runs this file): .ci/run must install tox and run"
        " `python3 -m tox` under `set -e`; tox.ini's envlist must be tests, lint (ruff check,"
        " ruff format --check) and type (mypy, strict in pyproject.toml)",
    ),
    TOX_CANARY: Exercise(
        "test_the_canary_runs_lint_types_and_the_fast_tests_unpinned",
        "tox itself is not run (it installs the newest releases): tox.ini's [testenv:canary] is"
        " outside the envlist, recreated each time, without PIP_CONSTRAINT (its package env too),"
        " and runs lint's and type's commands and `pytest tests -n 2 -m \"not slow\"`, which"
        " selects some but not all of the tests (collected here)",
    ),
    TOX_PINS: Exercise(
        "test_the_pins_command_writes_every_package_pinned",
        "tox.ini's [testenv:pins] runs `python .ci/pins.py {posargs}` without PIP_CONSTRAINT;"
        " run here as `.ci/pins.py --output FILE` (pip resolves from the package index): every"
        " line `name==version`, the project's requirements, extras and build backend among them",
    ),
    PIP_EDITABLE: Exercise(
        "test_editable_install_gives_the_command_and_the_plugin",
        "not run (an offline dry run needs `editables`, absent from the env): pyproject.toml's"
        " `dev` extra pulls pytest-xdist, mypy, ruff and the load and cluster engines, which"
        " the core dependencies leave out (tests/test_install.py installs without them); the"
        " installed distribution is this checkout, same version, with the console script and"
        " the pytest11 plugin",
    ),
    RUN_TARGET: Exercise(
        "test_run_against_a_target_file",
        "my-server.toml written for a ServerThread (demo data) in a tmp cwd; run as shown plus"
        " `--only CONN,AUTH` (time): exit 0, 'verdict: CONFORMANT', reports/results.json",
    ),
    PYTEST_TARGET: Exercise(
        "test_pytest_against_a_target_file",
        "same target, tmp cwd; `suites/` -> <repo>/suites/ (the README's path is relative to the"
        " clone; the repo's pytest config then applies as for a user); plus `--only CONN,AUTH`:"
        " exit 0, 'verdict: CONFORMANT'",
    ),
    CI_INSTALL: Exercise(
        "test_ci_install_is_this_package",
        "not run: ./conformance-harness is this checkout; its pyproject.toml builds"
        " edusphere-conformance (hatchling) with the suites and schemas force-included, and that"
        " is the distribution installed here",
    ),
    CI_RUN: Exercise(
        "test_ci_gate_with_a_baseline",
        "run exactly, in a tmp cwd: ci/staging.toml targets a ServerThread with"
        ' `secret = "${CHAT_JWT_SECRET}"` (env set to the demo secret, the variable both CI'
        " examples pass); ci/conformance-baseline.toml is the README's ```toml example verbatim:"
        " exit 0, each baselined id passed with `fixed: true`",
    ),
    CLIENT_CHECK: Exercise(
        "test_client_check_passes_the_reference_client",
        "run exactly (shlex.split) from a tmp cwd, PATH starting with this env's bin: exit 0,"
        " 'client-check: passed', reports/client-compliance.html",
    ),
    PROGRAM: Exercise(
        "test_the_program_lists_its_commands",
        "`edusphere-conformance --help`: exit 0, names run, list, serve, client-check, load",
    ),
    LIST_MARKDOWN: Exercise(
        "test_list_markdown_prints_the_catalogue_table",
        "run exactly: exit 0; its rows are the rows of the README's generated catalogue section",
    ),
    LIST_FAULTS: Exercise(
        "test_list_faults_names_every_switch",
        "as `edusphere-conformance list --faults`: exit 0, a line per FAULTS switch",
    ),
    SERVE_HELP: Exercise(
        "test_serve_help_lists_every_server_setting",
        "as `edusphere-conformance serve --help`: exit 0, the options the README names",
    ),
    SERVE_TLS: Exercise(
        "test_serve_with_tls",
        "in a tmp cwd holding trustme's server.pem and server.key (a private CA), plus"
        " `--tls-client-ca ca.pem` the second time; 'listening on wss://', bob's message comes"
        " back over TLS with that CA (and a client certificate it signed)",
    ),
    SERVE_GATEWAY: Exercise(
        "test_serve_as_a_gateway",
        "VALUE -> a key; a handshake without the header gets HTTP 401, one with it is served",
    ),
    SERVE_FAULT: Exercise(
        "test_serve_with_a_fault_switch",
        "NAME -> escape-body, plus `--demo` (without it serve refuses: no signing key), from a"
        " tmp cwd; waits for 'listening on', sends 'a & b <i>' as bob and gets the escaped body;"
        " then SIGTERM",
    ),
    PROVISION: Exercise(
        "test_provision_prints_accounts_and_rooms",
        "FILE -> <tmp>/provision.sqlite3, NAME -> alice, HOST/SLUG:USER,USER ->"
        " alice/general:bob,carol (bob and carol provisioned first into the same FILE): exit 0,"
        " JSON with the accounts, the room and its participants",
    ),
    BENCH_SUITES: Exercise(
        "test_bench_suites",
        "with `--runs 1 --only CONN`, cwd the repo: exit 0, 'verdicts identical to the"
        " serial run: True' (the whole suite under -n 2: the token-only baseline's test)",
    ),
    BENCH_SERVER: Exercise(
        "test_bench_server",
        "with `--connections 10 --rounds 2 --handshakes 2` (its smallest useful options), cwd"
        " the repo: exit 0, the handshake and fan-out rows",
    ),
    MATRIX: Exercise(
        "test_mutation_matrix_table",
        "with `escape-body` (one switch), cwd the repo: exit 0, '1/1 switches killed'",
    ),
    MATRIX_MARKDOWN: Exercise(
        "test_mutation_matrix_markdown",
        "with `escape-body`, cwd the repo: exit 0, and its escape-body row is the README's",
    ),
    MATRIX_WHOLE: Exercise(
        "test_mutation_matrix_whole_runs",
        "with `escape-body`, cwd the repo: exit 0, its row timed and NON-CONFORMANT",
    ),
    BENCH_SPEED: Exercise(
        "test_bench_speed",
        "with `--runs 1 --no-slow --only CONN`, cwd the repo: exit 0, CONFORMANT both"
        " ways (the whole default run: test_tox_conformance_..., with --concurrency 1:"
        " tests/test_scheduler.py; the --latency 20-80 --strict whole run is"
        " tests/test_slow_server.py's)",
    ),
    LOAD_RUN: Exercise(
        "test_load_with_two_workers",
        "my-server.toml for a ServerThread (demo data) in a tmp cwd; 200 -> 6 connections,"
        " rate 1 -> 5, 60 -> 2 s (time): exit 0, 'load: DELIVERED', reports/load.json and"
        " load.html, both workers' connections in it",
    ),
    LOAD_MASTER: Exercise(
        "test_load_across_machines",
        "2000 -> 6, 0.5 -> 5, 300 -> 2, 8 -> 1 worker, 0.0.0.0 -> 127.0.0.1 (nothing listens"
        " beyond this machine), 5557 -> a free port; started, then the worker command: exit 0,"
        " DELIVERED, every connection on the joined worker",
    ),
    LOAD_WORKER: Exercise(
        "test_load_across_machines",
        "MASTER -> 127.0.0.1, 5557 -> the master's port, joining the master command above: exit 0",
    ),
    BENCH_LOADMODE: Exercise(
        "test_bench_loadmode",
        "with `--users 6 --rate 5 --duration 1`, cwd the repo: exit 0, a DELIVERED step and a"
        " 'sustain' line for 1 and for 2 workers",
    ),
    BENCH_ASGI: Exercise(
        "test_bench_asgi",
        "with `--runs 1 --no-served --only CONN`, cwd the repo: exit 0; the Starlette"
        " application in-process (the default run narrowed, and --only CONN-001), each"
        " CONFORMANT (the whole run in-process and served by uvicorn: tests/test_asgi_alt.py's)",
    ),
    BENCH_LOAD: Exercise(
        "test_bench_load",
        "with `--runs 1 --no-slow`, cwd the repo: exit 0; --only LOAD against the bundled server"
        " and the two-node cluster (LOAD,NODE) each CONFORMANT with burst figures (the"
        " --latency 20-80 whole run is tests/test_slow_server.py's)",
    ),
    BENCH_CLIENT_CHECK: Exercise(
        "test_bench_client_check",
        "with `--base-delay-ms 100`, cwd the repo: exit 0, the concurrent run CONFORMANT",
    ),
    SERVE_NODES: Exercise(
        "test_serve_as_a_cluster",
        "as `edusphere-conformance serve --demo --db FILE --nodes 2 --broker redis://...` with a"
        " Redis of its own: two 'node-K listening on' lines and a target file that parses with"
        " both nodes; a message sent on node 1 reaches a connection on node 2",
    ),
    SERVE_LATENCY: Exercise(
        "test_serve_with_latency",
        "as `edusphere-conformance serve --demo --latency 20-80`: three frames sent at once come"
        " back as their events, in order, the last at least 60 ms after the first was sent",
    ),
    PYTEST_N2: Exercise(
        "test_mutation_matrix_test_under_xdist",
        "`pytest -n 2` on tests/test_mutation_matrix.py for escape-body and require-timestamp,"
        " cwd the repo: exit 0, 2 passed",
    ),
}


# --- extracting the README's commands ---------------------------------------------------------

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[ \t]*\n(?P<body>.*?)^[ \t]*```[ \t]*$",
    re.M | re.S,
)
SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")
COMMAND_SPAN = re.compile(r"^(?:edusphere-conformance|pytest|python3?|tox)(?:\s|$)")
#: A span such as `serve --help`: a subcommand of edusphere-conformance with its options.
SUBCOMMAND_SPAN = re.compile(r"^(?:run|list|serve|client-check)\s+-")


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, dedented body) of every fenced block."""
    return [(m.group("lang"), textwrap.dedent(m.group("body"))) for m in FENCE.finditer(text)]


def _ci_commands(node: Any) -> Iterator[str]:
    """The ``run:`` and ``script:`` entries of a parsed CI document (a folded block is one)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "run" and isinstance(value, str):
                yield value.strip()
            elif key == "script" and isinstance(value, list):
                yield from (str(line).strip() for line in value)
            else:
                yield from _ci_commands(value)
    elif isinstance(node, list):
        for item in node:
            yield from _ci_commands(item)


def readme_commands(text: str) -> dict[str, list[str]]:
    """Every command the README shows -> where it shows it."""
    found: dict[str, list[str]] = {}
    for number, (lang, body) in enumerate(fenced_blocks(text), 1):
        if lang == "sh":
            for line in body.splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    found.setdefault(line, []).append(f"```sh block {number}")
        elif lang == "yaml":
            for command in _ci_commands(yaml.safe_load(body)):
                found.setdefault(command, []).append(f"```yaml block {number}")
    prose = FENCE.sub("\n", text)
    for span in SPAN.findall(prose):
        span = " ".join(span.split())
        if COMMAND_SPAN.match(span) or SUBCOMMAND_SPAN.match(span):
            found.setdefault(span, []).append("inline code span")
    return found


# --- running them -----------------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def argv_for(command: str, subs: Mapping[str, str] | None = None) -> list[str]:
    """The README command as an argv for this environment, placeholders substituted word by
    word; ``python``/``python3`` is this interpreter, ``pytest`` is ``python -m pytest``."""
    subs = dict(subs or {})
    words = shlex.split(command)
    unused = [key for key in subs if key not in words]
    assert not unused, f"placeholders {unused} not in {command!r}"
    words = [subs.get(word, word) for word in words]
    program, rest = words[0], words[1:]
    if program in ("python", "python3"):
        return [sys.executable, *rest]
    if program == "pytest":
        return [sys.executable, "-m", "pytest", *rest]
    if program == "edusphere-conformance":
        script = BIN / "edusphere-conformance"
        assert script.is_file(), f"{script} is missing: is the project installed?"
        return [str(script), *rest]
    raise AssertionError(f"no way to run {command!r}")


def run(
    argv: Sequence[str], cwd: Path, timeout: float, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def output(done: subprocess.CompletedProcess[str]) -> str:
    return (
        f"{shlex.join(done.args)}\nexit {done.returncode}\n--- stdout ---\n"
        f"{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}"
    )


def assert_ok(done: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert done.returncode == 0, output(done)
    for text in expected:
        assert text in done.stdout, f"{text!r} not printed\n{output(done)}"


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    database = tmp_path_factory.mktemp("readme-server") / "demo.sqlite3"
    with ServerThread(demo_config(database=str(database))) as server:
        yield server
        server.raise_errors()


# --- the command table is complete and does not rot -------------------------------------------


def test_every_readme_command_is_exercised() -> None:
    found = readme_commands(readme_text())
    missing = [
        f"{cmd!r} ({', '.join(where)})" for cmd, where in found.items() if cmd not in COMMANDS
    ]
    assert not missing, "a README command is not exercised by tests/test_readme.py: " + "; ".join(
        missing
    )


def test_every_table_entry_is_still_in_the_readme() -> None:
    found = readme_commands(readme_text())
    stale = [cmd for cmd in COMMANDS if cmd not in found]
    assert not stale, (
        "tests/test_readme.py exercises commands README.md no longer shows (update COMMANDS): "
        + "; ".join(repr(cmd) for cmd in stale)
    )


def test_the_table_names_tests_of_this_file() -> None:
    here = globals()
    unknown = [e.test for e in COMMANDS.values() if not callable(here.get(e.test))]
    assert not unknown, f"COMMANDS names tests that do not exist: {unknown}"
    assert all(e.test.startswith("test_") for e in COMMANDS.values())


def test_extraction_finds_each_kind_of_command() -> None:
    """The extractor on a small sample: sh lines, CI ``run:`` (a folded block is one command)
    and ``script:`` entries, command spans; not other blocks nor other spans."""
    sample = textwrap.dedent(
        """\
        Run `python -m thing --x` or `serve --help`, not `ruff` nor `--only AUTH`.

           ```sh
           tool one

           tool two
           ```

        ```yaml
        steps:
          - run: python -m pip install ./here
          - run: >
              tool three
              --flag
        ```

        ```yaml
        job:
          script:
            - tool four
        ```

        ```
        tool usage [--synopsis]
        ```
        """
    )
    assert list(readme_commands(sample)) == [
        "tool one",
        "tool two",
        "python -m pip install ./here",
        "tool three --flag",
        "tool four",
        "python -m thing --x",
        "serve --help",
    ]


# --- the generated sections are fresh ---------------------------------------------------------


def _diff(shown: str, wanted: str, source: str, limit: int = 80) -> str:
    lines = list(
        difflib.unified_diff(shown.splitlines(), wanted.splitlines(), "README.md", source, n=0)
    )
    more = [f"... {len(lines) - limit} more lines"] if len(lines) > limit else []
    return "\n".join(line.rstrip("\n") for line in lines[:limit] + more)


def test_catalogue_section_is_fresh() -> None:
    shown = readme_sections.section(readme_text(), "catalogue")
    wanted = readme_sections.catalogue_section().strip()
    if shown != wanted:
        pytest.fail(
            "README.md's catalogue table is stale: run `python -m tests.readme_sections`\n"
            + _diff(shown, wanted, "generated"),
            pytrace=False,
        )


def _fault_cells(table: str) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in table.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            name = cells[0].strip("`")
            assert name not in rows, f"README.md's fault table lists `{name}` twice"
            rows[name] = cells
    return rows


def test_fault_section_matches_the_registry() -> None:
    hint = "regenerate with `python bench/mutation_matrix.py --markdown` and paste the table"
    table = readme_sections.section(readme_text(), "faults")
    rows = _fault_cells(table)
    observed = readme_sections.parse_observed(table)
    problems = [f"no row for `{name}`" for name in FAULTS if name not in rows]
    problems += [f"`{name}` is not a switch of FAULTS" for name in rows if name not in FAULTS]
    for name, fault in FAULTS.items():
        cells = rows.get(name)
        if cells is None:
            continue
        if len(cells) != 5:
            problems.append(f"{name}: {len(cells)} cells, expected 5")
            continue
        _, level, description, must_fail, _ = cells
        if level != fault.level:
            problems.append(f"{name}: level {level}, registry {fault.level}")
        if description != fault.description:
            problems.append(f"{name}: description {description!r}, registry {fault.description!r}")
        if must_fail != ", ".join(fault.requirements):
            problems.append(f"{name}: must fail {must_fail}, registry {fault.requirements}")
        seen = set(observed[name])
        unseen = [r for r in fault.requirements if r not in seen]
        if unseen:
            problems.append(f"{name}: observed failures lack must-fail {unseen}")
        allowed = set(fault.requirements) | set(fault.collateral)
        unexplained = sorted(seen - allowed)
        if unexplained:
            problems.append(f"{name}: observed {unexplained}, neither must-fail nor collateral")
    if problems:
        pytest.fail(f"README.md's fault table is stale: {'; '.join(problems)}; {hint}", False)


def test_readme_counts_the_fault_switches() -> None:
    counts = re.findall(r"\b(\d+)(?:/(\d+))? (?:fault )?switches\b", readme_text())
    assert counts, "README.md no longer says how many fault switches there are"
    wrong = sorted({int(n) for pair in counts for n in pair if n and int(n) != len(FAULTS)})
    if wrong:
        pytest.fail(f"README.md counts {wrong} fault switches; FAULTS has {len(FAULTS)}", False)


def test_readme_sections_main_leaves_a_fresh_readme_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m tests.readme_sections` rewrites README.md in place: run its main() on a copy."""
    original = readme_text()
    copy = tmp_path / "README.md"
    copy.write_text(original, encoding="utf-8")
    monkeypatch.setattr(readme_sections, "README", copy)
    assert readme_sections.main() == 0
    rewritten = copy.read_text(encoding="utf-8")
    if rewritten != original:
        pytest.fail(
            "README.md is not what `python -m tests.readme_sections` generates: run it\n"
            + _diff(original, rewritten, "python -m tests.readme_sections"),
            pytrace=False,
        )


# --- The two commands -------------------------------------------------------------------------


def _tox_ini() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "tox.ini", encoding="utf-8")
    return parser


def _tox_commands(section: str) -> list[str]:
    return [c.strip() for c in _tox_ini()[section]["commands"].strip().splitlines() if c.strip()]


def test_tox_conformance_runs_the_suites_against_the_bundled_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    assert _tox_commands("testenv:conformance") == ["edusphere-conformance run {posargs}"]
    # The one default run of the session (tests/test_report.py reads its report too).
    done, cwd = default_run(tmp_path_factory)
    assert done.args == argv_for("edusphere-conformance run")
    assert_ok(done, "verdict: CONFORMANT")
    reports = cwd / "reports"
    for name in ("compliance.html", "junit.xml", "results.json"):
        assert (reports / name).is_file(), f"reports/{name} not written\n{output(done)}"
    assert json.loads((reports / "results.json").read_text())["conformant"] is True


def test_tox_runs_the_harness_tests_lint_and_types() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    lines = [line.strip() for line in script if line.strip() and not line.lstrip().startswith("#")]
    assert "set -euo pipefail" in lines, ".ci/run must stop at the first failure, like `&&`"
    assert TOX in lines, f".ci/run no longer runs the README's test command ({TOX!r})"
    tox = _tox_ini()
    envlist = [e.strip() for e in tox["tox"]["envlist"].split(",")]
    assert envlist == ["tests", "lint", "type"]
    assert _tox_commands("testenv:tests")[0].startswith("pytest tests")
    assert _tox_commands("testenv:lint") == ["ruff check .", "ruff format --check ."]
    assert _tox_commands("testenv:type") == ["mypy"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["tool"]["mypy"]["strict"] is True


def _requirement_name(spec: str) -> str:
    return re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0].lower().replace("_", "-")


def _extra_names(project: Mapping[str, Any], extra: str) -> set[str]:
    """The requirement names an extra pulls, the project's own extras it names included."""
    names: set[str] = set()
    for spec in project["optional-dependencies"][extra]:
        name = _requirement_name(spec)
        if name == project["name"]:
            inner = spec.split("[", 1)[1].split("]", 1)[0]
            for sub in inner.split(","):
                names |= _extra_names(project, sub.strip())
        else:
            names.add(name)
    return names


def _pinned(path: Path) -> dict[str, str]:
    """name -> version of a constraints file; every line that is not a comment is name==version."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)", line)
        assert match, f"{path.name}: not name==version: {line!r}"
        pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def _project_requirements() -> set[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    names = {_requirement_name(spec) for spec in project["dependencies"]}
    for extra in project["optional-dependencies"]:
        names |= _extra_names(project, extra)
    names |= {_requirement_name(spec) for spec in pyproject["build-system"]["requires"]}
    return names | {"editables"}


def test_the_pins_cover_every_requirement_of_the_project() -> None:
    """constraints.txt pins every package pyproject.toml names (a requirement added without a
    refresh of the pins would install unpinned), and tox installs with it."""
    pins = _pinned(ROOT / "constraints.txt")
    missing = _project_requirements() - set(pins)
    assert not missing, f"not pinned: {sorted(missing)}; refresh with `{TOX_PINS}`"
    tox = _tox_ini()
    for section in ("testenv", "testenv:.pkg"):
        assert "PIP_CONSTRAINT = {toxinidir}{/}constraints.txt" in tox[section]["set_env"]
    assert "-c {toxinidir}{/}constraints.txt" in tox["testenv"]["deps"]
    assert "-c {toxinidir}{/}constraints.txt" in tox["testenv:lint"]["deps"]


def test_the_canary_runs_lint_types_and_the_fast_tests_unpinned() -> None:
    tox = _tox_ini()
    envlist = [e.strip() for e in tox["tox"]["envlist"].split(",")]
    assert "canary" not in envlist and "pins" not in envlist
    canary = tox["testenv:canary"]
    assert canary["recreate"].strip() == "true"
    assert canary["deps"].strip() == ""
    assert canary["set_env"].split() == ["PIP_CONSTRAINT", "="]
    assert tox[f"testenv:{canary['package_env'].strip()}"]["set_env"].split() == [
        "PIP_CONSTRAINT",
        "=",
    ]
    assert _tox_commands("testenv:canary") == [
        *_tox_commands("testenv:lint"),
        *_tox_commands("testenv:type"),
        'pytest tests -n 2 -m "not slow" {posargs}',
    ]
    # One collection: what `-m "not slow"` leaves out is what `-m slow` selects.
    done = run(
        [sys.executable, "-m", "pytest", "tests", "--collect-only", "-q", "-m", "not slow"],
        ROOT,
        QUICK,
    )
    assert done.returncode == 0, output(done)
    found = re.search(r"(\d+)/(\d+) tests collected \((\d+) deselected\)", done.stdout)
    assert found, output(done)
    fast, total, slow = (int(n) for n in found.groups())
    assert fast + slow == total, found[0]
    assert fast > 500 and slow > 100, (fast, slow)


def test_the_pins_command_writes_every_package_pinned(tmp_path: Path) -> None:
    assert _tox_commands("testenv:pins") == ["python .ci/pins.py {posargs}"]
    assert _tox_ini()["testenv:pins"]["set_env"].split() == ["PIP_CONSTRAINT", "="]
    out = tmp_path / "constraints.txt"
    done = run([sys.executable, str(ROOT / ".ci" / "pins.py"), "--output", str(out)], ROOT, FULL)
    assert done.returncode == 0, output(done)
    assert f"packages written to {out}" in done.stdout
    pins = _pinned(out)
    missing = _project_requirements() - set(pins)
    assert not missing, f"not pinned: {sorted(missing)}"
    assert "edusphere-conformance" not in pins
    assert out.read_text(encoding="utf-8").startswith("# The known-good toolchain")


def test_editable_install_gives_the_command_and_the_plugin() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dev = _extra_names(project, "dev")
    assert {"pytest-xdist", "mypy", "ruff", "locust", "redis", "psycopg"} <= dev, dev
    core = {_requirement_name(spec) for spec in project["dependencies"]}
    assert not core & {"locust", "gevent", "redis", "psycopg", "pytest-xdist"}, core
    dist = importlib.metadata.distribution("edusphere-conformance")
    assert dist.version == project["version"]
    assert "dev" in (dist.metadata.get_all("Provides-Extra") or [])
    points = {(ep.group, ep.name): ep.value for ep in dist.entry_points}
    assert points.get(("console_scripts", "edusphere-conformance")) == "harness.cli:entry"
    assert points.get(("pytest11", "edusphere_conformance")) == "harness.server.plugin"
    import harness

    assert Path(harness.__file__).resolve().is_relative_to(ROOT), (
        f"harness is imported from {harness.__file__}, not this checkout (`pip install -e .`)"
    )


# --- Check your own server --------------------------------------------------------------------


def test_run_against_a_target_file(tmp_path: Path, demo_server: ServerThread) -> None:
    write_target(tmp_path / "my-server.toml", demo_target_dict(demo_server.url_template))
    # --only CONN,AUTH keeps this short; the whole run is test_tox_conformance_...'s.
    done = run([*argv_for(RUN_TARGET), "--only", "CONN,AUTH"], tmp_path, QUICK)
    assert_ok(done, "verdict: CONFORMANT")
    assert json.loads((tmp_path / "reports" / "results.json").read_text())["conformant"] is True


def test_load_with_two_workers(tmp_path: Path, demo_server: ServerThread) -> None:
    write_target(tmp_path / "my-server.toml", demo_target_dict(demo_server.url_template))
    done = run(argv_for(LOAD_RUN, {"200": "6", "1": "5", "60": "2"}), tmp_path, QUICK)
    assert_ok(done, "load: DELIVERED")
    data = json.loads((tmp_path / "reports" / "load.json").read_text())
    assert {c["worker"] for c in data["per_connection"]} == {0, 1}
    assert (tmp_path / "reports" / "load.html").is_file()


def test_load_across_machines(tmp_path: Path, demo_server: ServerThread) -> None:
    write_target(tmp_path / "my-server.toml", demo_target_dict(demo_server.url_template))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    sizes = {"2000": "6", "0.5": "5", "300": "2", "8": "1", "0.0.0.0": "127.0.0.1", "5557": port}
    master = subprocess.Popen(
        argv_for(LOAD_MASTER, sizes),
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        worker = run(argv_for(LOAD_WORKER, {"MASTER": "127.0.0.1", "5557": port}), tmp_path, QUICK)
        out, err = master.communicate(timeout=QUICK)
    finally:
        master.kill()
    assert worker.returncode == 0, output(worker)
    assert master.returncode == 0, out + err
    assert "load: DELIVERED" in out
    data = json.loads((tmp_path / "reports" / "load.json").read_text())
    assert data["settings"]["workers"] == 1
    assert len(data["per_connection"]) == 6


def test_pytest_against_a_target_file(tmp_path: Path, demo_server: ServerThread) -> None:
    write_target(tmp_path / "my-server.toml", demo_target_dict(demo_server.url_template))
    argv = argv_for(PYTEST_TARGET, {"suites/": f"{ROOT / 'suites'}/"})
    # --only CONN,AUTH keeps this short ("with the same options" as `run`).
    done = run([*argv, "--only", "CONN,AUTH"], tmp_path, QUICK)
    assert_ok(done, "verdict: CONFORMANT", "passed")


# --- Gate a deployment in CI ------------------------------------------------------------------


def _ci_documents() -> list[Any]:
    return [yaml.safe_load(body) for lang, body in fenced_blocks(readme_text()) if lang == "yaml"]


def _mentions(node: Any, key: str) -> bool:
    if isinstance(node, Mapping):
        return key in node or any(_mentions(v, key) for v in node.values())
    if isinstance(node, list):
        return any(_mentions(v, key) for v in node)
    return False


def test_ci_install_is_this_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["name"] == "edusphere-conformance"
    assert pyproject["build-system"]["build-backend"] == "hatchling.build"
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert set(wheel["packages"]) >= {"harness", "reference_server"}
    # A non-editable install still finds the suites and schemas (harness.cli.suites_dir).
    assert wheel["force-include"] == {"schemas": "harness/_schemas", "suites": "harness/_suites"}
    dist = importlib.metadata.distribution("edusphere-conformance")
    assert dist.version == pyproject["project"]["version"]


def test_ci_gate_with_a_baseline(tmp_path: Path, demo_server: ServerThread) -> None:
    documents = _ci_documents()
    assert len(documents) == 2 and all(_mentions(d, "CHAT_JWT_SECRET") for d in documents)
    (tmp_path / "ci").mkdir()
    target = demo_target_dict(demo_server.url_template)
    target["auth"]["secret"] = "${CHAT_JWT_SECRET}"
    write_target(tmp_path / "ci" / "staging.toml", target)
    baselines = [
        body
        for lang, body in fenced_blocks(readme_text())
        if lang == "toml" and "[[known]]" in body
    ]
    assert len(baselines) == 1, "README.md should show one baseline example with [[known]]"
    (tmp_path / "ci" / "conformance-baseline.toml").write_text(baselines[0], encoding="utf-8")
    known = [k["id"] for k in tomllib.loads(baselines[0])["known"]]
    assert known, "the README's baseline example lists no [[known]] id"
    # The staging target has no restart.command: the example accepts RECON-006 as not
    # applicable, or the run would be INCOMPLETE.
    accepted = [k["id"] for k in tomllib.loads(baselines[0])["not_applicable"]]
    assert accepted == ["RECON-006"]

    done = run(argv_for(CI_RUN), tmp_path, FULL, env=child_env(CHAT_JWT_SECRET=DEMO_SECRET))
    assert_ok(done, "verdict: CONFORMANT")
    results = json.loads((tmp_path / "reports" / "results.json").read_text())
    by_id = {r["id"]: r for r in results["requirements"]}
    for rid in known:  # the reference server passes them all: "fixed: remove it ..."
        assert by_id[rid]["verdict"] == "passed", by_id[rid]
        assert by_id[rid].get("fixed") is True, by_id[rid]
        assert by_id[rid]["reason"] == "fixed: remove it from the baseline", by_id[rid]
    assert by_id["RECON-006"]["verdict"] == "not_applicable", by_id["RECON-006"]


def test_the_token_only_baseline_makes_a_token_only_run_conformant(
    tmp_path: Path, demo_server: ServerThread
) -> None:
    """The README's token-only example: without auth.secret and restart.command, exactly the
    requirements its baseline lists are not tested (INCOMPLETE), and with it the run passes.
    Without auth.secret the harness uses the tokens the target gives: only the checks that need
    the signing key are not tested, each saying why, and nothing fails (under ``-n 2``: the
    whole suite's verdicts on two workers are those of a run alone)."""
    text = readme_text()
    block = text.split("<!-- token-only-baseline:start -->")[1].split("<!-- token-only")[0]
    body = block.split("```toml\n", 1)[1].split("```", 1)[0]
    accepted = sorted(k["id"] for k in tomllib.loads(body)["not_applicable"])
    baseline = tmp_path / "conformance-baseline.toml"
    baseline.write_text(body, encoding="utf-8")
    data = demo_target_dict(demo_server.url_template)
    secret = data["auth"].pop("secret")
    for account in data["accounts"].values():
        account["token"] = jwt.encode(
            {"sub": account["user_id"], "exp": int(time.time()) + 3600},
            secret,
            algorithm=DEMO_ALGORITHM,
        )
    target = write_target(tmp_path / "token-only.toml", data)
    base = [str(BIN / "edusphere-conformance"), "run", "--target", str(target), "-n", "2"]

    without = run([*base, "--report-dir", "plain"], tmp_path, FULL)
    assert without.returncode == 2, output(without)
    results = json.loads((tmp_path / "plain" / "results.json").read_text())
    assert verdicts(results, "failed", ("MUST", "SHOULD", "INFO")) == [], output(without)
    assert sorted(not_tested(results, ("MUST",))) == accepted
    reasons = not_tested(results)
    assert sorted(reasons) == ["AUTH-003", "AUTH-006", "AUTH-011", "RECON-006"], reasons
    assert all(str(reason).startswith("not tested: needs") for reason in reasons.values()), reasons
    assert results["verdict"] == "INCOMPLETE", output(without)
    assert results["reason"].startswith(f"{len(accepted)} MUST not tested - needs "), results
    assert f"INCOMPLETE: {len(accepted)} MUST not tested - " in without.stdout

    with_baseline = run([*base, "--baseline", str(baseline), "--report-dir", "b"], tmp_path, FULL)
    assert_ok(with_baseline, "verdict: CONFORMANT")


# --- The command line -------------------------------------------------------------------------


def test_the_program_lists_its_commands(tmp_path: Path) -> None:
    done = run([*argv_for(PROGRAM), "--help"], tmp_path, QUICK)
    assert_ok(done, "usage: edusphere-conformance", "run", "list", "serve", "client-check", "load")


def test_list_markdown_prints_the_catalogue_table(tmp_path: Path) -> None:
    done = run(argv_for(LIST_MARKDOWN), tmp_path, QUICK)
    assert_ok(done, "| id | level | requirement |")
    rows = [line for line in done.stdout.splitlines() if re.match(r"\| [A-Z]+-\d{3} \|", line)]
    generated = readme_sections.catalogue_section().splitlines()
    assert rows == [line for line in generated if re.match(r"\| [A-Z]+-\d{3} \|", line)]


def test_list_faults_names_every_switch(tmp_path: Path) -> None:
    done = run([*argv_for(PROGRAM), *shlex.split(LIST_FAULTS)], tmp_path, QUICK)
    assert_ok(done, f"{len(FAULTS)} fault switches")
    names = [line.split()[0] for line in done.stdout.splitlines()[: len(FAULTS)]]
    assert names == list(FAULTS)


def test_serve_help_lists_every_server_setting(tmp_path: Path) -> None:
    done = run([*argv_for(PROGRAM), *shlex.split(SERVE_HELP)], tmp_path, QUICK)
    # The README: token transport, claim, algorithm, refusal style, trailing slash, timestamp
    # style; and --port, --demo, --fault from the synopsis.
    options = ("--transport", "--claim", "--algorithm", "--refusal", "--trailing-slash")
    assert_ok(done, *options, "--timestamp-style", "--port", "--demo", "--fault")


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"the server printed nothing within {timeout} s"
    return proc.stdout.readline()


def _lines_until(proc: subprocess.Popen[str], last: str, timeout: float) -> list[str]:
    """The lines ``proc`` prints, up to the line ``last``, within ``timeout`` seconds."""
    found: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            found.put(line)
            if line.strip() == last:
                return
        found.put("")

    threading.Thread(target=read, daemon=True).start()
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while not lines or lines[-1].strip() != last:
        line = found.get(timeout=max(0.0, deadline - time.monotonic()))
        assert line, f"the server ended after {''.join(lines)!r}"
        lines.append(line)
    return lines


def _serve(
    argv: list[str],
    tmp_path: Path,
    bodies: Sequence[str],
    *,
    tls: ssl.SSLContext | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[list[dict[str, Any]], float]:
    """Start ``serve`` (with ``--demo``), send ``bodies`` as bob at once; their events in the
    order they came, and when the last came (seconds after the first was sent). ``tls``: the
    client's context for a ``wss://`` server; ``headers``: sent with the handshake."""
    if "--demo" not in argv:
        argv.append("--demo")
    with (tmp_path / "serve.log").open("w") as log:
        proc = subprocess.Popen(
            argv, cwd=tmp_path, env=child_env(), stdout=subprocess.PIPE, stderr=log, text=True
        )
        try:
            line = _read_line(proc, 30.0)
            match = re.match(r"listening on (wss?://127\.0\.0\.1:\d+/\S+)", line)
            assert match, f"unexpected first line {line!r}: {(tmp_path / 'serve.log').read_text()}"
            now = int(time.time())
            claims = {"sub": demo_user_id("bob"), "iat": now, "exp": now + 600}
            token = jwt.encode(claims, DEMO_SECRET, algorithm=DEMO_ALGORITHM)
            url = match.group(1).format(host=DEMO_HOST, room=DEMO_ROOMS[0]) + f"?token={token}"
            options: dict[str, Any] = {"ssl": tls} if tls is not None else {}
            try:
                with connect(
                    url, open_timeout=SLOW, proxy=None, additional_headers=headers, **options
                ) as ws:
                    t0 = time.monotonic()
                    for body in bodies:
                        ws.send(json.dumps({"type": "text", "message": body}))
                    events = [json.loads(ws.recv(timeout=SLOW)) for _ in bodies]
                    return events, time.monotonic() - t0
            except TimeoutError as exc:  # a loaded CI machine, or a server that hangs: say which
                log = (tmp_path / "serve.log").read_text(errors="replace")[-2000:]
                why = f"{exc} (the server: {proc.poll()=}; its log: {log!r})"
                raise AssertionError(why) from exc
        finally:
            stop_process(proc)


def test_serve_with_a_fault_switch(tmp_path: Path) -> None:
    argv = argv_for(SERVE_FAULT, {"NAME": "escape-body"})
    event = _serve(argv, tmp_path, ["a & b <i>"])[0][0]
    assert event["action"] == "new" and event["body"] == "a &amp; b &lt;i&gt;", event


def test_serve_with_latency(tmp_path: Path) -> None:
    argv = [*argv_for(PROGRAM), *shlex.split(SERVE_LATENCY)]
    events, after_s = _serve(argv, tmp_path, ["one", "two", "three"])
    assert [e["body"] for e in events] == ["one", "two", "three"], events
    assert after_s >= 0.06, after_s  # three frames of at least 20 ms each, one at a time


def test_serve_as_a_cluster(tmp_path: Path) -> None:
    with RedisServer() as redis:
        command = argv_for(f"{PROGRAM} {SERVE_NODES}", {"redis://HOST:PORT": redis.url})
        argv = [*command, "--demo", "--db", str(tmp_path / "chat.sqlite3")]
        with (tmp_path / "serve.log").open("w") as log:
            proc = subprocess.Popen(
                argv,
                cwd=tmp_path,
                env=child_env(),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
            )
            try:
                lines = _lines_until(proc, TARGET_END, 30.0)
                shown = "".join(lines)
                assert [line.split(" listening on ")[0] for line in lines[:2]] == [
                    "node-1",
                    "node-2",
                ], shown + (tmp_path / "serve.log").read_text()
                target = parse(tomllib.loads(shown.split(TARGET_START, 1)[1]))
                assert len(target.nodes) == 2
                now = int(time.time())
                claims = {"sub": demo_user_id("bob"), "iat": now, "exp": now + 600}
                token = jwt.encode(claims, DEMO_SECRET, algorithm=DEMO_ALGORITHM)
                one, two = (
                    target.url_for(DEMO_ROOMS[0], node=i) + f"?token={token}" for i in (0, 1)
                )
                with (
                    connect(two, open_timeout=10, proxy=None) as there,
                    connect(one, open_timeout=10, proxy=None) as here,
                ):
                    here.send(json.dumps({"type": "text", "message": "across"}))
                    assert json.loads(there.recv(timeout=10))["body"] == "across"
            finally:
                stop_process(proc)


def test_serve_with_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    argv = [*argv_for(PROGRAM), *shlex.split(SERVE_TLS)]
    events, _ = _serve(list(argv), tmp_path, ["over tls"], tls=context)
    assert events[0]["body"] == "over tls", events
    client = ca.issue_cert("bob@example.org")
    client.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "client.pem"))
    context.load_cert_chain(str(tmp_path / "client.pem"))
    mutual = [*argv, "--tls-client-ca", "ca.pem"]
    events, _ = _serve(mutual, tmp_path, ["mutual tls"], tls=context)
    assert events[0]["body"] == "mutual tls", events


def test_serve_as_a_gateway(tmp_path: Path) -> None:
    argv = [*argv_for(PROGRAM), *shlex.split(SERVE_GATEWAY.replace("VALUE", "k3y"))]
    events, _ = _serve(list(argv), tmp_path, ["past the gateway"], headers={"X-Api-Key": "k3y"})
    assert events[0]["body"] == "past the gateway", events
    with pytest.raises(InvalidStatus) as refused:
        _serve(list(argv), tmp_path, ["refused"])
    assert refused.value.response.status_code == 401


def test_provision_prints_accounts_and_rooms(tmp_path: Path) -> None:
    db = str(tmp_path / "provision.sqlite3")
    provision = [sys.executable, "-m", "reference_server", "provision", "--db", db]
    first = run([*provision, "--user", "bob", "--user", "carol"], tmp_path, QUICK)
    assert_ok(first)
    subs = {"FILE": db, "NAME": "alice", "HOST/SLUG:USER,USER": "alice/general:bob,carol"}
    done = run(argv_for(PROVISION, subs), tmp_path, QUICK)
    assert_ok(done)
    data = json.loads(done.stdout)
    assert data["accounts"]["alice"]["username"] == "alice"
    assert set(data["accounts"]) == {"alice", "bob", "carol"}
    room = data["rooms"]["alice/general"]
    assert room["host"] == "alice" and set(room["participants"]) >= {"alice", "bob", "carol"}
    assert set(data["tokens"]) == {"alice", "bob", "carol"}


# --- Check a client ---------------------------------------------------------------------------


def test_client_check_passes_the_reference_client(tmp_path: Path) -> None:
    done = run(argv_for(CLIENT_CHECK), tmp_path, FULL)
    assert_ok(done, "client-check: passed")
    assert (tmp_path / "reports" / "client-compliance.html").is_file(), output(done)
    read_reports(tmp_path / "reports", 0)  # the JSON against its schema, the JUnit file


# --- The mutation matrix and Performance ------------------------------------------------------


def test_mutation_matrix_table() -> None:
    done = run([*argv_for(MATRIX), "escape-body"], ROOT, FULL)
    assert_ok(done, "1/1 switches killed at their documented requirements")
    assert re.search(r"^escape-body\s+MUST\s+SEND-010\s+SEND-010$", done.stdout, re.M), output(done)


def test_mutation_matrix_markdown() -> None:
    done = run([*argv_for(MATRIX_MARKDOWN), "escape-body"], ROOT, FULL)
    assert_ok(done, "1/1 switches killed at their documented requirements")
    printed = [line for line in done.stdout.splitlines() if line.startswith("| `escape-body` |")]
    table = readme_sections.section(readme_text(), "faults")
    shown = [line for line in table.splitlines() if line.startswith("| `escape-body` |")]
    assert printed == shown, f"printed {printed}, README.md shows {shown}"


def test_mutation_matrix_test_under_xdist() -> None:
    test = "tests/test_mutation_matrix.py::test_fault_is_caught_at_its_requirements"
    ids = [f"{test}[escape-body]", f"{test}[require-timestamp]"]
    done = run([*argv_for(PYTEST_N2), *ids], ROOT, FULL)
    assert_ok(done, "2 passed")


#: What the benchmarks' runs are narrowed to here: the command and its table are what this file
#: checks; the whole runs' verdicts are other tests' (see each test).
BENCH_ONLY = ["--only", "CONN"]


def test_bench_suites() -> None:
    # The whole suite under -n 2, every verdict as expected: the token-only run below.
    done = run([*argv_for(BENCH_SUITES), "--runs", "1", *BENCH_ONLY], ROOT, FULL)
    assert_ok(done, "whole default run (serial)", "verdicts identical to the serial run: True")


def test_bench_speed() -> None:
    # --no-slow: the --latency 20-80 --strict run is tests/test_slow_server.py's (50 s). The
    # whole default run CONFORMANT: test_tox_conformance_...; the same verdicts with
    # --concurrency 1: tests/test_scheduler.py.
    done = run([*argv_for(BENCH_SPEED), "--runs", "1", "--no-slow", *BENCH_ONLY], ROOT, FULL)
    assert_ok(done, "concurrent (default): median", "--concurrency 1: median")
    assert done.stdout.count(", CONFORMANT") == 2, output(done)


def test_bench_load() -> None:
    done = run([*argv_for(BENCH_LOAD), "--runs", "1", "--no-slow"], ROOT, FULL)
    assert_ok(done, "--only LOAD, bundled server:", "2-node cluster on Redis:")
    assert done.stdout.count("CONFORMANT; burst 15,000 deliveries") == 2, output(done)


def test_bench_loadmode() -> None:
    small = ["--users", "6", "--rate", "5", "--duration", "1"]
    done = run([*argv_for(BENCH_LOADMODE), *small], ROOT, FULL)
    assert_ok(done, "1 workers sustain 6 connections", "2 workers sustain 6 connections")


def test_bench_asgi() -> None:
    # The whole in-process run CONFORMANT (--strict): tests/test_asgi_alt.py.
    done = run([*argv_for(BENCH_ASGI), "--runs", "1", "--no-served", *BENCH_ONLY], ROOT, FULL)
    assert_ok(done, "in-process, default run: median", "in-process, --only CONN-001: median")
    assert done.stdout.count("; CONFORMANT, exit 0") == 2, output(done)


def test_bench_client_check() -> None:
    done = run([*argv_for(BENCH_CLIENT_CHECK), "--base-delay-ms", "100"], ROOT, FULL)
    assert_ok(done, "concurrent", "exit 0")


def test_mutation_matrix_whole_runs() -> None:
    done = run([*argv_for(MATRIX_WHOLE), "escape-body"], ROOT, FULL)
    assert_ok(done, "escape-body", "NON-CONFORMANT", "median")


def test_bench_server() -> None:
    small = ["--connections", "10", "--rounds", "2", "--handshakes", "2"]
    done = run([*argv_for(BENCH_SERVER), *small], ROOT, FULL)
    assert_ok(done, "handshake median", "fan-out to 10 median")
