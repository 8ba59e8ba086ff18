"""Record when each test held the run's lock, and how (``shared`` / ``alone``), per worker:
the file named by ``EDUSPHERE_LOCK_TIMELINE`` gets a JSON line per test."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator

from harness.server.sharing import RunLock

Held = Callable[[RunLock], contextlib.AbstractContextManager[None]]


def _timed(kind: str, held: Held) -> Held:
    @contextlib.contextmanager
    def timed(self: RunLock) -> Iterator[None]:
        with held(self):
            start = time.time()
            try:
                yield
            finally:
                line = {"kind": kind, "start": start, "end": time.time(), "pid": os.getpid()}
                with open(os.environ["EDUSPHERE_LOCK_TIMELINE"], "a", encoding="utf-8") as out:
                    out.write(json.dumps(line) + "\n")

    return timed


RunLock.shared = _timed("shared", RunLock.shared)  # type: ignore[method-assign]
RunLock.alone = _timed("alone", RunLock.alone)  # type: ignore[method-assign]
