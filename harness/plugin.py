"""The pytest plugin: options, the ``requirement`` marker, fixtures, verdicts and reports.

Loaded through the ``pytest11`` entry point. Everything that turns pytest's outcomes into
conformance verdicts lives here; the suites only talk to the server and check.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import importlib
import inspect
import json
import os
import socket
import ssl
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from harness import __version__, redact
from harness.baseline import BaselineError, load_baseline
from harness.client import Chat
from harness.core import catalogue as cat_mod
from harness.core.failures import ConformanceFailure, ConformanceTimeout, HarnessError, NotTested
from harness.core.results import RunResult, TestRecord, aggregate
from harness.render.files import write_results_json
from harness.render.terminal import summary_lines
from harness.target import Target, TargetError, refuse_bare_url
from harness.target import load as load_target
from harness.tokens import Minter

_TARGET = pytest.StashKey[Target]()
_STATE = pytest.StashKey["State"]()
_CHAT = pytest.StashKey[Chat]()


class State:
    """Run-wide state on the controller (``config.stash``)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.records: dict[str, TestRecord] = {}
        self.started = datetime.now(UTC)
        self.t0 = time.monotonic()
        self.selected: set[str] | None = None
        self.baseline: dict[str, str] = {}
        self.result: RunResult | None = None
        self.active = False
        self.server: Any = None
        self.tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self.target_label = ""


# --- options and configuration ------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edusphere-conformance")
    group.addoption(
        "--target",
        default=None,
        metavar="FILE",
        help="target file (TOML); default: the bundled reference server",
    )
    group.addoption(
        "--only",
        default=None,
        metavar="IDS",
        help="areas or requirement ids, comma-separated (AUTH,EDIT-002)",
    )
    group.addoption(
        "--report-dir",
        default=None,
        metavar="DIR",
        help="write compliance.html, junit.xml and results.json here",
    )
    group.addoption(
        "--baseline",
        default=None,
        metavar="FILE",
        help="TOML list of requirement ids known to fail ([[known]] id, reason)",
    )
    group.addoption(
        "--examples",
        type=int,
        default=None,
        metavar="N",
        help="examples per property in the property-based suite",
    )
    group.addoption(
        "--conformance-progress",
        action="store_true",
        default=False,
        help="one progress line per area instead of pytest's output (the CLI's mode)",
    )


def strict_mode(config: pytest.Config) -> bool:
    """pytest's own ``--strict`` (pytest 9: the ``strict`` ini switch) also makes SHOULD count."""
    try:
        return bool(config.getini("strict"))
    except ValueError:  # pytest < 9: --strict is a plain flag
        return bool(config.getoption("strict", False))


def _usage_error(message: str) -> pytest.UsageError:
    return pytest.UsageError(redact.redact(message))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requirement(*ids): the catalogue requirement(s) a conformance test checks"
    )
    config.addinivalue_line("markers", "test_timeout(seconds): bound for one conformance test")
    state = State(config)
    config.stash[_STATE] = state
    catalogue = cat_mod.load()
    only = config.getoption("only")
    if only:
        try:
            state.selected = catalogue.select(only)
        except ValueError as exc:
            raise _usage_error(str(exc)) from None
    baseline = config.getoption("baseline")
    if baseline:
        try:
            state.baseline = load_baseline(baseline, catalogue)
        except BaselineError as exc:
            raise _usage_error(str(exc)) from None
    target_opt = config.getoption("target")
    if target_opt:
        if "://" in target_opt:
            raise _usage_error(str(refuse_bare_url(target_opt)))
        try:
            target = load_target(target_opt)
        except TargetError as exc:
            raise _usage_error(str(exc)) from None
        config.stash[_TARGET] = target
        state.target_label = target.url
    report_dir = config.getoption("report_dir")
    if report_dir and not hasattr(config, "workerinput"):
        out = Path(report_dir)
        out.mkdir(parents=True, exist_ok=True)
        if hasattr(config.option, "htmlpath") and not config.option.htmlpath:
            config.option.htmlpath = str(out / "compliance.html")
            config.option.self_contained_html = True
        if not getattr(config.option, "xmlpath", None):
            config.option.xmlpath = str(out / "junit.xml")
    plugins = config.pluginmanager  # the HTML compliance report, with pytest-html only
    if plugins.hasplugin("html") and not plugins.hasplugin("edusphere-report"):
        plugins.register(importlib.import_module("harness.report"), "edusphere-report")


