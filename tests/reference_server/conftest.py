"""Fixtures: a shared demo server, and a factory for servers with other settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reference_server.demo import demo_config
from reference_server.runner import ServerThread


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    """A demo server shared by a module; server-side exceptions fail the module's last test."""
    with ServerThread(demo_config(database=":memory:")) as srv:
        yield srv
        srv.raise_errors()


@pytest.fixture
def make_server() -> Iterator[Callable[..., ServerThread]]:
    """Start demo servers with changed settings; each is stopped and checked after the test."""
    started: list[ServerThread] = []

    def start(**changes: Any) -> ServerThread:
        changes.setdefault("database", ":memory:")
        srv = ServerThread(demo_config(**changes)).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
    for srv in started:
        srv.raise_errors()
