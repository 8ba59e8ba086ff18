"""The load mode's master: what each worker said last, and the run's phases with their
deadlines. Imported to run only (through :mod:`harness.load.runtime`, which patches the process
for gevent first); the suites never import it."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import harness
from harness.core.tally import accepted_counts
from harness.load.runtime import (
    EXPECT,
    GO,
    HELLO,
    PLAN,
    PROGRESS,
    RESULT,
    SEND_STALL,
    SENT,
    Plan,
)
from harness.target import from_data

with warnings.catch_warnings():  # after the runtime: Locust patched the process for gevent
    warnings.simplefilter("ignore")
    import gevent
    from locust.runners import MasterRunner, Runner

__all__ = ["Master"]


@dataclass
class Master:
    """The master's side: what each worker said last, and the run's phases with their
    deadlines (:meth:`drive`). Without workers, the same process is master and worker."""

    runner: Runner
    users: int
    workers: int
    plan: Plan
    spawn_rate: float
    join_timeout: float
    progress: Callable[[str], None]
    #: Why local workers are gone (each exited): the run does not wait for them.
    gone: Callable[[], list[str]] = list
    #: Each worker's hello: the harness version it runs.
    hello: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Each worker's latest counts (WorkerSide.counts).
    counts: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    phase: str = "join"
    origin: float = 0.0
    started: float = field(default_factory=time.monotonic)
    #: Why the run stopped before a verdict (None: it ran to its end).
    stopped: str | None = None
    notes: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    _last_line: float = 0.0

    def register(self) -> None:
        r = self.runner
        r.register_message(HELLO, lambda environment, msg, **_: self._put(self.hello, msg))
        r.register_message(PROGRESS, lambda environment, msg, **_: self._put(self.counts, msg))
        r.register_message(SENT, lambda environment, msg, **_: self._put(self.sent, msg))
        r.register_message(RESULT, lambda environment, msg, **_: self._put(self.results, msg))

    @staticmethod
    def _put(store: dict[str, Any], msg: Any) -> None:
        store[msg.node_id] = msg.data

    @property
    def distributed(self) -> bool:
        return isinstance(self.runner, MasterRunner)

    @property
    def expected_workers(self) -> int:
        return self.workers if self.distributed else 1

    def total(self, key: str) -> int:
        """One of the workers' counts, added up."""
        return sum(int(c.get(key, 0)) for c in self.counts.values())

    def wait(self, done: Callable[[], bool], seconds: float) -> bool:
        """Until ``done()`` or ``seconds`` pass, with a progress line every few seconds."""
        deadline = time.monotonic() + seconds
        while not done():
            if time.monotonic() > deadline:
                return False
            self._progress()
            gevent.sleep(0.05)
        return True

    def refusals(self) -> dict[str, int]:
        """Connections not opened, by why, over every worker."""
        refusals: dict[str, int] = {}
        for counts in self.counts.values():
            for why, n in counts.get("refusals", {}).items():
                refusals[why] = refusals.get(why, 0) + int(n)
        return refusals

    def outcome(self) -> dict[str, Any]:
        """What the master gathered, as plain data for :func:`harness.render.load_report.build`."""
        results = list(self.results.values())
        return {
            "stopped": self.stopped,
            "notes": list(self.notes),
            "phases": dict(self.phases),
            "width": self.plan.width,
            "workers": [
                {k: v for k, v in r.items() if k not in ("connections", "samples", "timeline")}
                for r in results
            ],
            "refusals": self.refusals(),
            "connected": self.total("connected"),
            "connections": [c for r in results for c in r["connections"]],
            "samples": [r["samples"] for r in results],
            "timeline": [r["timeline"] for r in results],
        }

    def _progress(self) -> None:
        now = time.monotonic()
        if now - self._last_line < 3.0:
            return
        self._last_line = now
        connected, refused = self.total("connected"), self.total("refused")
        line = (
            f"{self.phase} {now - self.started:,.0f} s: {connected:,}/{self.users:,} "
            "connections open"
            + (f", {refused:,} refused" if refused else "")
            + f"; {self.total('sent'):,} sent, {self.total('delivered'):,} delivered"
        )
        self.progress(line)

    def _mark(self, phase: str) -> None:
        """The current phase ends, ``phase`` begins (and says so at once)."""
        self.phases[self.phase] = round(time.monotonic() - self.started, 2)
        self.phase = phase
        self._last_line = 0.0
        self._progress()

    def drive(self) -> None:
        """The run's phases, each bounded; ``stopped`` says why one could not finish."""
        plan, runner = self.plan, self.runner
        target = from_data(plan.target)
        workers = self.expected_workers
        if self.distributed:
            joined = self.wait(
                lambda: len(self.hello) >= workers or bool(self.gone()), self.join_timeout
            )
            if self.gone():
                self.stopped = "; ".join(self.gone())
                return
            if not joined:
                self.stopped = (
                    f"{len(self.hello)} of {workers} workers joined within "
                    f"{self.join_timeout:.0f} s"
                )
                return
            others = sorted(
                {str(h.get("version")) for h in self.hello.values()} - {harness.__version__}
            )
            if others:
                self.stopped = (
                    f"a worker runs edusphere-conformance {', '.join(others)}, the master "
                    f"{harness.__version__}: install the same version on every machine"
                )
                return
        runner.send_message(PLAN, plan.as_data())
        self._mark("connect")
        runner.start(self.users, self.spawn_rate)
        bound = self.users / self.spawn_rate + target.connect_timeout + 10.0

        def settled() -> bool:
            told = self.total("connected") + self.total("refused")
            return len(self.counts) >= workers and told >= self.users

        in_time = self.wait(settled, bound)
        connected = self.total("connected")
        refusals = self.refusals()
        why = "; ".join(f"{n:,} x {w}" for w, n in sorted(refusals.items(), key=lambda i: -i[1]))
        if connected == 0:
            self.stopped = "no connection could be opened" + (f": {why}" if why else "")
            return
        if refusals:
            self.notes.append(f"{self.users - connected:,} connections were not opened: {why}")
        elif not in_time:
            self.notes.append(
                f"only {connected:,} of {self.users:,} connections opened within {bound:.0f} s"
            )
        self.origin = time.time()
        self._mark("send")
        runner.send_message(GO, {"origin": self.origin})
        stall = max(SEND_STALL, target.receive_timeout)
        self.wait(
            lambda: len(self.sent) >= workers - len(self.gone()), plan.duration + stall + 10.0
        )
        if len(self.sent) < workers:
            self.notes.append(
                f"{workers - len(self.sent)} workers did not finish sending"
                + (f" ({'; '.join(self.gone())})" if self.gone() else " in time")
            )
        senders = [s for part in self.sent.values() for s in part["senders"]]
        expect = accepted_counts(senders)
        self._mark("drain")
        runner.send_message(EXPECT, {"expect": sorted(expect.items())})
        self.wait(
            lambda: len(self.results) >= workers - len(self.gone()), plan.grace + stall + 10.0
        )
        if len(self.results) < workers:
            self.stopped = f"{workers - len(self.results)} of {workers} workers sent no result" + (
                f" ({'; '.join(self.gone())})" if self.gone() else ""
            )
        self._mark("done")

    def stop(self) -> None:
        """End the run from here, once every result is in (or its deadline passed): quit the
        users and the workers. Not Locust's ``stop`` first: a master's stop waits up to 60 s
        for the workers' user counts to reach zero, and the run's data is already here (a fixed
        run time would have given the workers' last reports half a second)."""
        self.runner.quit()