class Progress:
    """The CLI's output: a line per area as it completes, then the summary table."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.expected: dict[str, int] = {}  # area name -> tests collected
        self.done: dict[str, dict[str, int]] = {}
        self.key_of: dict[str, str] = {}  # nodeid -> area name
        self.printed: set[str] = set()

    @staticmethod
    def write(line: str) -> None:
        print(line, flush=True)

    def collected(self, items: list[pytest.Item]) -> None:
        cat = cat_mod.load()
        for item in items:
            ids = requirement_ids(item)
            module = item.nodeid.split("::")[0]
            key = cat.areas.get(cat[ids[0]].area, module) if ids else Path(module).stem
            self.key_of[item.nodeid] = key
            self.expected[key] = self.expected.get(key, 0) + 1

    def record(self, report: pytest.TestReport) -> None:
        if report.when != "call" and not (report.when == "setup" and not report.passed):
            return
        key = self.key_of.get(report.nodeid, Path(report.nodeid.split("::")[0]).stem)
        counts = self.done.setdefault(key, {"passed": 0, "failed": 0, "skipped": 0})
        counts[report.outcome] = counts.get(report.outcome, 0) + 1
        if sum(counts.values()) >= self.expected.get(key, 10**9):
            self.flush(key)

    def flush(self, key: str) -> None:
        if key in self.printed:
            return
        self.printed.add(key)
        c = self.done.get(key, {})
        total = sum(c.values())
        parts = [f"{c.get('passed', 0)} passed"]
        if c.get("failed"):
            parts.append(f"{c['failed']} failed")
        if c.get("skipped"):
            parts.append(f"{c['skipped']} not tested")
        self.write(f"  {key:<32} {total:>3} tests: {', '.join(parts)}")

    def finish(self, result: RunResult | None, report_dir: str | None) -> None:
        for key in self.done:
            self.flush(key)
        if result is None:
            return
        self.write("")
        for line in summary_lines(result):
            self.write(line)
        if report_dir:
            self.write(f"reports: {report_dir}/compliance.html, junit.xml, results.json")


_PROGRESS = pytest.StashKey[Progress]()


@pytest.hookimpl(trylast=True)
def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed and _CURRENT and _PROGRESS in _CURRENT[-1].config.stash:
        Progress.write(
            f"error collecting {report.nodeid}: {redact.redact(str(report.longrepr))[-800:]}"
        )


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    state = config.stash[_STATE]
    catalogue = cat_mod.load()
    keep, drop = [], []
    for item in items:
        ids = requirement_ids(item)
        if not ids:
            keep.append(item)
            continue
        unknown = [i for i in ids if i not in catalogue]
        if unknown:
            raise _usage_error(f"{item.nodeid}: requirement {unknown[0]} is not in the catalogue")
        if state.selected is not None and not (set(ids) & state.selected):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    if any(requirement_ids(i) for i in items):
        state.active = True
    if _PROGRESS in config.stash:
        config.stash[_PROGRESS].collected(items)


def requirement_ids(item: pytest.Item) -> tuple[str, ...]:
    ids: list[str] = []
    for mark in item.iter_markers("requirement"):
        ids.extend(str(a) for a in mark.args)
    return tuple(dict.fromkeys(ids))


# --- the target and the bundled server ----------------------------------------------------


def _probe(target: Target) -> None:
    """Before any test: the target answers TCP and then a WebSocket handshake (any answer: an
    upgrade, a refusal, an error status) within ``connect_timeout``. A server that never
    answers would otherwise cost every test its full timeout."""
    host, port = target.address
    try:
        sock = socket.create_connection((host, port), timeout=target.connect_timeout)
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise HarnessError(
            f"target unreachable: {host}:{port} ({reason}, within {target.connect_timeout:.1f} s)"
        ) from None
    parts = urlsplit(target.url_for(target.rooms.get("main", "probe")))
    try:
        with sock:
            if parts.scheme == "wss":
                context = ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=host)
            key = base64.b64encode(os.urandom(16)).decode()
            request = (
                f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                + (f"Origin: {target.origin}\r\n" if target.origin else "")
                + "\r\n"
            )
            sock.sendall(request.encode())
            answered = sock.recv(1)
    except TimeoutError:
        answered = b""
    except OSError:
        return  # a reset or a TLS failure is an answer; the tests will say what is wrong
    if not answered:
        raise HarnessError(
            f"target does not answer the WebSocket handshake: {host}:{port} accepts TCP but "
            f"sent nothing within {target.connect_timeout:.1f} s"
        )


def start_bundled(state: State) -> Target:
    """The reference server with its demo data, on a free port, storing into a temp file."""
    from harness.target import parse
    from reference_server.demo import demo_config, demo_target_dict
    from reference_server.runner import ServerThread

    state.tmpdir = tempfile.TemporaryDirectory(prefix="edusphere-")
    db = os.path.join(state.tmpdir.name, "reference.sqlite3")
    config = demo_config(database=db)
    server = ServerThread(config).start()
    state.server = server
    data = demo_target_dict(server.url_template)
    data["limits"]["max_frame_bytes"] = config.max_frame_bytes
    target = parse(data, where="<bundled reference server>")
    return dataclasses.replace(target, restart_hook=server.restart)


@pytest.fixture(scope="session")
def conformance_target(pytestconfig: pytest.Config) -> Iterator[Target]:
    """The target under test: the --target file, or the bundled reference server."""
    state = pytestconfig.stash[_STATE]
    if _TARGET in pytestconfig.stash:
        target = pytestconfig.stash[_TARGET]
        try:
            _probe(target)
        except HarnessError as exc:
            pytest.exit(str(exc), returncode=2)
        yield target
        return
    target = start_bundled(state)
    state.target_label = target.url
    try:
        yield target
    finally:
        state.server.stop()
        if state.tmpdir is not None:
            state.tmpdir.cleanup()


@pytest.fixture
def chat(request: pytest.FixtureRequest, conformance_target: Target) -> Chat:
    """A recording client session for one test; its transcript goes into the report."""
    session = Chat(conformance_target, Minter(conformance_target.auth))
    request.node.stash[_CHAT] = session
    return session


@pytest.fixture
def examples(pytestconfig: pytest.Config, conformance_target: Target) -> int:
    """Examples per property: --examples, else the target's [properties] examples."""
    value = pytestconfig.getoption("examples")
    return int(value) if value else conformance_target.examples


