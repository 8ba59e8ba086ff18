"""Delivery under sustained load, counted as frames arrive and judged without I/O (``load``).

The load mode (:mod:`harness.load`) opens many connections on one machine or many, each
sending and reading for minutes. Keeping every arrival, as a burst test does
(:mod:`harness.core.delivery`), would cost the runner its memory; so each connection keeps a
:class:`Tally` instead: per sender, how far its messages arrived without a gap, the few that
arrived past a gap, duplicates and messages out of order. Latency goes into bounded
:class:`Reservoir` samples (exact while they hold every sample) and a :class:`Timeline` of
per-interval counts. Every piece is plain data that travels from a worker to the master, where
:func:`judge` decides the verdict.

The rules are the burst's (catalogue, LOAD-001 and LOAD-003), for a run of known senders:

- a sender's message is *accepted* when the sender stayed open through its sending and was not
  answered an error for it: ``sent - errors`` of them (an error frame is an open refusal);
- every connection that stayed open to the end must receive every accepted message of every
  sender exactly once (loss, duplicates), and each sender's messages in the order sent
  (disorder);
- a connection that ended during the run (a close frame, or none: a heartbeat timeout, a TCP
  close) is reported, not judged for what it missed after it ended; a gap followed by later
  events of the same sender before that is a silent skip all the same (LOAD-002's rule); the
  messages of a sender that closed are not expected of anyone, though duplicates and disorder
  among those that did arrive still count.

Message bodies carry their sender, their number and the sender's clock
(:class:`Codec`): a receiver needs nothing else to count, and the latency of each receipt is
the receiver's clock minus the sender's (exact on one machine; across machines, as exact as
their clocks agree).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from harness.core.delivery import closed_text, percentile

#: Missing messages named one by one per connection, at most.
SHOWN = 5
#: Latency samples a reservoir keeps (per worker): percentiles are exact up to this many.
SAMPLES = 200_000
#: Latency samples each timeline interval keeps (per worker).
INTERVAL_SAMPLES = 500
#: A timeline has at most this many intervals: a long run gets wider ones.
MAX_INTERVALS = 600
#: Senders per worker: the connection ``c`` of worker ``w`` (both from 1) sends as sender
#: ``(w - 1) * SENDERS_PER_WORKER + c - 1``.
SENDERS_PER_WORKER = 100_000

__all__ = [
    "INTERVAL_SAMPLES",
    "SAMPLES",
    "SENDERS_PER_WORKER",
    "Codec",
    "LoadJudgement",
    "Reservoir",
    "Tally",
    "Timeline",
    "interval_for",
    "judge",
    "percentile",
    "sender_name",
]


def sender_name(sender: int) -> str:
    """The connection that sends as ``sender``: ``w1-c3`` (worker 1, its connection 3)."""
    worker, index = divmod(sender, SENDERS_PER_WORKER)
    return f"w{worker + 1}-c{index + 1}"


class Codec:
    """The bodies of one run: ``<tag> <sender> <number> <sender's clock in µs> xxxx…``.

    The tag is the run's own, so that other traffic in the room is counted, never judged."""

    def __init__(self, tag: str, length: int = 200, fill: str = "x") -> None:
        self.tag, self.length, self.fill = tag, length, fill
        self._pattern = re.compile(re.escape(tag) + r" (\d{1,9}) (\d{1,9}) (\d{1,19}) ")

    def body(self, sender: int, seq: int, sent_us: int) -> str:
        head = f"{self.tag} {sender} {seq} {sent_us} "
        return head + self.fill * max(0, self.length - len(head))

    def parse(self, body: object) -> tuple[int, int, int] | None:
        """(sender, number, sender's clock in µs) of one of this run's bodies, else None."""
        if not isinstance(body, str):
            return None
        match = self._pattern.match(body)
        if match is None:
            return None
        return int(match[1]), int(match[2]), int(match[3])


