"""From pytest's outcomes to the core's test records, and where the run's result is kept.

The plugin builds a record when a test's report is made (:func:`attach`, on the process that
ran it) and rides it on the report to the controller (xdist serialises it); renderers read
records and the result through the functions here, never through the plugin.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest

from harness import redact, spec
from harness.core.failures import ConformanceFailure, ResourceLimit
from harness.core.results import RunResult, TestRecord
from harness.server.chat import Chat
from harness.server.options import requirement_ids

#: The chat session of a test (set by the ``chat`` fixture).
CHAT = pytest.StashKey[Chat]()
#: The run's results model, once the session finished (on the controller).
RESULT = pytest.StashKey[RunResult]()
#: How long a test really ran, where pytest's call time would say more: one the scheduler ran
#: (its call only waits for the outcome), one that waited for the run's lock (pytest-xdist).
DURATION = pytest.StashKey[float]()
#: The line of a conformance test whose set-up raised (not a verdict): the run stops after it.
SETUP_ERROR = pytest.StashKey[str]()


def attach(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo[None]) -> None:
    """What a conformance test's report carries: its record (a plain attribute, which pytest
    serialises for xdist workers and keeps out of junit.xml), short properties for junit.xml,
    the transcript of a failure. A set-up that raised something other than a verdict makes the
    test not tested (the harness, not the server, failed), with the cause kept for the run."""
    if report.when == "call" and DURATION in item.stash:
        report.duration = item.stash[DURATION]
    ids = requirement_ids(item)
    if not ids or not (report.when == "call" or (report.when == "setup" and not report.passed)):
        return
    chat = item.stash.get(CHAT, None)
    if report.when == "setup" and report.failed and call.excinfo is not None:
        line = setup_error(item, call.excinfo)
        if line is not None:
            item.stash[SETUP_ERROR] = line
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {line}")
    record = build_record(ids, report, call, chat)
    if SETUP_ERROR in item.stash:
        record["message"] = f"not tested: {item.stash[SETUP_ERROR]}"
    report.conformance = record  # type: ignore[attr-defined]
    report.user_properties.append(("requirements", " ".join(ids)))
    if report.failed and record.get("failed"):
        report.user_properties.append(("failed_requirements", " ".join(record["failed"])))
    if report.failed and chat is not None and "expected" in record:
        report.sections.append(("transcript", chat.transcript.render()))


def setup_error(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
    """One line for a set-up that raised something other than a verdict or a skip: the
    fixture that raised (when it can be told), the exception, the test. None for a verdict
    (a ConformanceFailure raised while setting up is the server's) or pytest's own outcomes."""
    exc = excinfo.value
    if isinstance(exc, ConformanceFailure | ResourceLimit | pytest.skip.Exception):
        return None
    if not isinstance(exc, Exception):
        return None  # pytest.exit, KeyboardInterrupt: they end the run on their own
    fixture = _raising_fixture(item, excinfo)
    where = f"the fixture {fixture!r} of {item.nodeid}" if fixture else f"setting up {item.nodeid}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return redact.redact(f"{where} raised {type(exc).__name__}" + (f": {text}" if text else ""))


def _raising_fixture(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
    """The name of the fixture whose function raised (the innermost one in the traceback)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    codes = {}
    for name, defs in info.name2fixturedefs.items():
        for fixturedef in defs:
            func = inspect.unwrap(fixturedef.func)
            code = getattr(func, "__code__", None)
            if code is not None:
                codes[code] = name
    found = None
    for entry in excinfo.traceback:
        name = codes.get(entry.frame.code.raw)
        if name is not None:
            found = name
    return found


def brief_failures(item: pytest.Item) -> None:
    """A conformance test's failure is reported by what it found (requirement, expected, actual:
    its record, the HTML, JUnit), not by the harness's call stack. pytest's traceback of it
    would parse the source of every frame: half the wall time of a run against a server that
    fails most tests. Other exceptions (a bug in the harness) keep their traceback."""
    full = item.repr_failure

    def repr_failure(excinfo: pytest.ExceptionInfo[BaseException], *args: Any) -> Any:
        exc = excinfo.value
        if isinstance(exc, ConformanceFailure):
            spec.stated(exc)  # the requirement's statement beside what broke it (h2spec's habit)
        if isinstance(exc, ConformanceFailure | ResourceLimit):
            return redact.redact(f"{type(exc).__name__}: {exc}")
        return full(excinfo, *args)

    setattr(item, "repr_failure", repr_failure)  # noqa: B010 - an instance's own, on purpose


def build_record(
    ids: tuple[str, ...], report: pytest.TestReport, call: pytest.CallInfo[None], chat: Chat | None
) -> dict[str, Any]:
    """What one test says for conformance, as plain data (it travels between processes)."""
    record: dict[str, Any] = {"requirements": list(ids)}
    if chat is not None:
        record["transcript"] = chat.transcript.as_list()
        record["observations"] = chat.observations
        record["traffic"] = chat.traffic.as_dict()
        if chat.figures:
            record["figures"] = chat.figures
    if report.failed and call.excinfo is not None:
        exc = call.excinfo.value
        if isinstance(exc, ConformanceFailure):
            record.update(
                failed=list(exc.requirements),
                kind=exc.kind,
                expected=exc.expected,
                actual=exc.actual,
            )
            if exc.held:
                record["held"] = list(exc.held)
            if not set(exc.requirements) & set(ids):
                record["message"] = f"stopped early: {exc.requirement} failed"
        elif isinstance(exc, ResourceLimit):
            # The server made the harness pass one of its own bounds: no requirement says so,
            # so the test's own requirements fail, with what was measured.
            record.update(failed=list(ids), kind=exc.kind, expected=exc.expected, actual=exc.actual)
        else:
            record.update(
                failed=list(ids),
                kind="error",
                message=redact.redact(f"{type(exc).__name__}: {exc}")[:500],
            )
    elif report.skipped and call.excinfo is not None:
        value = call.excinfo.value
        record["message"] = str(value.msg if hasattr(value, "msg") else value)
    return record


def record_of(report: pytest.TestReport) -> TestRecord | None:
    """What a test report says for conformance (requirements, failure, transcript)."""
    data = getattr(report, "conformance", None)
    if isinstance(data, str):
        data = json.loads(data)
    if not isinstance(data, dict):
        return None
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
        traffic=data.get("traffic", {}),
        figures=data.get("figures", {}),
        held_requirements=tuple(data.get("held", ())),
        duration_s=report.duration,
    )


def current_result(config: pytest.Config) -> RunResult | None:
    """The run's results model, once the session finished (for report renderers)."""
    return config.stash.get(RESULT, None)