# --- running async tests, bounded ---------------------------------------------------------


def _test_timeout(item: pytest.Item, target: Target | None) -> float:
    mark = item.get_closest_marker("test_timeout")
    if mark is not None:
        return float(mark.args[0])
    receive = target.receive_timeout if target else 5.0
    return max(30.0, 8 * receive)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    func = pyfuncitem.obj
    if not inspect.iscoroutinefunction(func):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    chat: Chat | None = pyfuncitem.stash.get(_CHAT, None)
    bound = _test_timeout(pyfuncitem, chat.target if chat else None)
    ids = requirement_ids(pyfuncitem)

    async def run() -> None:
        scope = asyncio.timeout(bound)
        try:
            async with scope:
                await func(**kwargs)
        except TimeoutError:
            if not scope.expired():
                raise
            raise ConformanceTimeout(
                ids[0] if ids else "CONN-001",
                "the test to finish",
                f"it did not finish within {bound:.0f} s",
            ) from None
        finally:
            if chat is not None:
                await chat.close_all()

    try:
        asyncio.run(run())
    except NotTested as exc:
        pytest.skip(f"not tested: {exc}")
    except HarnessError as exc:
        pytest.exit(str(exc), returncode=2)
    return True


# --- per-test records ---------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    ids = requirement_ids(item)
    if not ids:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        chat = item.stash.get(_CHAT, None)
        record: dict[str, Any] = {"requirements": list(ids)}
        if chat is not None:
            record["transcript"] = chat.transcript.as_list()
            record["observations"] = chat.observations
        if report.failed and call.excinfo is not None:
            exc = call.excinfo.value
            if isinstance(exc, ConformanceFailure):
                record.update(
                    failed=list(exc.requirements),
                    kind=exc.kind,
                    expected=exc.expected,
                    actual=exc.actual,
                )
                if not set(exc.requirements) & set(ids):
                    record["message"] = f"stopped early: {exc.requirement} failed"
            else:
                record.update(
                    failed=list(ids),
                    kind="error",
                    message=redact.redact(f"{type(exc).__name__}: {exc}")[:500],
                )
        elif report.skipped and call.excinfo is not None:
            record["message"] = str(
                call.excinfo.value.msg if hasattr(call.excinfo.value, "msg") else call.excinfo.value
            )
        # The record rides on the report as a plain attribute: pytest serialises it for xdist
        # workers, and it stays out of junit.xml, which gets the short properties below.
        report.conformance = record  # type: ignore[attr-defined]
        report.user_properties.append(("requirements", " ".join(ids)))
        if report.failed and record.get("failed"):
            report.user_properties.append(("failed_requirements", " ".join(record["failed"])))
        if report.failed and report.longrepr is not None and call.excinfo is not None:
            exc = call.excinfo.value
            if isinstance(exc, ConformanceFailure) and chat is not None:
                report.sections.append(("transcript", chat.transcript.render()))