class Reservoir:
    """A uniform sample of at most ``cap`` values (Vitter's algorithm R), with the exact count
    and maximum of everything offered. While ``seen <= cap`` it holds every value."""

    def __init__(self, cap: int = SAMPLES, seed: int = 0) -> None:
        self.cap = cap
        self.seen = 0
        self.top: int | None = None
        self.values: list[int] = []
        self._rng = random.Random(seed)

    def add(self, value: int) -> None:
        self.seen += 1
        if self.top is None or value > self.top:
            self.top = value
        if len(self.values) < self.cap:
            self.values.append(value)
            return
        slot = self._rng.randrange(self.seen)
        if slot < self.cap:
            self.values[slot] = value

    def as_data(self) -> dict[str, Any]:
        return {"seen": self.seen, "max": self.top, "values": self.values}

    @staticmethod
    def merge(parts: Iterable[Mapping[str, Any]], cap: int = SAMPLES) -> tuple[list[int], int]:
        """One sample from several workers' reservoirs, each weighted by how many values it
        saw; and the total seen. Exact (every value) when every part was."""
        parts = [p for p in parts if p.get("seen")]
        seen = sum(int(p["seen"]) for p in parts)
        if all(len(p["values"]) == p["seen"] for p in parts) and seen <= cap:
            return [int(v) for p in parts for v in p["values"]], seen
        rng = random.Random(seen)
        merged: list[int] = []
        for p in parts:
            share = min(len(p["values"]), round(cap * int(p["seen"]) / seen))
            merged.extend(int(v) for v in rng.sample(list(p["values"]), share))
        return merged, seen


def interval_for(span_s: float) -> float:
    """The width of a timeline interval for a run of ``span_s`` seconds: one second, wider when
    that would make more than :data:`MAX_INTERVALS` of them."""
    return float(max(1, math.ceil(span_s / MAX_INTERVALS)))


class Timeline:
    """Per interval since ``origin`` (the run's start, on the wall clock): messages sent,
    events delivered, and a sample of their latency (µs)."""

    def __init__(self, origin: float, width: float = 1.0, seed: int = 0) -> None:
        self.origin = origin
        self.width = width
        self.seed = seed
        self.buckets: dict[int, tuple[list[int], Reservoir]] = {}

    def _bucket(self, at: float) -> tuple[list[int], Reservoir]:
        index = max(0, int((at - self.origin) / self.width))
        bucket = self.buckets.get(index)
        if bucket is None:
            bucket = self.buckets[index] = ([0, 0], Reservoir(INTERVAL_SAMPLES, self.seed + index))
        return bucket

    def sent(self, at: float) -> None:
        self._bucket(at)[0][0] += 1

    def delivered(self, at: float, latency_us: int) -> None:
        counts, sample = self._bucket(at)
        counts[1] += 1
        sample.add(latency_us)

    def as_data(self) -> list[dict[str, Any]]:
        return [
            {"i": i, "sent": c[0], "delivered": c[1], "latency": r.as_data()}
            for i, (c, r) in sorted(self.buckets.items())
        ]

    @staticmethod
    def merge(parts: Iterable[Sequence[Mapping[str, Any]]], width: float) -> list[dict[str, Any]]:
        """The workers' timelines as one: per interval, sends and deliveries a second and the
        latency p50 / p99 / max (ms)."""
        grouped: dict[int, list[Mapping[str, Any]]] = {}
        for part in parts:
            for bucket in part:
                grouped.setdefault(int(bucket["i"]), []).append(bucket)
        rows = []
        for i, buckets in sorted(grouped.items()):
            sample, _ = Reservoir.merge((b["latency"] for b in buckets), INTERVAL_SAMPLES * 4)
            tops = [b["latency"]["max"] for b in buckets if b["latency"]["max"] is not None]
            rows.append(
                {
                    "t": round(i * width, 1),
                    "sent_per_s": round(sum(int(b["sent"]) for b in buckets) / width, 1),
                    "delivered_per_s": round(sum(int(b["delivered"]) for b in buckets) / width, 1),
                    "p50_ms": _ms(percentile(sample, 50)),
                    "p99_ms": _ms(percentile(sample, 99)),
                    "max_ms": _ms(max(tops) if tops else None),
                }
            )
        return rows


