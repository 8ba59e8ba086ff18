"""One run in several processes (``-n N``, pytest-xdist, one machine): the verdicts of tests
alone, as the in-process scheduler gives them (:mod:`harness.scheduler`).

Two files of the run's lock directory (made by the controller, handed to every worker):

- ``lock``: a reader-writer lock (``flock``). Every conformance test holds it shared; an
  exclusive test (the flood, the restart, the churn: :func:`harness.scheduler.exclusive`) holds
  it alone, so no test of another worker runs beside it. ``turnstile`` gives the writer
  priority: a worker waiting to run an exclusive test holds it, and readers pass it first.
- ``started`` / ``finished``: a byte appended (``O_APPEND``, atomic) when a test starts and when
  it ends. A test that timed out waiting for a frame while another worker's test ran (one was
  running when it started, or one started meanwhile) is not judged by that: it runs again
  holding the lock alone, and that run is its verdict (the server may not take concurrent
  clients).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mark:
    """The counters after a test started: ``started`` (its own start included), ``finished``."""

    started: int
    finished: int


class RunLock:
    """The lock directory of one run (see the module's docstring)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        for name in ("lock", "turnstile", "started", "finished"):
            (self.directory / name).touch(exist_ok=True)

    def _size(self, name: str) -> int:
        return (self.directory / name).stat().st_size

    def _count(self, name: str) -> None:
        fd = os.open(self.directory / name, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b".")
        finally:
            os.close(fd)

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
    def shared(self) -> Iterator[Mark]:
        """Run a test beside other workers' tests; the mark to ask :meth:`crowded` with."""
        with self._held("turnstile", fcntl.LOCK_EX):
            pass  # an exclusive test waiting holds it: no new reader gets ahead of it
        with self._held("lock", fcntl.LOCK_SH):
            mark = self._start()
            try:
                yield mark
            finally:
                self._count("finished")

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        """Run a test with no test of another worker beside it."""
        with self._held("turnstile", fcntl.LOCK_EX), self._held("lock", fcntl.LOCK_EX):
            self._start()
            try:
                yield
            finally:
                self._count("finished")

    def _start(self) -> Mark:
        self._count("started")
        return Mark(self._size("started"), self._size("finished"))

    def crowded(self, mark: Mark) -> bool:
        """Whether another worker's test ran beside the test that started at ``mark``."""
        running_then = mark.started - 1 - mark.finished
        started_since = self._size("started") - mark.started
        return running_then > 0 or started_since > 0
