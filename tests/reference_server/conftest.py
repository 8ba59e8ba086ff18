"""Fixtures: a shared demo server, a factory for servers with other settings, a Redis broker and
a PostgreSQL server (each started once per session, on free ports of 127.0.0.1)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from refserver_support import postgres_bin, postgres_server

from reference_server.demo import demo_config
from reference_server.runner import RedisServer, ServerThread


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


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis broker for the session's clusters. Not skipped when ``redis-server`` is missing:
    RedisServer's error names the package to install (CI installs it)."""
    with RedisServer() as redis:
        yield redis.url


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server for the session; skipped only when PostgreSQL is not installed."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL is not installed (no initdb on PATH nor in /usr/lib/postgresql):"
            " its store is not tested"
        )
    with postgres_server(bin_dir) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database of the session's PostgreSQL server, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield postgres_server_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