def _ms(us: float | None) -> float | None:
    return None if us is None else round(us / 1000, 2)


@dataclass
class Tally:
    """What one connection received of the run, counted per sender.

    ``state[sender]``: [messages 0..low-1 all arrived, highest number seen, duplicates, out of
    order]; ``past_gap[sender]``: numbers at or past ``low`` that arrived (a gap before them).
    """

    name: str
    sender: int | None = None
    account: str = ""
    where: str = ""
    worker: int = 0
    state: dict[int, list[int]] = field(default_factory=dict)
    past_gap: dict[int, set[int]] = field(default_factory=dict)
    errors: int = 0
    first_error: str | None = None
    others: int = 0
    closed: tuple[int | None, str] | None = None
    sent: int = 0
    #: Events still expected, once the master said what to expect (None before).
    outstanding: int | None = None
    _expect: Mapping[int, int] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.closed is None

    def distinct(self, sender: int) -> int:
        entry = self.state.get(sender)
        if entry is None:
            return 0
        return entry[0] + len(self.past_gap.get(sender, ()))

    def arrive(self, sender: int, seq: int) -> bool:
        """Count one arrival; True when it was the first of that message."""
        entry = self.state.get(sender)
        if entry is None:
            entry = self.state[sender] = [0, -1, 0, 0]
        low = entry[0]
        gap = self.past_gap.get(sender)
        if seq < low or (gap is not None and seq in gap):
            entry[2] += 1
            return False
        if seq < entry[1]:
            entry[3] += 1
        else:
            entry[1] = seq
        if seq == low:
            low += 1
            while gap and low in gap:
                gap.discard(low)
                low += 1
            entry[0] = low
        else:
            self.past_gap.setdefault(sender, set()).add(seq)
        if self.outstanding is not None and seq < self._expect.get(sender, 0):
            self.outstanding -= 1
        return True

    def expect(self, accepted: Mapping[int, int]) -> None:
        """What the master says every open connection must receive: per sender, how many."""
        self._expect = accepted
        self.outstanding = sum(max(0, n - self._within(s, n)) for s, n in accepted.items())

    def _within(self, sender: int, count: int) -> int:
        """How many of ``sender``'s messages 0..count-1 arrived."""
        entry = self.state.get(sender)
        if entry is None:
            return 0
        low = min(entry[0], count)
        return low + sum(1 for q in self.past_gap.get(sender, ()) if low <= q < count)

    @property
    def skipped(self) -> int:
        """Messages that never arrived although a later one of the same sender did: a gap
        followed by later events, a silent skip whether or not the connection ends later."""
        total = 0
        for sender, gap in self.past_gap.items():
            if gap:
                low = self.state[sender][0]
                total += max(gap) - low + 1 - len(gap)
        return total

    def summary(self) -> dict[str, Any]:
        """This connection's line of the run, as plain data for the master."""
        expected = sum(self._expect.values()) if self.open else 0
        delivered = sum(self._within(s, n) for s, n in self._expect.items()) if self.open else 0
        missing: list[str] = []
        if self.open:
            for s, n in sorted(self._expect.items()):
                if len(missing) >= SHOWN:
                    break
                entry = self.state.get(s)
                low = min(entry[0], n) if entry else 0
                gap = self.past_gap.get(s, set())
                for q in range(low, n):
                    if q not in gap:
                        missing.append(f"{sender_name(s)} message {q + 1}")
                        if len(missing) >= SHOWN:
                            break
        return {
            "name": self.name,
            "account": self.account,
            "where": self.where,
            "worker": self.worker,
            "sender": self.sender,
            "sent": self.sent,
            "received": sum(e[0] + e[2] for e in self.state.values())
            + sum(len(g) for g in self.past_gap.values()),
            "expected": expected,
            "delivered": delivered,
            "missing": expected - delivered,
            "missing_examples": missing,
            "skipped": self.skipped,
            "duplicates": sum(e[2] for e in self.state.values()),
            "out_of_order": sum(e[3] for e in self.state.values()),
            "errors": self.errors,
            "first_error": self.first_error,
            "others": self.others,
            "closed": closed_text(self.closed),
        }