def _record_from(report: pytest.TestReport) -> TestRecord | None:
    data = getattr(report, "conformance", None)
    if isinstance(data, str):
        data = json.loads(data)
    if isinstance(data, dict):
        message = data.get("message", "")
        if report.skipped and not message and isinstance(report.longrepr, tuple):
            message = str(report.longrepr[2]).removeprefix("Skipped: ")
        return TestRecord(
            nodeid=report.nodeid,
            requirements=tuple(data["requirements"]),
            outcome=report.outcome,
            failed_requirements=tuple(data.get("failed", ())),
            kind=data.get("kind", ""),
            expected=data.get("expected", ""),
            actual=data.get("actual", ""),
            message=message,
            transcript=data.get("transcript", []),
            observations=data.get("observations", {}),
            duration_s=report.duration,
        )
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    state = _state_of(report)
    if state is None:
        return
    record = _record_from(report)
    if record is not None:
        state.records[report.nodeid] = record
        state.active = True
    if _PROGRESS in state.config.stash:
        state.config.stash[_PROGRESS].record(report)


_CURRENT: list[State] = []


def _state_of(report: pytest.TestReport) -> State | None:
    return _CURRENT[-1] if _CURRENT else None


def pytest_sessionstart(session: pytest.Session) -> None:
    _CURRENT.append(session.config.stash[_STATE])
    config = session.config
    if config.getoption("conformance_progress") and not hasattr(config, "workerinput"):
        reporter = config.pluginmanager.getplugin("terminalreporter")
        if reporter is not None:
            config.pluginmanager.unregister(reporter)
        config.stash[_PROGRESS] = Progress(config)
        target = (
            config.stash[_TARGET].source
            if _TARGET in config.stash
            else "the bundled reference server"
        )
        Progress.write(f"edusphere-conformance {__version__}: running the suites against {target}")


# --- the verdict --------------------------------------------------------------------------


def build_result(state: State) -> RunResult:
    return aggregate(
        state.records.values(),
        selected=state.selected,
        baseline=state.baseline,
        target=state.target_label or "<bundled reference server>",
        started=state.started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        duration_s=time.monotonic() - state.t0,
        harness_version=__version__,
        strict=strict_mode(state.config),
    )


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash[_STATE]
    if _CURRENT and _CURRENT[-1] is state:
        _CURRENT.pop()
    if not state.active or hasattr(session.config, "workerinput"):
        return
    result = build_result(state)
    result.complete = exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    state.result = result
    report_dir = session.config.getoption("report_dir")
    if report_dir:
        write_results_json(result, Path(report_dir) / "results.json")
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        session.exitstatus = (
            pytest.ExitCode.OK if result.conformant else pytest.ExitCode.TESTS_FAILED
        )
    if _PROGRESS in session.config.stash:
        session.config.stash[_PROGRESS].finish(result, report_dir)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None or state.result is None:
        return
    terminalreporter.section("conformance")
    for line in summary_lines(state.result):
        terminalreporter.write_line(line)


def current_result(config: pytest.Config) -> RunResult | None:
    """The run's results model, once the session finished (for report renderers)."""
    state = config.stash.get(_STATE, None)
    return state.result if state is not None else None


def record_of(report: pytest.TestReport) -> TestRecord | None:
    """What a test report says for conformance (requirements, failure, transcript)."""
    return _record_from(report)
