"""Floods of one room, read straight off the sockets: the load tests' and RECON-002's machinery.

A flood is thousands of frames per connection, so frames are not read through the per-frame checks
of :class:`~harness.server.conn.Conn` (EVT-* judge schemas elsewhere): what is judged is which of
the flood's messages arrived where and when (:mod:`harness.core.delivery`). Three readers:

- :class:`Collector` keeps every arrival of the flood's messages on one connection, its error
  frames and its end;
- :class:`Drain` reads a sender's connection as cheaply as it can: it counts the sender's own
  echoes and the error frames that refused its frames (an open refusal, never loss), and keeps
  the connection read, so that a server's heartbeat pings are answered (a connection that reads
  nothing stops answering pings once websockets' queue is full, and a heartbeat ends it);
- :func:`quiet` waits until the flood is over: every collector has every message, or every
  connection has been silent for a grace; then :func:`prove` ends it with a sentinel per sender
  when something is missing: each sender's next message, which (each sender's events in order,
  LOAD-003) proves that whatever of that sender has not come is not coming. Loss is judged once
  proven, not after a timeout per missing event.

The floods are sized by the server's pace on one connection (``Gate.pace``, measured by the
preflight) and ``load.time_budget``: :func:`share` is how many messages one sender may have
served in the budget, :func:`senders_for` how many senders carry a flood's bytes in it.

Every sender paces itself under the server's rate limit when the preflight found one
(:meth:`harness.server.chat.Chat.send_interval`): frames refused for going too fast would say
nothing about what the test is about.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.core.delivery import Receiver, Sent
from harness.core.failures import NotTested, ResourceLimit
from harness.core.frames import now_rfc3339
from harness.server.chat import Chat, Conn
from harness.target import MIN_BODY
from harness.wire.closed import Closed

#: Frames of each connection the transcript shows one by one.
LOGGED = 3
#: A frame shorter than this may be an error frame (a Drain parses only those).
SHORT_FRAME = 2048
#: A flood paced by its readers stops sending after this many times ``load.time_budget``.
FLOOD_CAP = 2.5


@dataclass
class Burst:
    """The messages of one flood: bodies ``<tag> SSS QQQQQQ <padding>``."""

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

    def marker(self, sender: int) -> str:
        """The text every message of ``sender`` starts with (found without parsing)."""
        return f"{self.tag} {sender:03d} "


def _error_of(data: str | bytes) -> str | None:
    """The text of an error frame (a JSON object with ``error`` and not an event), else None."""
    if not isinstance(data, str) or len(data) > SHORT_FRAME or '"error"' not in data:
        return None
    try:
        frame = json.loads(data)
    except ValueError:
        return None
    if isinstance(frame, dict) and "error" in frame and frame.get("type") != "chat_message":
        return str(frame["error"])
    return None


class Collector:
    """Reads one connection during a flood: the flood's events (and errors, and its end) into
    a :class:`Receiver`; other frames (strangers' traffic, a server's extra frames) are
    counted, not judged."""

    def __init__(self, chat: Chat, conn: Conn, burst: Burst, sender: int | None = None) -> None:
        self.chat = chat
        self.conn = conn
        self.burst = burst
        self.record = Receiver(conn.name, chat.target.node_label(conn.node), sender)
        self.last = time.monotonic()
        #: When its end was seen (monotonic), if it ended.
        self.ended_at: float | None = None
        self.frames = 0
        self.others = 0
        self.wanted: set[tuple[int, int]] | None = None
        self.until: Callable[[tuple[int, int]], bool] | None = None
        #: The sentinels (:func:`prove`) still to arrive: once none is, the collector is done.
        self.proofs: set[tuple[int, int]] | None = None
        self.done = asyncio.Event()
        #: Set at each arrival of a flood message (a :class:`Window` waits on it).
        self.progress = asyncio.Event()
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
            except Closed as exc:
                self.record.closed = self.conn.closed = (exc.code, exc.reason)
                self.ended_at = time.monotonic()
                how = (
                    f"close {exc.code}"
                    if exc.code is not None
                    else "connection lost (no close frame)"
                )
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
        self.progress.set()
        if self.wanted is not None:
            self.wanted.discard(key)
            if not self.wanted:
                self.done.set()
        if self.until is not None and self.until(key):
            self.done.set()
        if self.proofs is not None:
            self.proofs.discard(key)
            if not self.proofs:
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


class Drain:
    """Reads a flood sender's connection cheaply: its own echoes are counted by their text
    (never parsed), error frames by their text; everything else is dropped. It tells which of
    the sender's frames the server refused (an open refusal, never loss).

    A burst's senders are read once it is over (:func:`settle_drains`), only when the control
    needs their refusals: read during the burst, they would take the harness's time from the
    connection whose reading is the control. A paced flood (under a rate limit) lasts longer
    than a heartbeat's timeout: its senders are read as it comes (:func:`early`), or the
    server's pings would go unanswered and a heartbeat would end them."""

    def __init__(self, chat: Chat, conn: Conn, burst: Burst, index: int) -> None:
        self.chat = chat
        self.conn = conn
        self.index = index
        self.marker = burst.marker(index)
        self.echoes = 0
        self.errors: list[str] = []
        self.frames = 0
        self.last = time.monotonic()
        self.closed: tuple[int | None, str] | None = None
        #: How many frames the sender sent (set once its sending is over): every one answered
        #: (its echo or an error), the drain is done.
        self.count: int | None = None
        #: The head of the sender's sentinel (:func:`prove`): once its echo came, every answer
        #: to the frames before it has come (they were served first).
        self.proof: str | None = None
        self.proved = False
        self.done = asyncio.Event()
        self.limit = 4 * chat.target.load.total + 4 * chat.target.max_buffered_frames

    async def run(self) -> None:
        ws = self.conn.ws
        try:
            while self.frames <= self.limit and not self._answered():
                data = await ws.recv()
                self.frames += 1
                self.last = time.monotonic()
                self.chat.traffic.received += 1
                if isinstance(data, str) and self.marker in data:
                    self.echoes += 1
                    if self.proof is not None and self.proof in data:
                        self.proved = True
                    continue
                error = _error_of(data)
                if error is not None:
                    self.errors.append(error)
                    if len(self.errors) == 1:
                        self.chat.transcript.log(self.conn.name, "<-", str(data))
        except Closed as exc:
            self.closed = self.conn.closed = (exc.code, exc.reason)
            how = (
                f"close {exc.code}" if exc.code is not None else "connection lost (no close frame)"
            )
            self.chat.transcript.log(self.conn.name, "==", how)
        finally:
            self.done.set()

    def _answered(self) -> bool:
        if self.proved:
            return True
        return self.count is not None and self.echoes + len(self.errors) >= self.count


