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


#: Modules that take ten seconds or more in all (whole runs against servers, subprocesses,
#: fresh environments): marked ``slow``. The canary (``tox -e canary``: the newest releases,
#: unpinned) runs the rest, ``-m "not slow"``, in about a minute; ``tox`` runs everything.
SLOW_MODULES = (
    "tests/test_readme.py",
    "tests/test_mutation_matrix.py",
    "tests/test_scheduler.py",
    "tests/test_load_mode.py",
    "tests/test_slow_server.py",
    "tests/test_shared_room.py",
    "tests/test_variants.py",
    "tests/test_asgi_alt.py",
    "tests/test_alt_server.py",
    "tests/test_gate.py",
    "tests/test_tls.py",
    "tests/test_hostile.py",
    "tests/test_headers.py",
    "tests/test_cluster.py",
    "tests/test_install.py",
    "tests/test_habits.py",
    "tests/test_causes.py",
    "tests/clientcheck/test_concurrent.py",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: a test of a module that takes ten seconds or more (SLOW_MODULES)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith(LONGEST_FIRST))
    for item in items:
        if item.nodeid.split("::", 1)[0] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


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
