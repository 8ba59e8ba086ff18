"""The load mode on Locust: the users, a worker's bookkeeping and the master's phases.

Importing this module imports Locust, which monkey-patches the process for gevent: only the
``load`` command imports it, never the suites. Users speak WebSocket through websockets' sync
client (it works on gevent; an asyncio loop per user does not).

A run goes through phases the master drives with Locust's registered messages, so that every
connection is judged on the same messages however many workers and machines carry them:

1. **join**: the workers say ``hello`` (their handlers are registered); the master sends them
   the ``plan`` (the target, sizes, the run's tag).
2. **connect**: the master spawns the users; each opens its connection and starts reading;
   each worker reports how many are open or were refused (``progress``, every tenth of a
   second to a quarter of a second, all along the run).
3. **send**: once every user has connected (or was refused), the master says ``go``; every
   connection sends ``rate`` messages a second for ``duration`` seconds, reading all along;
   each worker reports its senders' counts (``sent``) once they are done.
4. **drain**: the master tells every worker what each open connection must have received
   (``expect``: per sender, its accepted messages); each connection reads until it has them
   all, or nothing arrived for ``receive_timeout``, or the grace is over; each worker sends
   its connections' summaries, latency samples and timeline (``result``).
5. The master judges (:func:`harness.core.tally.judge`), then quits the workers itself (a
   fixed run time would give their last reports half a second).

Every wait has a deadline: a worker that vanishes, a server that stops answering, a send that
blocks: the run still ends, and what was measured is still written.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import gevent
    import gevent.event
    from locust import User, constant, task
    from locust.env import Environment
    from locust.runners import Runner


import harness
from harness import redact
from harness.core.frames import now_rfc3339
from harness.core.session import Refusal
from harness.core.tally import (
    SENDERS_PER_WORKER,
    Codec,
    Reservoir,
    Tally,
    Timeline,
    sender_name,
)
from harness.target import Target, from_data
from harness.tokens import Minter
from harness.wire.closed import Closed
from harness.wire.sync import SyncSocket, open_connection

__all__ = [
    "ChatUser",
    "Plan",
    "WorkerSide",
    "build_environment",
    "register_worker",
    "run_worker",
]

HELLO, PLAN, GO, SENT, EXPECT, RESULT, PROGRESS = (
    "es-hello",
    "es-plan",
    "es-go",
    "es-sent",
    "es-expect",
    "es-result",
    "es-progress",
)
#: How often a worker reports its counts (seconds).
REPORT_EVERY = 1.0
#: A send that has not gone out after this long: the server stopped reading; the connection
#: is dropped (seconds, at least; receive_timeout when longer).
SEND_STALL = 5.0
#: Spreads the connections' first sends over the first interval.
GOLDEN = 0.6180339887498949
#: Seconds a reader waits for a frame before it looks at the clock again.
POLL = 0.25
PARTICIPANTS = ("host", "member", "member2")

logger = logging.getLogger("harness.load")


@dataclass(frozen=True)
class Plan:
    """What every worker needs to run its share: plain data, sent in the ``plan`` message."""

    target: dict[str, Any]
    users: int
    rate: float
    duration: float
    grace: float
    tag: str
    body_length: int
    width: float

    @property
    def messages(self) -> int:
        """Messages each connection sends."""
        return max(1, round(self.rate * self.duration))

    def plausible(self, sender: int, seq: int) -> bool:
        """Whether a body names a sender and a number this run can have sent: a server that
        makes up others (however many) is counted, never remembered."""
        return seq < self.messages and sender % SENDERS_PER_WORKER < self.users

    def as_data(self) -> dict[str, Any]:
        return asdict(self)


class WorkerSide:
    """One worker process's share of the run (also the single process's, without workers)."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.plan: Plan | None = None
        self.target: Target | None = None
        self.codec: Codec | None = None
        self.minter: Minter | None = None
        self.participants: list[str] = []
        self.tallies: list[Tally] = []
        self.senders: list[dict[str, Any]] = []
        self.go = gevent.event.Event()
        self.expected = gevent.event.Event()
        self.origin = 0.0
        self.expect: dict[int, int] = {}
        self.drain_until = 0.0
        self.samples = Reservoir()
        self.timeline = Timeline(0.0)
        self.next_index = 0
        self.connected = 0
        self.refused = 0
        self.refusals: dict[str, int] = {}
        self.sending = 0
        self.reading = 0
        self.sent = 0
        self.delivered = 0
        self.reported_sent = False
        self.reported_result = False
        #: A worker process ends itself if the master never ends the run (it vanished).
        self.watchdog = False

    @property
    def runner(self) -> Runner:
        runner = self.environment.runner
        assert runner is not None
        return runner

    @property
    def worker(self) -> int:
        return max(0, int(getattr(self.runner, "worker_index", 0)))

    # messages from the master ----------------------------------------------------------

    def on_plan(self, environment: Environment, msg: Any, **_: Any) -> None:
        data = msg.data
        self.plan = Plan(**data)
        target = self.target = from_data(data["target"])
        self.codec = Codec(data["tag"], data["body_length"])
        self.minter = Minter(target.auth)
        self.participants = [r for r in PARTICIPANTS if r in target.accounts]
        self.samples = Reservoir(seed=self.worker)
        self.runner.greenlet.spawn(self._report_loop)
        if self.watchdog:
            bound = target.connect_timeout + 3 * (self.plan.duration + self.plan.grace) + 120
            self.runner.greenlet.spawn(self._watch, bound)

    def _watch(self, seconds: float) -> None:
        gevent.sleep(seconds)
        print(
            f"edusphere-conformance load: error: worker {self.worker + 1}: the master did not "
            f"end the run within {seconds:.0f} s; leaving",
            file=sys.stderr,
        )
        os._exit(2)

    def on_go(self, environment: Environment, msg: Any, **_: Any) -> None:
        self.origin = float(msg.data["origin"])
        assert self.plan is not None
        self.timeline = Timeline(self.origin, self.plan.width, seed=self.worker)
        self.go.set()

    def on_expect(self, environment: Environment, msg: Any, **_: Any) -> None:
        assert self.plan is not None
        self.expect = {int(s): int(n) for s, n in msg.data["expect"]}
        self.drain_until = time.monotonic() + self.plan.grace
        for tally in self.tallies:
            tally.expect(self.expect)
        self.expected.set()

    # a user's life ---------------------------------------------------------------------

    def live(self) -> None:
        """One user: connect, read all along, send when told, drain, report. Never raises."""
        ws: SyncSocket | None = None
        try:
            opened = self._connect()
            if opened is not None:
                ws, tally = opened
                self._run(ws, tally)
        except Exception as exc:  # a user's bug must not end the run silently
            logger.error("a load user failed: %s", redact.redact(repr(exc)))
        finally:
            if ws is not None:
                ws.close_socket()

    def _connect(self) -> tuple[SyncSocket, Tally] | None:
        assert self.target is not None and self.minter is not None
        target = self.target
        index = self.next_index
        self.next_index += 1
        sender = self.worker * SENDERS_PER_WORKER + index
        role = self.participants[(self.worker + index) % len(self.participants)]
        node = (self.worker + index) % len(target.endpoints)
        tally = Tally(
            name=sender_name(sender),
            sender=sender,
            account=role,
            where=target.node_label(node),
            worker=self.worker,
        )
        token = self.minter.valid(target.accounts[role])
        try:
            ws = open_connection(target, node, token)
        except TimeoutError:
            self._refused(f"no handshake answer within {target.connect_timeout:.1f} s")
            return None
        except OSError as exc:
            self._refused(redact.redact(str(exc) or type(exc).__name__))
            return None
        if isinstance(ws, Refusal):
            self._refused(f"HTTP {ws.status}" if ws.status else redact.redact(ws.detail))
            return None
        self.tallies.append(tally)
        if self.expected.is_set():
            tally.expect(self.expect)
        self.connected += 1
        return ws, tally

    def _refused(self, why: str) -> None:
        self.refused += 1
        self.refusals[why] = self.refusals.get(why, 0) + 1

    def _run(self, ws: SyncSocket, tally: Tally) -> None:
        self.reading += 1
        reader = gevent.spawn(self._read, ws, tally)
        self.go.wait()
        self.sending += 1
        try:
            self._send(ws, tally)
        finally:
            self.sending -= 1
            self.senders.append(
                {
                    "sender": tally.sender,
                    "sent": tally.sent,
                    "errors": tally.errors,
                    "open": tally.open,
                }
            )
        reader.join()

    def _send(self, ws: SyncSocket, tally: Tally) -> None:
        assert self.plan is not None and self.codec is not None and self.target is not None
        plan = self.plan
        count = plan.messages
        gap = 1 / plan.rate
        assert tally.sender is not None
        # Each connection starts at its own point of the first interval (golden-ratio spread):
        # the room gets a steady rate, not every connection's message in the same instant.
        start = time.monotonic() + (tally.sender * GOLDEN % 1.0) * min(gap, 1.0)
        last = start + plan.duration + 1.0  # late sends stop here: never far past the duration
        stall = max(SEND_STALL, self.target.receive_timeout)
        for seq in range(count):
            delay = start + seq * gap - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
            if not tally.open or time.monotonic() > last:
                return
            at = time.time()
            body = self.codec.body(tally.sender, seq, int(at * 1_000_000))
            text = json.dumps({"type": "text", "message": body, "timestamp": now_rfc3339()})
            timer = gevent.Timeout(stall)
            timer.start()
            try:
                ws.send(text)
            except gevent.Timeout as exc:
                if exc is not timer:
                    raise
                tally.closed = (None, f"a send blocked for {stall:.0f} s")
                ws.close_socket()
                return
            except Closed as exc:
                if tally.closed is None:
                    tally.closed = (exc.code, exc.reason)
                return
            finally:
                timer.close()
            tally.sent += 1
            self.sent += 1
            self.timeline.sent(at)

    def _read(self, ws: SyncSocket, tally: Tally) -> None:
        assert self.target is not None
        quiet = self.target.receive_timeout
        last = time.monotonic()
        try:
            while True:
                try:
                    data = ws.recv(timeout=POLL)
                except TimeoutError:
                    now = time.monotonic()
                    if self.expected.is_set() and (
                        tally.outstanding == 0 or now - last > quiet or now > self.drain_until
                    ):
                        return
                    continue
                except Closed as exc:
                    if tally.closed is None:
                        tally.closed = (exc.code, exc.reason)
                    return
                now = time.monotonic()
                if self._take(tally, data, time.time()):
                    last = now  # other frames (a flood of them) do not keep the drain going
                if tally.outstanding == 0 or (
                    self.expected.is_set() and (now - last > quiet or now > self.drain_until)
                ):
                    return
        finally:
            self.reading -= 1

    def _take(self, tally: Tally, data: str | bytes, at: float) -> bool:
        """Count one frame; True when it was an event of this run."""
        assert self.codec is not None
        try:
            frame = json.loads(data)
        except ValueError:
            tally.others += 1
            return False
        if not isinstance(frame, dict):
            tally.others += 1
            return False
        if "error" in frame and frame.get("type") != "chat_message":
            tally.errors += 1
            if tally.first_error is None:
                tally.first_error = redact.redact(str(frame["error"]))[:200]
            return False
        parsed = self.codec.parse(frame.get("body")) if frame.get("action") == "new" else None
        if parsed is None:
            tally.others += 1
            return False
        sender, seq, sent_us = parsed
        assert self.plan is not None
        if not self.plan.plausible(sender, seq):
            tally.others += 1
            return False
        if tally.arrive(sender, seq):
            latency = int(at * 1_000_000) - sent_us
            self.samples.add(latency)
            self.timeline.delivered(at, latency)
            self.delivered += 1
        return True

    # reports to the master -------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "connected": self.connected,
            "refused": self.refused,
            "refusals": self.refusals,
            "sending": self.sending,
            "reading": self.reading,
            "sent": self.sent,
            "delivered": self.delivered,
        }

    def _report_loop(self) -> None:
        while not self.reported_result:
            self.runner.send_message(PROGRESS, self.counts())
            done_sending = self.sending == 0 and len(self.senders) >= self.connected
            if self.go.is_set() and done_sending and not self.reported_sent:
                self.reported_sent = True
                self.runner.send_message(SENT, {"senders": self.senders})
            elif self.go.is_set() and self.expected.is_set() and self.reading == 0:
                self.reported_result = True
                self.runner.send_message(RESULT, self.result())
                return
            gevent.sleep(0.1 if self.go.is_set() else REPORT_EVERY / 4)

    def result(self) -> dict[str, Any]:
        return {
            **self.counts(),
            "connections": [t.summary() for t in self.tallies],
            "samples": self.samples.as_data(),
            "timeline": self.timeline.as_data(),
        }