def drains(chat: Chat, senders: list[Conn], burst: Burst) -> list[Drain]:
    return [Drain(chat, conn, burst, i) for i, conn in enumerate(senders)]


def early(chat: Chat, counters: list[Drain], *, always: bool = False) -> list[asyncio.Future[None]]:
    """The drains that read as the flood comes: all of them when it is paced under a rate
    limit (it outlasts a heartbeat's timeout) or ``always`` (a control, where no connection
    may be one that does not read), none for a burst."""
    if chat.send_interval() is None and not always:
        return []
    return [asyncio.ensure_future(d.run()) for d in counters]


async def settle_drains(
    chat: Chat,
    counters: list[Drain],
    sent: list[Sent],
    running: list[asyncio.Future[None]],
    watcher: Receiver,
) -> None:
    """When ``watcher`` (the control) missed some of the flood, read each sender until every
    frame it sent is answered (its echo or an error), it closed, or no drain read anything for
    ``receive_timeout``: the refusals tell what the server accepted. Stops the drains."""
    if len({(s, q) for s, q, _ in watcher.arrivals}) >= len(sent):
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        return
    per_sender = Counter(m.sender for m in sent)
    for d in counters:
        d.count = per_sender.get(d.index, 0)
    tasks = running or [asyncio.ensure_future(d.run()) for d in counters]
    try:
        while not all(d.done.is_set() or d._answered() for d in counters):
            await asyncio.sleep(0.05)
            last = max(d.last for d in counters)
            if time.monotonic() - last >= chat.target.receive_timeout:
                break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Window:
    """Flow control on a reader: the senders of a flood keep at most ``size`` messages that
    ``reader`` has not received yet. The flood then goes no faster than that reader reads, so
    it never falls behind (a server may treat a reader far behind as lagging), whatever the
    speed of the server, of the harness and of the machine, while a connection that stops
    reading still gets the whole flood queued for it. Once nothing arrived for a grace while
    the window was full, the reader is missing messages (lost, or refused): the window opens
    for the rest of the flood (waiting a grace for each would take a lossy server minutes),
    and what the reader missed is the control's to judge."""

    def __init__(self, chat: Chat, reader: Collector, size: int) -> None:
        self.chat = chat
        self.reader = reader
        self.size = size
        #: Whether flow control is off: the reader missed messages.
        self.opened = False

    async def wait(self, sent: int) -> None:
        """Before the next message (``sent`` sent so far by every sender): wait for room."""
        reader = self.reader
        while (
            not self.opened
            and sent - len(reader.record.arrivals) >= self.size
            and not reader.done.is_set()
        ):
            reader.progress.clear()
            try:
                async with asyncio.timeout(grace(self.chat)):
                    await reader.progress.wait()
            except TimeoutError:
                self.opened = True