def accepted_counts(senders: Iterable[Mapping[str, Any]]) -> dict[int, int]:
    """Per sender that stayed open through its sending: the messages it had accepted (sent,
    less the error frames it was answered)."""
    return {
        int(s["sender"]): max(0, int(s["sent"]) - int(s["errors"]))
        for s in senders
        if s.get("open") and s.get("sender") is not None
    }


@dataclass(frozen=True)
class LoadJudgement:
    """The verdict of a load run: failure lines per kind (loss, duplicates, disorder; empty:
    delivered), notes worth reporting, and the totals."""

    failures: dict[str, list[str]]
    notes: list[str]
    totals: dict[str, int]
    judged: int

    @property
    def delivered(self) -> bool:
        return not self.failures


#: A failure kind's requirement in the catalogue.
REQUIREMENT: Mapping[str, str] = MappingProxyType(
    {"loss": "LOAD-001", "duplicates": "LOAD-001", "disorder": "LOAD-003"}
)


def judge(connections: Sequence[Mapping[str, Any]], *, shown: int = 20) -> LoadJudgement:
    """Loss, duplicates and disorder over every connection's summary (:meth:`Tally.summary`).
    ``judged``: the connections that stayed open to the end (none: nothing was tested)."""
    failures: dict[str, list[str]] = {}
    notes: list[str] = []
    totals = {"expected": 0, "delivered": 0, "missing": 0, "duplicates": 0, "out_of_order": 0}
    judged = 0
    closed = 0

    def add(kind: str, line: str) -> None:
        lines = failures.setdefault(kind, [])
        if len(lines) < shown:
            lines.append(line)
        elif len(lines) == shown:
            lines.append("… and more (load.json has every connection)")

    # The worst connections first: the lines shown are the ones that matter most.
    worst_first = sorted(
        connections,
        key=lambda c: -(int(c["missing"]) + int(c["duplicates"]) + int(c["out_of_order"])),
    )
    for c in worst_first:
        where = f" ({c['where']})" if c.get("where") else ""
        who = f"{c['name']}{where}"
        totals["duplicates"] += int(c["duplicates"])
        totals["out_of_order"] += int(c["out_of_order"])
        if c.get("duplicates"):
            add("duplicates", f"{who} received {int(c['duplicates']):,} events more than once")
        if c.get("out_of_order"):
            add(
                "disorder",
                f"{who} received {int(c['out_of_order']):,} events after a later one of the "
                "same sender",
            )
        if c.get("closed"):
            # An ended connection tells its client the stream broke (with a close frame or
            # without: a heartbeat timeout, a TCP close): not loss, unless events went missing
            # before later ones of the same sender arrived (LOAD-002's rule).
            closed += 1
            if c.get("skipped"):
                add(
                    "loss",
                    f"{who} skipped {int(c['skipped']):,} events silently (later events of the "
                    f"same sender arrived), then was {c['closed']}",
                )
            elif closed <= shown:
                notes.append(
                    f"{who} {c['closed']} during the run: the connection ended (its client "
                    "knows the stream broke), not a silent loss"
                )
            continue
        judged += 1
        for key in ("expected", "delivered", "missing"):
            totals[key] += int(c[key])
        if c.get("missing"):
            examples = ", ".join(c.get("missing_examples") or [])
            add(
                "loss",
                f"{who} stayed open and missed {int(c['missing']):,} of "
                f"{int(c['expected']):,} events" + (f": {examples}" if examples else ""),
            )
        if c.get("errors"):
            notes.append(
                f"{who} was answered {int(c['errors']):,} error frames (an open refusal), the "
                f"first {c.get('first_error')!r}"
            )
    if closed > shown:
        notes.append(f"… and {closed - shown:,} more connections closed during the run")
    return LoadJudgement(failures=failures, notes=notes, totals=totals, judged=judged)
