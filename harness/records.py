"""From pytest's outcomes to the core's test records, and where the run's result is kept.

The plugin builds a record when a test's report is made (on the process that ran it) and rides
it on the report to the controller (xdist serialises it); renderers read records and the result
through the functions here, never through the plugin.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness import redact
from harness.client import Chat
from harness.core.failures import ConformanceFailure, ResourceLimit
from harness.core.results import RunResult, TestRecord

#: The chat session of a test (set by the ``chat`` fixture).
CHAT = pytest.StashKey[Chat]()
#: The run's results model, once the session finished (on the controller).
RESULT = pytest.StashKey[RunResult]()


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