async def send_all(
    chat: Chat,
    conn: Conn,
    burst: Burst,
    index: int,
    sent: list[Sent],
    count: int,
    rate: float | None = None,
    *,
    start_seq: int = 0,
    window: Window | None = None,
    deadline: float | None = None,
) -> None:
    """Send sender ``index``'s ``count`` messages: as fast as it can, or ``rate`` a second;
    never faster than the server's rate limit lets one connection send, nor than ``window``'s
    reader reads; none after ``deadline`` (monotonic), when the flood has taken its budget."""
    interval = chat.send_interval()
    gap = max(1 / rate if rate else 0.0, interval or 0.0)
    start = time.monotonic()
    for n in range(count):
        seq = start_seq + n
        if gap:
            delay = start + n * gap - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if window is not None:
            await window.wait(len(sent))
        if deadline is not None and time.monotonic() > deadline:
            count = n
            break
        text = json.dumps(
            {"type": "text", "message": burst.body(index, seq), "timestamp": now_rfc3339()},
            ensure_ascii=False,
        )
        if n == 0:
            chat.transcript.log(conn.name, "->", text)
        sent.append(Sent(index, seq, time.monotonic()))
        try:
            await conn.ws.send(text)
        except Closed:
            return  # its reader records the close
        chat.traffic.sent += 1
    if gap:
        pace = f"at {1 / gap:g} a second" + (" (the server's rate limit)" if interval else "")
    else:
        pace = "in a burst"
    size = len(burst.body(index, 0).encode())
    chat.transcript.log(conn.name, "==", f"sent {count:,} messages of {size:,} bytes {pace}")


def grace(chat: Chat) -> float:
    """How long every connection must stay silent before a flood is taken to be over: a few
    round trips, at least half a second, at most ``receive_timeout``."""
    round_trip = chat.gate.round_trip_s if chat.gate is not None else 0.0
    return min(chat.target.receive_timeout, max(0.5, 10 * round_trip))


async def quiet(chat: Chat, collectors: list[Collector]) -> None:
    """Wait until the flood is over: every collector has every message, or every connection
    has been silent for the grace (then :func:`prove` tells what is missing from what is late:
    a grace that ends too soon costs a sentinel, never a verdict)."""
    bound = grace(chat)
    while not all(c.done.is_set() for c in collectors):
        await asyncio.sleep(0.05)
        now = time.monotonic()
        silent = min((now - c.last for c in collectors if not c.done.is_set()), default=0.0)
        if silent >= bound:
            return


def pace(chat: Chat) -> tuple[float, str] | None:
    """The frames a second one connection gets served, and where that comes from: the pace the
    preflight measured, or the server's rate limit (the senders pace themselves under it),
    whichever is slower; None: neither is known."""
    found: list[tuple[float, str]] = []
    measured = chat.gate.pace if chat.gate is not None else None
    if measured is not None:
        found.append((measured, "measured by the preflight"))
    interval = chat.send_interval()
    if interval is not None:
        found.append((1 / interval, "under the server's rate limit"))
    return min(found, default=None)


