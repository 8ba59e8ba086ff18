"""Delivery under load (protocol notes: Deployed reality): a concurrent burst reaches every
connection exactly once and in each sender's order; a reader that lags gets everything or a
close frame. The sizes come from the target's ``[load]`` table; the verdicts from
:mod:`harness.core.delivery`, which judges the record without I/O.

Frames are read straight off the sockets here, not through the per-frame checks of the other
suites: a burst is thousands of frames per connection, and what is judged is which of them
arrived when, not their schema (EVT-* judge that). The transcript keeps the first frames of
each connection and a line per connection for the rest.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from websockets.exceptions import ConnectionClosed

from harness.client import Chat, Conn, now_rfc3339
from harness.core import spec
from harness.core.delivery import Judgement, Receiver, Sent, judge_burst, judge_lag
from harness.core.failures import (
    ConformanceFailure,
    ConformanceTimeout,
    NotTested,
    ResourceLimit,
)
from harness.target import MIN_BODY

requirement = pytest.mark.requirement

ROLES = ("member", "member2", "host")
#: Frames of each connection the transcript shows one by one.
LOGGED = 3
#: The lagging reader's socket receive buffer (bytes): the kernel then holds next to nothing
#: for it, and the server's own buffers fill.
LAG_RECEIVE_BUFFER = 4096
#: Connections flooding the room while the reader lags (none reads what it is sent).
LAG_SENDERS = 8
#: A character of three UTF-8 bytes (one UTF-16 unit): few frames carry many bytes, whatever
#: unit the server counts the length limit in.
WIDE = "\u20ac"
#: The JSON around a body in a new event, roughly (bytes).
EVENT_OVERHEAD = 260


@dataclass
class Burst:
    """The messages of one load test: bodies ``<tag> SSS QQQQQQ <padding>``."""

    tag: str
    length: int
    fill: str = "x"
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.pattern = re.compile(re.escape(self.tag) + r" (\d{3}) (\d{6}) ")

    def body(self, sender: int, seq: int) -> str:
        head = f"{self.tag} {sender:03d} {seq:06d} "
        return head + self.fill * max(0, self.length - len(head))

    def key(self, body: object) -> tuple[int, int] | None:
        if not isinstance(body, str):
            return None
        match = self.pattern.match(body)
        return None if match is None else (int(match[1]), int(match[2]))


class Collector:
    """Reads one connection during a load test: the burst's events (and errors, and its close)
    into a :class:`Receiver`; other frames (strangers' traffic) are counted, not judged."""

    def __init__(self, chat: Chat, conn: Conn, burst: Burst, sender: int | None = None) -> None:
        self.chat = chat
        self.conn = conn
        self.burst = burst
        self.record = Receiver(conn.name, chat.target.node_label(conn.node), sender)
        self.last = time.monotonic()
        self.frames = 0
        self.others = 0
        self.wanted: set[tuple[int, int]] | None = None
        self.until: Callable[[tuple[int, int]], bool] | None = None
        self.done = asyncio.Event()
        #: More frames than this, and the connection is flooding: the harness stops reading.
        self.limit = 4 * chat.target.load.total + chat.target.max_buffered_frames
        self.flooded = False

    async def run(self) -> None:
        self.last = time.monotonic()
        try:
            await self._read()
        finally:
            self.done.set()
            self._summary()

    async def _read(self) -> None:
        transcript = self.chat.transcript
        ws = self.conn.ws
        while not self.done.is_set():
            try:
                data = await ws.recv()
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                self.record.closed = (code, exc.rcvd.reason if exc.rcvd else "")
                self.conn.closed = self.record.closed
                how = f"close {code}" if code is not None else "connection lost (no close frame)"
                transcript.log(self.conn.name, "==", how)
                return
            now = time.monotonic()
            self.last = self.chat.last_frame_at = now
            self.frames += 1
            self.chat.traffic.received += 1
            if self.frames <= LOGGED:
                transcript.log(self.conn.name, "<-", data if isinstance(data, str) else "binary")
            if self.frames > self.limit:
                self.flooded = True
                transcript.log(
                    self.conn.name, "==", f"over {self.limit:,} frames: the harness stops reading"
                )
                return
            self._take(data, now)

    def _take(self, data: str | bytes, now: float) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            self.others += 1
            return
        if not isinstance(frame, dict):
            self.others += 1
            return
        if "error" in frame and frame.get("type") != "chat_message":
            self.record.errors.append(str(frame["error"]))
            if len(self.record.errors) == 1 and self.frames > LOGGED:
                self.chat.transcript.log(
                    self.conn.name, "<-", data if isinstance(data, str) else ""
                )
            return
        self.chat.traffic.chat_frames += 1
        key = self.burst.key(frame.get("body")) if frame.get("action") == "new" else None
        if key is None:
            self.others += 1
            return
        self.record.arrivals.append((key[0], key[1], now))
        if self.wanted is not None:
            self.wanted.discard(key)
            if not self.wanted:
                self.done.set()
        if self.until is not None and self.until(key):
            self.done.set()

    def _summary(self) -> None:
        count = len(self.record.arrivals)
        line = f"received {count:,} events of the test"
        if self.record.errors:
            line += f", {len(self.record.errors):,} error frames"
        if self.others:
            line += f", {self.others:,} other frames (not the test's)"
        self.chat.transcript.log(self.conn.name, "==", line + " (not logged one by one)")

    def stop(self) -> None:
        self.done.set()


async def _send_all(
    chat: Chat,
    conn: Conn,
    burst: Burst,
    index: int,
    sent: list[Sent],
    count: int,
    rate: float | None = None,
) -> None:
    """Send sender ``index``'s ``count`` messages: as fast as it can, or ``rate`` a second."""
    gap = 1 / rate if rate else 0.0
    start = time.monotonic()
    for seq in range(count):
        if gap:
            delay = start + seq * gap - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        text = json.dumps(
            {"type": "text", "message": burst.body(index, seq), "timestamp": now_rfc3339()},
            ensure_ascii=False,
        )
        if seq == 0:
            chat.transcript.log(conn.name, "->", text)
        sent.append(Sent(index, seq, time.monotonic()))
        try:
            await conn.ws.send(text)
        except ConnectionClosed:
            return  # its collector records the close
        chat.traffic.sent += 1
    pace = f"at {rate:g} a second" if rate else "in a burst"
    size = len(burst.body(index, 0).encode())
    chat.transcript.log(conn.name, "==", f"sent {count:,} messages of {size:,} bytes {pace}")


def _grace(chat: Chat, judged: list[float]) -> float:
    """How long every connection must stay silent before the test stops waiting: a few round
    trips and a few of the slowest deliveries seen, at most ``receive_timeout``."""
    round_trip = chat.gate.round_trip_s if chat.gate is not None else 0.0
    slowest = max(judged, default=0.0)
    return min(chat.target.receive_timeout, max(0.5, 10 * round_trip, 3 * slowest))


async def _quiet(
    chat: Chat, collectors: list[Collector], sent: list[Sent], *, patient: bool = True
) -> None:
    """Wait until the burst is over: every collector has every message, or every connection
    has been silent for the grace. ``patient``: ``receive_timeout`` while some message that no
    error explains has reached no connection at all (it may still be coming, and would be
    judged lost)."""
    sent_at = {(s.sender, s.seq): s.at for s in sent}
    seen: set[tuple[int, int]] = set()
    counted = [0] * len(collectors)
    while not all(c.done.is_set() for c in collectors):
        await asyncio.sleep(0.05)
        now = time.monotonic()
        silent = min((now - c.last for c in collectors if not c.done.is_set()), default=0.0)
        for i, c in enumerate(collectors):  # only what arrived since the last look
            arrivals = c.record.arrivals
            seen.update((s, q) for s, q, _ in arrivals[counted[i] :])
            counted[i] = len(arrivals)
        delays = [
            at - sent_at[(s, q)]
            for c in collectors[:3]
            for s, q, at in c.record.arrivals[-50:]
            if (s, q) in sent_at
        ]
        refused = sum(len(c.record.errors) for c in collectors)
        unexplained = patient and len(sent_at) - len(seen) - refused > 0
        bound = chat.target.receive_timeout if unexplained else _grace(chat, delays)
        if silent >= bound:
            return


def _stands_on_the_basics(chat: Chat) -> None:
    """A load test stands on what the preflight tries: a sender's own events (SEND-002), the
    room's (SEND-003), an account's second connection (three accounts, many connections each:
    BCAST-001) and, with ``nodes``, delivery across nodes (NODE-001). One that failed blocks
    the test at once, instead of a burst lost for a reason already known."""
    for basic in ("SEND-002", "SEND-003", "BCAST-001", "NODE-001"):
        chat.gate_check(basic)


def _room_for_the_tag(length: int) -> None:
    if length < MIN_BODY:
        raise NotTested(
            f"a message of {length} characters (limits.max_length) cannot carry the test's tag "
            f"({MIN_BODY} characters)"
        )


def _bounded(collectors: list[Collector]) -> None:
    """A connection that received more frames than the test can have caused fails the test
    with what was measured (a flooding server; README, "Bounded resources")."""
    for c in collectors:
        if c.flooded:
            raise ResourceLimit(
                f"at most {c.limit:,} frames on {c.conn.name} (4 per message of the test, plus "
                "limits.max_buffered_frames)",
                f"{c.frames:,} frames, {len(c.record.arrivals):,} of them the test's events",
            )


def _fail(judgement: Judgement, failed: str, expected: str, held: tuple[str, ...]) -> None:
    lines = judgement.failures[failed]
    actual = "; ".join(lines[:3]) + (f"; and {len(lines) - 3} more" if len(lines) > 3 else "")
    also = tuple(r for r in judgement.failures if r != failed)
    raise ConformanceFailure(failed, expected, actual, also=also, held=held)


@requirement("LOAD-001", "LOAD-003", "LOAD-004")
@pytest.mark.exclusive  # a burst beside other tests would judge their traffic's effect too
@pytest.mark.test_timeout(60, per_receive=12)
async def test_concurrent_burst_reaches_every_connection_once(chat: Chat) -> None:
    load = chat.target.load
    _room_for_the_tag(load.body_length)
    _stands_on_the_basics(chat)
    senders = [
        await chat.connect(ROLES[i % len(ROLES)], label="sender") for i in range(load.senders)
    ]
    readers = [
        await chat.connect(ROLES[(i + 1) % len(ROLES)], label="receiver")
        for i in range(load.receivers)
    ]
    burst = Burst(chat.nonce("load"), load.body_length)
    collectors = [Collector(chat, conn, burst, i) for i, conn in enumerate(senders)]
    collectors += [Collector(chat, conn, burst) for conn in readers]
    wanted = {(s, q) for s in range(load.senders) for q in range(load.messages)}
    for collector in collectors:
        collector.wanted = set(wanted)
    reading = [asyncio.ensure_future(c.run()) for c in collectors]
    sent: list[Sent] = []
    try:
        await asyncio.gather(
            *(
                _send_all(chat, s, burst, i, sent, load.messages, load.rate)
                for i, s in enumerate(senders)
            )
        )
        await _quiet(chat, collectors, sent)
    finally:
        for collector in collectors:
            collector.stop()
        for task in reading:
            task.cancel()
        await asyncio.gather(*reading, return_exceptions=True)
    _bounded(collectors)
    judgement = judge_burst(sent, [c.record for c in collectors])
    chat.observe("LOAD-004", judgement.summary)
    for note in judgement.notes:
        chat.observe("LOAD-001", note)
    chat.figures["LOAD-004"] = judgement.figures
    conns = len(collectors)
    if "LOAD-001" in judgement.failures:
        _fail(
            judgement,
            "LOAD-001",
            f"each of the {judgement.figures['accepted']:,} accepted messages' events on each "
            f"of the {conns} connections that stay open, once",
            ("LOAD-004",),
        )
    if "LOAD-003" in judgement.failures:
        _fail(
            judgement,
            "LOAD-003",
            "each sender's events on every connection in the order sent",
            ("LOAD-001", "LOAD-004"),
        )


@requirement("LOAD-002")
@pytest.mark.exclusive  # floods the room: every connection of every other test would carry it
@pytest.mark.test_timeout(60, per_receive=12)
async def test_lagging_reader_gets_every_event_or_a_close(chat: Chat) -> None:
    # The flood goes through LAG_SENDERS connections at once, so that a server handling each
    # connection's frames one at a time, slowly, still sends it in time. They read none of it
    # (as RECON-002's senders): a watcher that reads everything says what the server accepted
    # and when the flood has left it.
    chat.needs("network")  # a reader that stops: TCP backpressure
    load = chat.target.load
    limit = min(chat.target.max_length, spec.MAX_LENGTH)
    _room_for_the_tag(limit)
    _stands_on_the_basics(chat)
    reader = await chat.connect("member2", label="lagging", receive_buffer=LAG_RECEIVE_BUFFER)
    watcher = await chat.connect("host", label="watcher")
    senders = [await chat.connect(ROLES[i % 2], label="flood") for i in range(LAG_SENDERS)]
    burst = Burst(chat.nonce("lag"), limit, fill=WIDE)
    per_event = len(burst.body(0, 0).encode()) + EVENT_OVERHEAD
    share = math.ceil(max(LAG_SENDERS, math.ceil(load.lag_bytes / per_event)) / LAG_SENDERS)
    lagging = Collector(chat, reader, burst)
    seen = Collector(chat, watcher, burst)
    seen.wanted = {(i, q) for i in range(LAG_SENDERS) for q in range(share)}
    reader.stop_reading("lags")
    stopped = time.monotonic()
    reading = [asyncio.ensure_future(seen.run())]
    sent: list[Sent] = []

    lagged = 0.0
    try:
        await asyncio.gather(
            *(_send_all(chat, conn, burst, i, sent, share) for i, conn in enumerate(senders))
        )
        # The flood has left the server. What the watcher missed is not judged here (LOAD-001
        # judges loss): the reader is held to what the watcher got.
        await _quiet(chat, [seen], sent, patient=False)
        await asyncio.sleep(max(0.0, load.lag - (time.monotonic() - stopped)))
        lagged = time.monotonic() - stopped
        reader.resume_reading()
        sentinel = (LAG_SENDERS, 0)  # a sender index no flooder has
        lagging.until = lambda key: key == sentinel
        catching_up = asyncio.ensure_future(lagging.run())
        text = json.dumps({"type": "text", "message": burst.body(*sentinel)}, ensure_ascii=False)
        chat.transcript.log(watcher.name, "->", text)
        await watcher.ws.send(text)
        await _until_done(chat, [lagging], "the sentinel sent once it read again")
        await catching_up
    finally:
        for collector in (seen, lagging):
            collector.stop()
        for task in reading:
            task.cancel()
        await asyncio.gather(*reading, return_exceptions=True)
        for conn in senders:
            conn.abort()  # they read none of the flood: they vanish
    _bounded([seen, lagging])
    accepted = {(s, q) for s, q, _ in seen.record.arrivals}
    expected = [m for m in sent if (m.sender, m.seq) in accepted]
    if len(expected) < len(sent):
        chat.observe(
            "LOAD-002",
            f"{len(sent) - len(expected):,} of the {len(sent):,} flood messages never reached the "
            "watcher (refused, or lost: LOAD-001 judges loss); the lagging reader is held to the "
            f"{len(expected):,} that did",
        )
    judgement = judge_lag(
        expected, lagging.record, lagged_s=lagged, sent_bytes=len(expected) * per_event
    )
    for note in judgement.notes:
        chat.observe("LOAD-002", note)
    chat.figures["LOAD-002"] = judgement.figures
    if "LOAD-002" in judgement.failures:
        _fail(
            judgement,
            "LOAD-002",
            f"every one of the {len(expected):,} events sent while it lagged, or a close frame",
            (),
        )


async def _until_done(chat: Chat, collectors: list[Collector], what: str) -> None:
    """Wait until each collector is done, as long as frames keep coming: a connection silent
    for ``receive_timeout`` fails LOAD-002 as a timeout (the lagging reader's sentinel)."""
    timeout = chat.target.receive_timeout
    while not all(c.done.is_set() for c in collectors):
        await asyncio.sleep(0.02)
        silent = min(
            (time.monotonic() - c.last for c in collectors if not c.done.is_set()), default=0.0
        )
        if silent >= timeout:
            got = sum(len(c.record.arrivals) for c in collectors)
            raise ConformanceTimeout(
                "LOAD-002", what, f"nothing for {timeout:.1f} s after {got:,} events"
            )
