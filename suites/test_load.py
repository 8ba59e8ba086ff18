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
import time

import pytest

from harness import spec
from harness.core.delivery import Judgement, Sent, judge_burst, judge_lag
from harness.core.failures import ConformanceFailure, ConformanceTimeout, NotTested
from harness.server.chat import Chat
from harness.server.flood import (
    FLOOD_CAP,
    Burst,
    Collector,
    Drain,
    Window,
    bounded,
    deadline,
    drains,
    early,
    prove,
    quiet,
    room_for_the_tag,
    send_all,
    senders_for,
    settle_drains,
    share,
    shortfall,
    sized_note,
    stands_on_the_basics,
)

requirement = pytest.mark.requirement

ROLES = ("member", "member2", "host")
#: The lagging reader's socket receive buffer (bytes): the kernel then holds next to nothing
#: for it, and the server's own buffers fill.
LAG_RECEIVE_BUFFER = 4096
#: Connections flooding the room while the reader lags (none reads what it is sent), at least:
#: more against a server whose pace would make each one's share outlast ``load.time_budget``.
LAG_SENDERS = 2
#: How far ahead of the watcher the flood may go (bytes of events): well under what any server
#: would call a lagging reader, well over one event.
LAG_WINDOW = 48 * 1024
#: At most this many; a server slower than that takes fewer bytes in the budget.
MAX_LAG_SENDERS = 32
#: A character of three UTF-8 bytes (one UTF-16 unit): few frames carry many bytes, whatever
#: unit the server counts the length limit in.
WIDE = "\u20ac"
#: The JSON around a body in a new event, roughly (bytes).
EVENT_OVERHEAD = 260


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
    room_for_the_tag(load.body_length)
    stands_on_the_basics(chat)
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
    messages = load.messages
    fits = share(chat)
    if fits is not None and fits < messages:
        messages = fits
        chat.observe(
            "LOAD-004", sized_note(chat, f"{messages:,} of the {load.messages:,} messages a sender")
        )
    wanted = {(s, q) for s in range(load.senders) for q in range(messages)}
    for collector in collectors:
        collector.wanted = set(wanted)
    reading = [asyncio.ensure_future(c.run()) for c in collectors]
    sent: list[Sent] = []
    try:
        await asyncio.gather(
            *(send_all(chat, s, burst, i, sent, messages, load.rate) for i, s in enumerate(senders))
        )
        await quiet(chat, collectors)
        ended = await prove(chat, collectors, sent, senders, burst)
        if ended is not None:
            chat.observe("LOAD-004", ended)
    finally:
        for collector in collectors:
            collector.stop()
        for task in reading:
            task.cancel()
        await asyncio.gather(*reading, return_exceptions=True)
    bounded(collectors)
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
    # The flood goes through as many connections as the server's pace asks for, so that a
    # server handling each connection's frames one at a time, slowly (or a rate limit), still
    # takes it within load.time_budget. Their readers only count their own echoes and errors. A
    # watcher that reads everything is the control: it says what the server accepted, and
    # whether the server loses this flood's events on a connection that does not lag at all.
    chat.needs("network")  # a reader that stops: TCP backpressure
    load = chat.target.load
    limit = min(chat.target.max_length, spec.MAX_LENGTH)
    room_for_the_tag(limit)
    stands_on_the_basics(chat)
    burst = Burst(chat.nonce("lag"), limit, fill=WIDE)
    per_event = len(burst.body(0, 0).encode()) + EVENT_OVERHEAD
    total = max(LAG_SENDERS, math.ceil(load.lag_bytes / per_event))
    fits = share(chat)
    if fits is not None and fits * MAX_LAG_SENDERS < total:
        chat.observe(
            "LOAD-002",
            sized_note(
                chat,
                f"{fits * MAX_LAG_SENDERS * per_event / 2**20:.1f} MiB of the "
                f"{total * per_event / 2**20:.1f} MiB of load.lag_bytes",
            ),
        )
        total = max(LAG_SENDERS, fits * MAX_LAG_SENDERS)
    count = senders_for(chat, total, LAG_SENDERS, MAX_LAG_SENDERS)
    each = math.ceil(total / count)
    reader = await chat.connect("member2", label="lagging", receive_buffer=LAG_RECEIVE_BUFFER)
    watcher = await chat.connect("host", label="watcher")
    senders = [await chat.connect(ROLES[i % 2], label="flood") for i in range(count)]
    lagging = Collector(chat, reader, burst)
    seen = Collector(chat, watcher, burst)
    seen.wanted = {(i, q) for i in range(count) for q in range(each)}
    counters = drains(chat, senders, burst)
    reader.stop_reading("lags")
    stopped = time.monotonic()
    reading = [asyncio.ensure_future(seen.run())]
    draining = early(chat, counters)
    sent: list[Sent] = []

    lagged = 0.0
    try:
        # At most LAG_WINDOW bytes ahead of the watcher: the flood goes as fast as a reader
        # that reads, so only the reader that stops reading lags (the watcher is the control).
        window = Window(chat, seen, max(LAG_SENDERS, LAG_WINDOW // per_event))
        until = deadline(chat)
        await asyncio.gather(
            *(
                send_all(chat, conn, burst, i, sent, each, window=window, deadline=until)
                for i, conn in enumerate(senders)
            )
        )
        if len(sent) < count * each and time.monotonic() > until:
            chat.observe(
                "LOAD-002",
                f"the flood stopped after {len(sent):,} of its {count * each:,} messages "
                f"({len(sent) * per_event / 2**20:.1f} MiB): the server delivered them to the "
                f"watcher slower than it took them, and {FLOOD_CAP:g} x load.time_budget "
                "had passed",
            )
        # The flood has left the server: the watcher has it all, or it has been silent for
        # the grace and each sender's sentinel came after the rest.
        await quiet(chat, [seen])
        ended = await prove(chat, [seen], sent, senders, burst, counters, draining)
        if ended is not None:
            chat.observe("LOAD-002", ended)
        await asyncio.sleep(max(0.0, load.lag - (time.monotonic() - stopped)))
        lagged = time.monotonic() - stopped
        reader.resume_reading()
        sentinel = (count, 0)  # a sender index no flooder has
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
        try:
            await settle_drains(chat, counters, sent, draining, seen.record)
        finally:
            for conn in senders:
                conn.abort()  # a closing handshake would wait behind the flood: they vanish
    bounded([seen, lagging])
    _control(chat, sent, seen, counters)
    accepted = {(s, q) for s, q, _ in seen.record.arrivals}
    expected = [m for m in sent if (m.sender, m.seq) in accepted]
    if len(expected) < len(sent):
        chat.observe(
            "LOAD-002",
            f"{len(sent) - len(expected):,} of the {len(sent):,} flood messages were refused "
            f"openly (error frames, or their sender closed); the lagging reader is held to the "
            f"{len(expected):,} the watcher received",
        )
    ended = None if lagging.ended_at is None else lagging.ended_at - stopped
    judgement = judge_lag(
        expected,
        lagging.record,
        lagged_s=lagged,
        sent_bytes=len(expected) * per_event,
        ended_after_s=ended,
    )
    for note in judgement.notes:
        chat.observe("LOAD-002", note)
    chat.figures["LOAD-002"] = judgement.figures
    if "LOAD-002" in judgement.failures:
        _fail(
            judgement,
            "LOAD-002",
            f"every one of the {len(expected):,} events sent while it lagged, or the end of "
            "its connection",
            (),
        )


def _control(chat: Chat, sent: list[Sent], watcher: Collector, counters: list[Drain]) -> None:
    """The control: a watcher that reads everything got every message the server accepted
    (sent, not refused with an error, its sender open). If it did not, the server loses this
    flood's events without a lagging reader: LOAD-002 cannot blame the lag (LOAD-001 judges
    loss)."""
    if watcher.record.closed is not None:
        raise NotTested(
            f"the server ended the watcher during the flood ({watcher.record.closed[0] or 'no'}"
            " close frame): what the lagging reader missed cannot be told from what the server "
            "refused"
        )
    missing = shortfall(sent, watcher.record, counters)
    if missing:
        lost = sum(missing.values())
        raise NotTested(
            f"the server loses events under this flood without a lagging reader: the watcher, "
            f"which read everything, missed {lost:,} of the {len(sent):,} messages it accepted "
            "without an error; see LOAD-001"
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