def share(chat: Chat) -> int | None:
    """How many messages one sender may have served within ``load.time_budget`` at the
    server's :func:`pace` (None: not known)."""
    known = pace(chat)
    if known is None:
        return None
    return max(1, math.floor(known[0] * chat.target.load.time_budget))


def deadline(chat: Chat) -> float:
    """When a flood paced by its readers (a :class:`Window`) stops sending, whatever is left
    (monotonic): :data:`FLOOD_CAP` times ``load.time_budget`` from now. The sizes predict the
    flood within the budget from the pace of one connection; a server slower to deliver than
    to take frames (Channels' channel layer) is held to what it was sent by then."""
    return time.monotonic() + FLOOD_CAP * chat.target.load.time_budget


def senders_for(chat: Chat, frames: int, least: int, most: int) -> int:
    """How many connections send a flood of ``frames`` messages: ``least``, or more (at most
    ``most``) when one sender's share would take longer than ``load.time_budget`` at the
    server's pace, so that a server serving each connection's frames one at a time still gets
    the flood's bytes in its budget."""
    per_sender = share(chat)
    if per_sender is None:
        return least
    return max(least, min(most, math.ceil(frames / per_sender)))


def sized_note(chat: Chat, what: str) -> str:
    """The observation of a flood sized by the server's pace."""
    rate, source = pace(chat) or (0.0, "")
    return (
        f"{what}: sized to the server's pace on one connection ({rate:,.0f} frames a second, "
        f"{source}) within load.time_budget ({chat.target.load.time_budget:g} s)"
    )


async def prove(
    chat: Chat,
    collectors: list[Collector],
    sent: list[Sent],
    senders: list[Conn],
    burst: Burst,
    counters: list[Drain] | None = None,
    draining: list[asyncio.Future[None]] | None = None,
) -> str | None:
    """After :func:`quiet`: when some collector still misses messages, each open sender sends
    one more message (its sentinel, ``sent`` gets it) and the flood is over once every
    collector has every sentinel: each sender's events come in order (LOAD-003), so what of a
    sender has not come before its sentinel is not coming. The sentinels must come: the wait
    for them is bounded by ``receive_timeout`` of silence. ``counters``: the senders' drains,
    read before the sentinels (their backlog: a sentinel's echo must find room) and until
    each sentinel's echo (every answer to the frames before it has then come); ``draining``
    gets the tasks started here. A sender that closed sends none; if any did, the collectors
    stay a grace of silence more for its last events (other senders' sentinels prove nothing
    about its own). Returns the observation of a flood the sentinels ended (None: nothing was
    missing)."""
    if all(c.done.is_set() for c in collectors):
        return None
    if counters is not None and draining is not None:
        if not draining:  # a burst's drains read once it is over
            draining.extend(asyncio.ensure_future(d.run()) for d in counters)
        await _silent([d for d in counters if not d.done.is_set()], grace(chat))
    last: dict[int, int] = {}
    for m in sent:
        last[m.sender] = max(last.get(m.sender, -1), m.seq)
    keys: list[tuple[int, int]] = []
    closed = False
    for index, conn in enumerate(senders):
        drain = counters[index] if counters is not None else None
        if conn.closed is not None or (drain is not None and drain.closed is not None):
            closed = True
            continue
        key = (index, last.get(index, -1) + 1)
        body = burst.body(*key)
        text = json.dumps({"type": "text", "message": body}, ensure_ascii=False)
        chat.transcript.log(conn.name, "->", text)
        try:
            await conn.ws.send(text)
        except Closed:
            closed = True
            continue
        chat.traffic.sent += 1
        sent.append(Sent(key[0], key[1], time.monotonic()))
        keys.append(key)
        if drain is not None:
            drain.proof = burst.body(*key)[: len(burst.marker(index)) + 7]
    chat.transcript.log(
        "harness", "==", f"{len(keys)} sentinels: each sender's next message ends the flood"
    )
    for c in collectors:
        if c.wanted is not None:
            c.wanted.update(keys)
        c.proofs = set(keys) - {(s, q) for s, q, _ in c.record.arrivals}
        if not c.proofs:
            c.done.set()
    waiting: list[Collector | Drain] = [*collectors, *(counters or [])]
    timeout = chat.target.receive_timeout
    since = time.monotonic()
    while not all(_finished(w) for w in waiting):
        await asyncio.sleep(0.02)
        if time.monotonic() - max(since, *(w.last for w in waiting)) >= timeout:
            # The sentinels never came: what did not is judged missing.
            return (
                f"the flood's {len(keys)} sentinels (each sender's next message) did not all "
                f"come within receive_timeout ({timeout:g} s)"
            )
    if closed:
        await _silent([c for c in collectors if not c.done.is_set()], grace(chat))
    missing = sum(len(c.wanted) for c in collectors if c.wanted is not None)
    return (
        f"{len(keys)} sentinels (each sender's next message) ended the flood"
        + (f" with {missing:,} deliveries missing" if missing else "")
        + ": what of a sender had not come before its sentinel is not coming, judged at once"
    )


