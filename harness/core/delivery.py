"""Delivery under load, judged without I/O (LOAD-*).

A load test records who sent which message when (:class:`Sent`) and, for every connection of
the room, which of those messages' events arrived when, in arrival order (:class:`Receiver`).
This module turns such a record into verdicts and figures; it never touches a socket, so the
server suites, the Locust load mode and the harness's own tests judge alike.

The rules (catalogue, "Delivery under load"; protocol notes, "Deployed reality"):

- LOAD-001: a message is *accepted* when any connection received its event. Every connection
  that stayed open must receive every accepted message exactly once. A sender that got no
  error for a frame and stayed open had it accepted: its event reaching no connection at all
  is loss too. An error frame, or a close frame, is an open refusal: never loss.
- LOAD-002: a reader that lagged gets every event sent while it lagged, or its connection ends
  (with a close frame or without: a heartbeat timeout ends it too); a gap followed by later
  events, or an open connection that never gets the missing ones, is a silent skip.
- LOAD-003: on each receiver, one sender's events arrive in the order sent (across senders,
  any order).
- LOAD-004: what was measured (delivered / expected, duplicates, out of order, latency).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Missing or misplaced messages named one by one in a failure, at most.
SHOWN = 5
#: Points of each receiver's delivery curve kept for the report's plot.
CURVE_POINTS = 48

Key = tuple[int, int]
"""A message of the burst: (sender index, sequence number of that sender's message)."""


@dataclass(frozen=True)
class Sent:
    """One message of the burst: its sender, its place in that sender's order, when it left
    (seconds on the monotonic clock)."""

    sender: int
    seq: int
    at: float


@dataclass
class Receiver:
    """What one connection of the room received of the burst.

    ``arrivals``: (sender, seq, at) in arrival order, duplicates included. ``closed``: how it
    closed during the test, if it did: (close code, reason), the code None when the connection
    was lost without a close frame. ``sender``: the index of the sender this connection is,
    None for a connection that only reads. ``errors``: error frames it received.
    """

    name: str
    where: str = ""
    sender: int | None = None
    arrivals: list[tuple[int, int, float]] = field(default_factory=list)
    closed: tuple[int | None, str] | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.closed is None


@dataclass(frozen=True)
class ReceiverFigures:
    """One connection's line of the LOAD-004 table."""

    name: str
    where: str
    expected: int
    delivered: int
    missing: int
    duplicates: int
    out_of_order: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    closed: str | None
    curve: list[tuple[float, int]]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "where": self.where,
            "expected": self.expected,
            "delivered": self.delivered,
            "missing": self.missing,
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "closed": self.closed,
            "curve": [[round(t, 1), n] for t, n in self.curve],
        }


@dataclass(frozen=True)
class Judgement:
    """The verdicts of one burst: evidence lines per failed requirement (empty: passed), what
    is worth reporting anyway, and the figures (LOAD-004, JSON-ready)."""

    failures: dict[str, list[str]]
    notes: list[str]
    figures: dict[str, Any]
    summary: str


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile of ``values`` (sorted or not); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def closed_text(closed: tuple[int | None, str] | None) -> str | None:
    """How a connection closed, in words (None: it did not)."""
    if closed is None:
        return None
    code, reason = closed
    if code is None:
        return "lost without a close frame"
    return f"closed {code}" + (f" {reason!r}" if reason else "")


def _name(key: Key) -> str:
    return f"sender {key[0] + 1} message {key[1] + 1}"


def _names(keys: Iterable[Key]) -> str:
    keys = sorted(keys)
    shown = ", ".join(_name(k) for k in keys[:SHOWN])
    return shown + (f" and {len(keys) - SHOWN:,} more" if len(keys) > SHOWN else "")


