"""The harness's own tests: print the mutation matrix table when it ran (xdist-safe: the rows
travel with each test report as a user property); the longest modules first."""

from __future__ import annotations

import json
from typing import Any

import pytest

_ROWS: list[dict[str, object]] = []

#: Modules whose tests take tens of seconds each (a whole run against a slow server, runs
#: repeated one test at a time): collected first, so that under ``-n 2`` they overlap the many
#: short tests instead of ending the run on one worker while the other waits (their names sort
#: late). The order of the rest, and within each module, is unchanged.
LONGEST_FIRST = ("tests/test_slow_server.py::", "tests/test_scheduler.py::")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith(LONGEST_FIRST))


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