def _finished(reader: Collector | Drain) -> bool:
    if isinstance(reader, Drain):
        return reader.done.is_set() or reader.proof is None or reader.proved
    return reader.done.is_set()


async def _silent(readers: list[Collector] | list[Drain], bound: float) -> None:
    """Until none of ``readers`` has received anything for ``bound`` seconds from now (or each
    is done)."""
    since = time.monotonic()
    while readers and not all(r.done.is_set() for r in readers):
        await asyncio.sleep(0.02)
        if time.monotonic() - max(since, *(r.last for r in readers)) >= bound:
            return


def stands_on_the_basics(chat: Chat) -> None:
    """A flood stands on what the preflight tries: a sender's own events (SEND-002), the
    room's (SEND-003), an account's second connection (three accounts, many connections each:
    BCAST-001) and, with ``nodes``, delivery across nodes (NODE-001). One that failed blocks
    the test at once, instead of a flood lost for a reason already known."""
    for basic in ("SEND-002", "SEND-003", "BCAST-001", "NODE-001"):
        chat.gate_check(basic)


def room_for_the_tag(length: int) -> None:
    if length < MIN_BODY:
        raise NotTested(
            f"a message of {length} characters (limits.max_length) cannot carry the test's tag "
            f"({MIN_BODY} characters)"
        )


def bounded(collectors: list[Collector]) -> None:
    """A connection that received more frames than the test can have caused fails the test
    with what was measured (a flooding server; README, "Bounded resources")."""
    for c in collectors:
        if c.flooded:
            raise ResourceLimit(
                f"at most {c.limit:,} frames on {c.conn.name} (4 per message of the test, plus "
                "limits.max_buffered_frames)",
                f"{c.frames:,} frames, {len(c.record.arrivals):,} of them the test's events",
            )


def shortfall(sent: list[Sent], watcher: Receiver, senders: list[Drain]) -> dict[int, int]:
    """Per sender that stayed open: how many of its messages, accepted without an error, never
    reached ``watcher`` (a connection that reads everything)."""
    got = Counter(s for s, _q in {(s, q) for s, q, _ in watcher.arrivals})  # no duplicates
    per_sender = Counter(m.sender for m in sent)
    missing: dict[int, int] = {}
    for drain in senders:
        if drain.closed is not None:
            continue
        count = per_sender.get(drain.index, 0)
        short = count - len(drain.errors) - got.get(drain.index, 0)
        if short > 0:
            missing[drain.index] = short
    return missing


__all__ = [
    "Burst",
    "Collector",
    "Drain",
    "Window",
    "bounded",
    "deadline",
    "drains",
    "early",
    "grace",
    "pace",
    "prove",
    "quiet",
    "room_for_the_tag",
    "send_all",
    "senders_for",
    "settle_drains",
    "share",
    "shortfall",
    "sized_note",
    "stands_on_the_basics",
]


def _ended(exc: Closed) -> str:
    """The transcript's line for a flooded connection's end (its close code, not its reason)."""
    return f"close {exc.code}" if exc.code is not None else "connection lost (no close frame)"