def _curve(times: Sequence[float], start: float) -> list[tuple[float, int]]:
    """Cumulative deliveries over time (ms since ``start``), thinned to CURVE_POINTS."""
    if not times:
        return []
    ordered = sorted(times)
    step = max(1, len(ordered) // CURVE_POINTS)
    points = [((t - start) * 1000, i + 1) for i, t in enumerate(ordered) if (i + 1) % step == 0]
    last = ((ordered[-1] - start) * 1000, len(ordered))
    if not points or points[-1] != last:
        points.append(last)
    return points


def judge_burst(
    sent: Sequence[Sent],
    receivers: Sequence[Receiver],
    *,
    refused: Mapping[int, int] | None = None,
) -> Judgement:
    """LOAD-001, LOAD-003 and LOAD-004 of one burst.

    ``refused``: per sender index, how many of its frames the server refused openly (error
    frames on that sender's connection); defaults to each sender receiver's ``errors``."""
    sent_at = {(s.sender, s.seq): s.at for s in sent}
    per_sender = Counter(s.sender for s in sent)
    if refused is None:
        refused = {r.sender: len(r.errors) for r in receivers if r.sender is not None}
    accepted: set[Key] = set()
    for r in receivers:
        accepted.update((s, q) for s, q, _ in r.arrivals if (s, q) in sent_at)
    failures: dict[str, list[str]] = {}
    notes: list[str] = []

    # Accepted by the server (no error, the sender open) yet delivered to no connection at all.
    closed_senders = {r.sender for r in receivers if r.sender is not None and not r.open}
    for sender, count in sorted(per_sender.items()):
        if sender in closed_senders:
            continue
        seen = sum(1 for key in accepted if key[0] == sender)
        shortfall = count - refused.get(sender, 0) - seen
        if shortfall > 0:
            unseen = [(sender, q) for q in range(count) if (sender, q) not in accepted]
            failures.setdefault("LOAD-001", []).append(
                f"sender {sender + 1}: {shortfall:,} of its {count:,} messages were accepted "
                f"without an error, yet no connection received their event ({_names(unseen)})"
            )

    start = min(sent_at.values(), default=0.0)
    figures: list[ReceiverFigures] = []
    latencies: list[float] = []
    last_arrival = start
    for r in receivers:
        counts = Counter((s, q) for s, q, _ in r.arrivals if (s, q) in sent_at)
        first: dict[Key, float] = {}
        highest: dict[int, int] = {}
        misplaced: list[Key] = []
        for s, q, at in r.arrivals:
            key = (s, q)
            if key not in sent_at or key in first:
                continue
            first[key] = at
            if q < highest.get(s, -1):
                misplaced.append(key)
            highest[s] = max(highest.get(s, -1), q)
        mine = [at - sent_at[key] for key, at in first.items()]
        latencies.extend(mine)
        if first:
            last_arrival = max(last_arrival, max(first.values()))
        duplicates = sum(n - 1 for n in counts.values() if n > 1)
        missing = accepted - first.keys()
        where = f" ({r.where})" if r.where else ""
        if r.open:
            if missing:
                failures.setdefault("LOAD-001", []).append(
                    f"{r.name}{where} stayed open and missed {len(missing):,} of "
                    f"{len(accepted):,} events: {_names(missing)}"
                )
            if duplicates:
                doubled = [k for k, n in counts.items() if n > 1]
                failures.setdefault("LOAD-001", []).append(
                    f"{r.name}{where} received {duplicates:,} events more than once: "
                    f"{_names(doubled)}"
                )
        else:
            notes.append(
                f"{r.name}{where} {closed_text(r.closed)} during the burst, after "
                f"{len(first):,} of {len(accepted):,} events: an open refusal, not loss"
            )
        if misplaced:
            failures.setdefault("LOAD-003", []).append(
                f"{r.name}{where} received {len(misplaced):,} events after a later one of the "
                f"same sender: {_names(misplaced)}"
            )
        if r.errors:
            notes.append(
                f"{r.name}{where} was answered {len(r.errors):,} error frames (an open "
                f"refusal), the first {r.errors[0]!r}"
            )
        figures.append(
            ReceiverFigures(
                name=r.name,
                where=r.where,
                expected=len(accepted),
                delivered=len(first),
                missing=len(missing),
                duplicates=duplicates,
                out_of_order=len(misplaced),
                p50_ms=_ms(percentile(mine, 50)),
                p99_ms=_ms(percentile(mine, 99)),
                max_ms=_ms(max(mine, default=None)),
                closed=closed_text(r.closed),
                curve=_curve(list(first.values()), start),
            )
        )
    delivered = sum(f.delivered for f in figures)
    span = last_arrival - start
    rate = delivered / span if span > 0 else None
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    top = max(latencies, default=None)
    summary = (
        f"{len(sent):,} messages from {len(per_sender)} senders to {len(receivers)} connections: "
        f"{delivered:,} deliveries in {span * 1000:,.0f} ms"
        + (f" ({rate:,.0f} a second)" if rate else "")
        + (
            f"; latency p50 {_ms(p50)} ms, p99 {_ms(p99)} ms, max {_ms(top)} ms"
            if latencies
            else ""
        )
    )
    return Judgement(
        failures=failures,
        notes=notes,
        figures={
            "kind": "burst",
            "messages": len(sent),
            "senders": len(per_sender),
            "accepted": len(accepted),
            "deliveries": delivered,
            "duration_ms": round(span * 1000, 1),
            "rate_per_s": None if rate is None else round(rate, 1),
            "p50_ms": _ms(p50),
            "p99_ms": _ms(p99),
            "max_ms": _ms(top),
            "receivers": [f.as_json() for f in figures],
        },
        summary=summary,
    )


def _gaps(expected: set[Key], arrivals: Sequence[tuple[int, int, float]]) -> list[Key]:
    """The expected messages missing although a later message of the same sender arrived: a
    gap followed by later events (across senders there is no order, so no gap)."""
    highest: dict[int, int] = {}
    got: set[Key] = set()
    for s, q, _ in arrivals:
        if (s, q) in expected:
            got.add((s, q))
            highest[s] = max(highest.get(s, -1), q)
    return sorted(k for k in expected - got if k[1] < highest.get(k[0], -1))


def judge_lag(
    sent: Sequence[Sent],
    reader: Receiver,
    *,
    lagged_s: float,
    sent_bytes: int,
    ended_after_s: float | None = None,
) -> Judgement:
    """LOAD-002: the reader that lagged got every event sent while it lagged, or its connection
    ended: events are never skipped silently on a connection that stays open.

    ``reader.arrivals`` ends where the test stopped reading: at the sentinel sent after the
    reader resumed (anything sent before it arrived by then), or at the end of the connection.
    A connection that ended (a close frame, or none: a TCP close or reset, a heartbeat timeout)
    after a run of events without a gap told its client that the stream broke; the client
    reconnects. A close frame could not even get through: it queues behind the very data the
    reader is not reading. What fails is a gap followed by later events (a skip the client
    cannot see), or an open connection that never gets the missing events. ``ended_after_s``:
    how long after the reader stopped reading its end was seen (for the note)."""
    expected = {(s.sender, s.seq) for s in sent}
    got = {(s, q) for s, q, _ in reader.arrivals if (s, q) in expected}
    missing = expected - got
    gaps = _gaps(expected, reader.arrivals)
    where = f" ({reader.where})" if reader.where else ""
    failures: dict[str, list[str]] = {}
    notes: list[str] = []
    what = (
        f"{len(expected):,} events ({sent_bytes / 2**20:.1f} MiB) sent while {reader.name}"
        f"{where} lagged {lagged_s:.1f} s"
    )
    if gaps:
        ended = (
            "" if reader.open else f", and later the connection was {closed_text(reader.closed)}"
        )
        failures["LOAD-002"] = [
            f"{what}: {len(gaps):,} were skipped silently (later events of the same sender "
            f"arrived on the open connection{ended}): {_names(gaps)}"
        ]
    elif not reader.open:
        code = reader.closed[0] if reader.closed else None
        how = f"close code {code}" if code is not None else "no close frame"
        after = f" after {ended_after_s:.1f} s" if ended_after_s is not None else ""
        notes.append(
            f"{what}: the server ended the lagging reader{after} ({how}); it got "
            f"{len(got):,} of them without a gap first, and {len(missing):,} never arrived: the "
            "connection ended, so its client knows the stream broke (not a silent skip)"
        )
    elif missing:
        failures["LOAD-002"] = [
            f"{what}: {len(missing):,} were skipped silently (the connection stayed open and "
            f"later events arrived): {_names(missing)}"
        ]
    else:
        notes.append(f"{what}: every one arrived once it read again")
    counts = Counter((s, q) for s, q, _ in reader.arrivals if (s, q) in expected)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    if duplicates:
        notes.append(f"{reader.name}{where} received {duplicates:,} of them more than once")
    return Judgement(
        failures=failures,
        notes=notes,
        figures={
            "kind": "lag",
            "messages": len(expected),
            "bytes": sent_bytes,
            "lagged_s": round(lagged_s, 2),
            "delivered": len(got),
            "missing": len(missing),
            "closed": closed_text(reader.closed),
        },
        summary=notes[0] if notes else failures["LOAD-002"][0],
    )


__all__ = [
    "Judgement",
    "Receiver",
    "ReceiverFigures",
    "Sent",
    "closed_text",
    "judge_burst",
    "judge_lag",
    "percentile",
]
