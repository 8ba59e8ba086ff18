"""Independent conformance tests, overlapped: ``--concurrency N`` (default 8) at once.

pytest runs items one after another. Most conformance tests spend their time waiting for a
server, and they are independent by construction (each matches only what it created, by nonce and
id: the protocol notes' rule for strangers' traffic). So, once the run starts, the scheduler runs
the async ones ahead on a background thread, on one event loop, at most N at a time. pytest's
loop then walks the items in its order as before, and each item's call only collects the outcome
the scheduler recorded for it. Reports, records, JUnit and the verdict are made exactly as for a
sequential run.

What is not scheduled runs in pytest's loop as before: tests marked ``exclusive`` (they restart
the server, flood the room, leave dead connections in it, measure time or count the server's
connections), which the plugin orders first and the scheduler starts after, so that nothing runs
beside them; then, beside the scheduled ones, the sync property tests (see :func:`schedulable`)
and any test that needs a fixture the scheduler cannot give (only ``chat``,
``conformance_target`` and parameters).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from harness.core.failures import ConformanceFailure, ConformanceTimeout
from harness.core.gate import Gate
from harness.server.calls import run_test, whole_test_bound
from harness.server.chat import Chat
from harness.server.options import requirement_ids
from harness.target import Target

#: Fixtures the scheduler can give a test without pytest's fixture machinery.
GIVEN = frozenset({"chat", "conformance_target"})


@dataclass
class Outcome:
    """What a scheduled test raised (None: it passed), and how long it really ran."""

    error: BaseException | None
    duration_s: float


def starved(error: BaseException | None, crowd: int) -> bool:
    """Whether ``error`` is a frame that never came (a wait that ran out, or silence a
    sentinel proved) while ``crowd`` tests ran at once: not a verdict (the server may not take
    the crowd), the test runs again alone."""
    return isinstance(error, ConformanceFailure) and error.frame_awaited and crowd > 1


def run_alone_note(crowd: str) -> str:
    """The observation a test run again alone reports; ``crowd``: "8 tests ran at once"."""
    return (
        f"timed out while {crowd} (the server may not take concurrent clients): the verdict is"
        " from a run alone"
    )


def exclusive(item: pytest.Item) -> bool:
    return item.get_closest_marker("exclusive") is not None


def schedulable(item: pytest.Item) -> bool:
    """A conformance test the scheduler can run: not exclusive, every fixture it takes given."""
    if not isinstance(item, pytest.Function) or not requirement_ids(item) or exclusive(item):
        return False
    # The sync (property) tests run in pytest's own thread, beside the scheduled ones: CPython
    # 3.11's parser is not safe to use from two threads at once ("AST constructor recursion depth
    # mismatch"), and hypothesis and pytest's failure reports both parse source.
    if not inspect.iscoroutinefunction(item.obj):
        return False
    params = getattr(getattr(item, "callspec", None), "params", {})
    names = set(item._fixtureinfo.argnames)
    return names <= GIVEN | set(params)


class Scheduler:
    """Runs the schedulable items ahead of pytest's loop; :meth:`outcome` hands each one over."""

    def __init__(
        self,
        items: list[pytest.Item],
        *,
        target: Target,
        gate: Gate,
        lanes: int,
        make_chat: Callable[[pytest.Item], Chat],
    ) -> None:
        self.items = [i for i in items if schedulable(i)]
        self.target = target
        self.gate = gate
        self.lanes = max(1, lanes)
        self.make_chat = make_chat
        self.futures: dict[str, concurrent.futures.Future[Outcome]] = {
            item.nodeid: concurrent.futures.Future() for item in self.items
        }
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._stopping = False
        #: Tests run at once: ``lanes``, then one from the first wait for a frame that ran out
        #: while others ran beside it. A server that cannot take the crowd (one that caps a
        #: room's connections, one whose fan-out a dead client wedges) starves every test in
        #: flight; one at a time it is judged in seconds, not a receive_timeout per lane.
        self.limit = self.lanes
        self.running = 0
        self._probing = 0
        #: For each test in flight, the most tests that ran at once while it did.
        self._crowds: dict[str, int] = {}
        #: Tests whose first run timed out in a crowd (how many ran at once): they run again.
        self._crowded: dict[str, int] = {}
        #: When each test first started (a test run again reports both runs' time).
        self._started: dict[str, float] = {}
        #: Changes whenever a test starts or ends (:meth:`crowded_since`).
        self._activity = 0

    def __contains__(self, item: pytest.Item) -> bool:
        return item.nodeid in self.futures

    @property
    def started(self) -> bool:
        return self._thread is not None

    def activity(self) -> int:
        """A count that changes whenever a scheduled test starts or ends."""
        return self._activity

    def crowded_since(self, mark: int) -> bool:
        """Whether a scheduled test ran at some time since :meth:`activity` returned ``mark``."""
        return self.running > 0 or self._activity != mark

    def alone(self, timeout: float = 600.0) -> None:
        """From pytest's thread: start no more tests and wait until none runs (a test of that
        thread runs again alone, as a scheduled test does after a crowded timeout). Afterwards
        the scheduler goes on one test at a time: :meth:`resume`."""
        self.limit = 0
        deadline = time.monotonic() + timeout
        while self.running > 0 and time.monotonic() < deadline:
            time.sleep(0.005)

    def resume(self) -> None:
        self.limit = 1

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="conformance-scheduler", daemon=True)
        self._thread.start()

    def outcome(self, item: pytest.Item) -> Outcome:
        """Block until ``item`` ran; its outcome (every scheduled test gets one)."""
        return self.futures[item.nodeid].result()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel what still runs (Ctrl-C, a harness error ending the run) and wait for the
        thread; each cancelled test closes its connections on its way out."""
        self._stopping = True
        loop, main = self._loop, self._main
        if loop is not None and main is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop finished meanwhile
                loop.call_soon_threadsafe(main.cancel)
        if self._thread is not None:
            self._thread.join(timeout)
        for future in self.futures.values():
            if not future.done():
                future.set_result(Outcome(KeyboardInterrupt("the run was stopped"), 0.0))

    # --- on the scheduler's thread --------------------------------------------------------

    def _run(self) -> None:
        asyncio.run(self._all())

    async def _all(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        tasks: set[asyncio.Task[None]] = set()
        queue = collections.deque(self.items)
        try:
            while queue or tasks:
                if not queue:  # what runs may yet ask to run again
                    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    continue
                while self.running >= self.limit:
                    await asyncio.sleep(0.005)
                if self._stopping:
                    break
                item = queue.popleft()
                self.running += 1
                self._activity += 1
                for name in self._crowds:  # every test in flight now has company
                    self._crowds[name] = max(self._crowds[name], self.running)
                task = asyncio.create_task(self._one(item, queue))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _one(self, item: pytest.Item, queue: collections.deque[pytest.Item]) -> None:
        """Run ``item``; a wait for a frame that ran out while other tests ran beside it is not
        its verdict (the server may not take the crowd): from then on one test at a time, and
        the test runs again, alone, next."""
        assert isinstance(item, pytest.Function)
        future = self.futures[item.nodeid]
        start = self._started.setdefault(item.nodeid, time.monotonic())
        self._crowds[item.nodeid] = self.running
        error: BaseException | None = None
        again = False
        try:
            await self._call(item, self._crowded.get(item.nodeid))
        except asyncio.CancelledError:
            error = KeyboardInterrupt("the run was stopped")
            raise
        except BaseException as exc:
            error = exc
        finally:
            crowd = self._crowds.pop(item.nodeid, 1)
            self.running -= 1
            self._activity += 1
            if starved(error, crowd):
                self.limit = min(self.limit, 1)  # (already, if it probed; 0: paused)
                if item.nodeid not in self._crowded and not self._stopping:
                    self._crowded[item.nodeid] = crowd
                    queue.appendleft(item)
                    again = True
            if not again and not future.done():
                future.set_result(Outcome(error, time.monotonic() - start))

    async def _call(self, item: pytest.Function, crowd: int | None = None) -> None:
        params = getattr(getattr(item, "callspec", None), "params", {})
        chat = self.make_chat(item)
        if crowd is not None:
            chat.observe(requirement_ids(item)[0], run_alone_note(f"{crowd} tests ran at once"))
        given: dict[str, Any] = {"chat": chat, "conformance_target": self.target}
        kwargs = {
            name: params[name] if name in params else given[name]
            for name in item._fixtureinfo.argnames
        }
        await run_test(
            item.obj,
            kwargs,
            chat=chat,
            bound=whole_test_bound(item, self.target),
            requirement=requirement_ids(item)[0],
            gate=self.gate,
            name=item.nodeid,
            quiet=lambda timeout: self._quiet(item.nodeid, timeout),
        )

    async def _quiet(self, name: str, timeout: ConformanceTimeout) -> None:
        """Before the probe after ``timeout`` in test ``name``: if it was a wait for a frame
        that ran out while other tests ran, go on one test at a time from now on (the server may
        not take the crowd), and let what still runs finish first (other tests' connections
        must not be what the probe finds starved)."""
        if not starved(timeout, self._crowds.get(name, 1)):
            return
        self.limit = min(self.limit, 1)  # 0: paused by pytest's thread
        self._probing += 1
        try:
            while self.running > self._probing:
                await asyncio.sleep(0.005)
        finally:
            self._probing -= 1
