"""The bundled reference server goes away between tests (after the preflight): the next test
cannot connect, and the run must stop with that cause."""

from __future__ import annotations

import pytest

from harness.plugin import plugin_of


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    bundled = plugin_of(item.config)._bundled
    if bundled is not None:
        bundled.stop()  # a second stop does nothing
