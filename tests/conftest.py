"""The harness's own tests: print the mutation matrix table when it ran (xdist-safe: the rows
travel with each test report as a user property)."""

from __future__ import annotations

import json
from typing import Any

import pytest

_ROWS: list[dict[str, object]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
        if key == "mutation" and report.when == "call":
            _ROWS.append(json.loads(str(value)))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from tests.mutation import table

    if _ROWS:
        terminalreporter.section("mutation matrix")
        for line in table(_ROWS):
            terminalreporter.write_line(line)
