"""One run in several processes (``-n N``, pytest-xdist, one machine): the tests that run alone
(the flood, the restart, the churn: :func:`harness.scheduler.exclusive`) run alone across the
workers too, as the in-process scheduler runs them.

``lock`` in the run's lock directory (made by the controller, handed to every worker) is a
reader-writer lock (``flock``): every conformance test holds it shared, an exclusive test holds
it alone. ``turnstile`` gives the writer priority: a worker waiting to run an exclusive test
holds it, and readers pass it first.

Unlike the in-process scheduler, a test that times out beside another worker's test is not run
again alone: without the preflight (which workers do not run) a broken server would have every
such wait run out twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class RunLock:
    """The lock directory of one run (see the module's docstring)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        for name in ("lock", "turnstile"):
            (self.directory / name).touch(exist_ok=True)

    @contextlib.contextmanager
    def _held(self, name: str, how: int) -> Iterator[None]:
        fd = os.open(self.directory / name, os.O_RDWR)
        try:
            fcntl.flock(fd, how)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """Run a test beside other workers' tests (never beside an exclusive one)."""
        with self._held("turnstile", fcntl.LOCK_EX):
            pass  # an exclusive test waiting holds it: no new reader gets ahead of it
        with self._held("lock", fcntl.LOCK_SH):
            yield

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        """Run a test with no test of another worker beside it."""
        with self._held("turnstile", fcntl.LOCK_EX), self._held("lock", fcntl.LOCK_EX):
            yield
