"""Record when each test held the run's lock, and how (``shared`` / ``alone``), per worker:
the file named by ``EDUSPHERE_LOCK_TIMELINE`` gets a JSON line per test."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator

from harness.sharing import RunLock

_shared, _alone = RunLock.shared, RunLock.alone


def _log(kind: str, start: float) -> None:
    line = {"kind": kind, "start": start, "end": time.time(), "pid": os.getpid()}
    with open(os.environ["EDUSPHERE_LOCK_TIMELINE"], "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


@contextlib.contextmanager
def shared(self: RunLock) -> Iterator[None]:
    with _shared(self):
        start = time.time()
        try:
            yield
        finally:
            _log("shared", start)


@contextlib.contextmanager
def alone(self: RunLock) -> Iterator[None]:
    with _alone(self):
        start = time.time()
        try:
            yield
        finally:
            _log("alone", start)


RunLock.shared = shared  # type: ignore[method-assign]
RunLock.alone = alone  # type: ignore[method-assign]
