"""The bundled reference server goes away between tests (after the preflight): the next test
cannot connect, and the run must stop with that cause."""

from __future__ import annotations

import pytest

from harness.server.plugin import run_of


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    server = run_of(item.config).bundled.process
    if server is not None:
        server.stop()  # a second stop does nothing
