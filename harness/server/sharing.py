"""One run in several processes (``-n N``, pytest-xdist, one machine).

The controller hands each worker what the run loaded once (:func:`for_workers`): the target,
never its file (a worker runs no provision command and no probe), and the run's lock directory.
With it, the tests that run alone (the flood, the restart, the churn:
:func:`harness.server.scheduler.exclusive`) run alone across the workers too, as the in-process
scheduler runs them.

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
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from harness import target as target_mod
from harness.target import Target

#: The key under which the controller hands the loaded target to pytest-xdist workers.
WORKER_TARGET = "edusphere_target"
#: The key under which it hands them the run's lock directory.
WORKER_LOCKS = "edusphere_locks"


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


def distributed(config: pytest.Config) -> bool:
    """Whether pytest-xdist hands the tests to workers one by one (on the controller or on a
    worker): no preflight and no running ahead there."""
    return hasattr(config, "workerinput") or bool(getattr(config.option, "numprocesses", 0))


def for_workers(target: Target | None, lock_dir: str) -> dict[str, Any]:
    """What the controller puts in each worker's ``workerinput``: the loaded target (a target
    with a restart hook of this process cannot travel), and the run's lock directory."""
    data: dict[str, Any] = {WORKER_LOCKS: lock_dir}
    if target is not None and target.restart_hook is None:
        data[WORKER_TARGET] = target_mod.to_data(target)
    return data


def from_controller(workerinput: Mapping[str, Any]) -> tuple[Target | None, RunLock | None]:
    """On a worker: the target and the lock the controller handed over (None: not handed)."""
    target = workerinput.get(WORKER_TARGET)
    locks = workerinput.get(WORKER_LOCKS)
    return (
        target_mod.from_data(target) if target is not None else None,
        RunLock(locks) if locks is not None else None,
    )