class ChatUser(User):
    """A participant of the room: one connection that sends and reads (:meth:`WorkerSide.live`)."""

    wait_time = constant(3600)
    side: WorkerSide | None = None

    @task
    def life(self) -> None:
        side = ChatUser.side
        if side is not None:
            side.live()
        while True:  # done: stay out of the way until the runner stops the users
            gevent.sleep(3600)


def build_environment() -> tuple[Environment, WorkerSide]:
    """A Locust environment with the load mode's user, and this process's worker side."""
    for name in ("locust", "locust.runners", "locust.main", "websockets"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    environment = Environment(user_classes=[ChatUser])
    side = WorkerSide(environment)
    ChatUser.side = side
    return environment, side


def register_worker(runner: Runner, side: WorkerSide) -> None:
    runner.register_message(PLAN, side.on_plan)
    runner.register_message(GO, side.on_go)
    runner.register_message(EXPECT, side.on_expect)


def run_worker(master_host: str, master_port: int, join_timeout: float) -> int:
    """A worker process: join the master, run its share of the users, leave when it quits."""
    environment, side = build_environment()
    side.watchdog = True
    try:
        with gevent.Timeout(join_timeout):
            runner = environment.create_worker_runner(master_host, master_port)
    except (gevent.Timeout, ConnectionError, OSError):
        print(
            f"edusphere-conformance load: error: no master answered at {master_host}:"
            f"{master_port} within {join_timeout:.0f} s",
            file=sys.stderr,
        )
        return 2
    register_worker(runner, side)
    runner.send_message(HELLO, {"version": harness.__version__})
    runner.greenlet.join()
    return 0
