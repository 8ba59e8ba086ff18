"""One connection of a test, without I/O: its buffered, schema-checked frames, what it sent,
its sentinels, how it ended; and the steps a wait takes on it, one per frame.

:meth:`ConnState.send` takes a frame about to leave and answers how long it must wait (the
server's rate limit); :meth:`ConnState.receive` takes a frame that arrived while a wait (an
:class:`~harness.core.checks.Expect`) is on and answers one step: :class:`~harness.core.checks.Hit`
(the frame waited for), :class:`~harness.core.checks.Fail` (the wait fails), :class:`Kept`
(buffered for a later wait) or :class:`Overflow` (a bound passed: the pump lets the connection
go); :meth:`ConnState.ended` takes its end. The test's state it shares with the other
connections is its :class:`Owner` (a :class:`harness.core.session.Session`).
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from harness.core.attribution import Attribution
from harness.core.bounds import FrameBuffer, frame_size, frame_too_big
from harness.core.checks import Expect, Fail, Hit, Judge
from harness.core.diagnosis import Traffic
from harness.core.failures import ConformanceFailure, ResourceLimit
from harness.core.frames import Frame, Predicate, event_matching, is_error, is_event, show
from harness.core.isolation import Ledger, Place
from harness.core.transcript import Entry, Transcript

#: Undocumented event fields remembered per test (each is reported once); a server inventing
#: a new one per frame gets its observations counted instead.
MAX_EXTRA_FIELDS = 1000
#: Frames a connection marks as unread at most (beyond, they show as read: cosmetic only).
MAX_UNREAD_MARKS = 10_000
#: What the harness says when a later frame's answer proves the awaited one is not coming.
ANSWERED_LATER = "no answer; the server answered a later frame (the sentinel sent after it) first"


class Facts(Protocol):
    """What a session needs to know of the target (a :class:`harness.target.Target` has it)."""

    @property
    def receive_timeout(self) -> float: ...
    @property
    def max_buffered_frames(self) -> int: ...
    @property
    def max_buffered_bytes(self) -> int: ...
    @property
    def max_received_frame_bytes(self) -> int: ...
    @property
    def max_frames_per_second(self) -> float | None: ...
    @property
    def host_name(self) -> str: ...
    @property
    def rooms(self) -> Mapping[str, str]: ...
    @property
    def accounts(self) -> Mapping[str, Any]: ...
    @property
    def lacking(self) -> frozenset[str]: ...
    @property
    def refusal(self) -> str: ...


class Owner(Protocol):
    """The test's state a connection shares (:class:`harness.core.session.Session` has it)."""

    target: Facts
    transcript: Transcript
    traffic: Traffic
    attribution: Attribution
    ledger: Ledger
    extra_fields: set[str]
    last_frame_at: float | None
    judge: Judge
    conns: list[ConnState]

    def observe(self, requirement: str, text: str) -> None: ...
    def send_interval(self) -> float | None: ...
    def owns(self, frame: Frame) -> bool: ...
    def gate_check(self, requirement: str) -> None: ...
    def rate_limited(self, frame: Frame) -> None: ...


# --- the steps of a wait (h11's events: small classes) --------------------------------------


@dataclass(frozen=True)
class Kept:
    """Not the frame waited for: buffered for a later wait."""

    frame: Frame


@dataclass(frozen=True)
class Overflow:
    """Keeping the frame passed a bound: the connection is let go, the test fails with it."""

    limit: ResourceLimit


Step = Hit | Fail | Kept | Overflow


@dataclass(frozen=True)
class EventWait:
    """A wait for a ``chat_message`` event, decided: what matches, how it reads in a failure,
    which basic it stands on (the gate blocks it at once when that basic proved failing), and
    the connection whose sentinel may prove it silent (``origin``, with the ``key`` of the
    frame it sent)."""

    match: Predicate
    expected: str
    basic: str | None
    origin: ConnState | None
    key: tuple[str, str | None]
    buffered: bool


def echo_of(frame: Frame, body: str) -> bool:
    """Whether ``frame`` is the ``new`` event of the text ``body``."""
    return is_event(frame, "new") and frame.get("body") == body


# --- one connection -----------------------------------------------------------------------


class ConnState:
    """One connection of a test: its buffered, schema-checked frames and what it sent."""

    def __init__(
        self,
        session: Owner,
        name: str,
        account: Any,
        room: str,
        node: int = 0,
        host: str | None = None,
    ) -> None:
        self.session = session
        self.name = name
        self.account = account
        #: The room's slug, and the room as the endpoint names it (host, slug): a room of
        #: another host may share the slug (``rooms.twin_host``).
        self.room = room
        self.place: Place = (host if host is not None else session.target.host_name, room)
        #: The endpoint it went to: an index into ``target.endpoints`` (``nodes``).
        self.node = node
        target = session.target
        #: Frames no wait asked for yet, kept for later checks (bounded: ``[limits]``).
        self.buffer = FrameBuffer(name, target.max_buffered_frames, target.max_buffered_bytes)
        self.closed: tuple[int | None, str] | None = None
        #: The bound this connection passed, if any: raised again by every later read.
        self.limit: ResourceLimit | None = None
        self.half_open = False
        #: The tokens this connection sent (bounded): its own content coming back to it is
        #: never another room's (:mod:`harness.core.isolation`).
        self.tokens: collections.deque[str] = collections.deque(maxlen=1024)
        #: When the next frame may leave, under the server's rate limit (the pump's clock).
        self.next_send = 0.0
        #: The last frames sent, to tell an echo of them (:mod:`harness.core.diagnosis`).
        self.sent: collections.deque[str | bytes] = collections.deque(maxlen=64)
        #: The transcript entry of the last frame read, and of each frame kept in the buffer
        #: by a wait it did not end (by id of the parsed frame): a frame no check ever reads
        #: stays marked unread (a passing test's report leaves it out).
        self.last_entry: Entry | None = None
        self.unread: dict[int, Entry] = {}
        #: The bodies this connection sent (bounded): a wait for a ``new`` event of one of them
        #: on this same connection is a wait for its echo (SEND-002).
        self.own: collections.deque[str] = collections.deque(maxlen=256)
        #: The message ids this connection sent an edit or a delete of (bounded): their
        #: ``update`` / ``delete`` events on this same connection are its own (SEND-002).
        self.edited: collections.deque[str] = collections.deque(maxlen=256)
        #: The ids of the messages this connection posted: a wait for their ``new`` event by
        #: id knows who sent it.
        self.posted: collections.deque[str] = collections.deque(maxlen=256)
        #: For a text this connection sent (``("new", body)``) or a message it edited or deleted
        #: (``("edit", id)``): the sentinel it sent after that frame, which every observer in
        #: the room may use (dropped at the next edit of the message).
        self.sentinels: dict[tuple[str, str | None], str] = {}
        #: Opened while another connection of its account was open in its room: the one a
        #: server serving one connection per account starves (BCAST-001, from the preflight).
        self.account_twice = account is not None and any(
            c.account == account and c.place == self.place and c.closed is None
            for c in session.conns
        )

    # sending -----------------------------------------------------------------------------

    def text(self, message: Any, timestamp: str | None, extra: Mapping[str, Any]) -> Frame:
        """A ``text`` frame of ``message`` (``timestamp`` None: without one)."""
        frame: dict[str, Any] = {"type": "text", "message": message}
        if isinstance(message, str):
            self.own.append(message)
        if timestamp is not None:
            frame["timestamp"] = timestamp
        frame.update(extra)
        return frame

    def update(
        self, message_id: Any, message: Any, timestamp: str, extra: Mapping[str, Any]
    ) -> Frame:
        """An ``update`` frame: its events are this connection's own from now on."""
        frame = {
            "type": "update",
            "messageId": message_id,
            "message": message,
            "timestamp": timestamp,
        }
        frame.update(extra)
        self._edits(message_id)
        return frame

    def delete(self, message_id: Any, timestamp: str, extra: Mapping[str, Any]) -> Frame:
        """A ``delete`` frame: its events are this connection's own from now on."""
        frame = {"type": "delete", "messageId": message_id, "timestamp": timestamp}
        frame.update(extra)
        self._edits(message_id)
        return frame

    def _edits(self, message_id: Any) -> None:
        self.edited.append(str(message_id))
        self.sentinels.pop(("edit", str(message_id)), None)

    def send(self, data: str | bytes, kind: str, now: float) -> float:
        """A frame is about to leave (``kind``: text, update, delete, other: what its content
        is in the room it goes to, :mod:`harness.core.isolation`). Logged, counted, its
        tokens noted; returns how long it must wait first under the server's rate limit."""
        session = self.session
        session.transcript.log(
            self.name, "->", show(data, limit=10**6) if isinstance(data, bytes) else data
        )
        if isinstance(data, str):
            self.tokens.extend(session.ledger.sent(self.place, data, kind))
        session.traffic.sent += 1
        self.sent.append(data)
        interval = session.send_interval()
        if interval is None:
            return 0.0
        delay = max(0.0, self.next_send - now)
        self.next_send = max(now, self.next_send) + interval
        return delay

    # receiving ---------------------------------------------------------------------------

    def judge(self, data: str | bytes) -> tuple[Frame, ConformanceFailure | None, int]:
        """A frame that arrived: logged, judged on its own, learned from (attribution, the
        ledger), counted; the parsed frame, the failure it earns (judged after what a wait
        forbids, so a check that forbids this very frame names its own requirement first) and
        its size."""
        session = self.session
        shown = show(data) if isinstance(data, bytes) else data
        self.last_entry = session.transcript.log(self.name, "<-", shown)
        judged = session.judge(data, session.extra_fields)
        session.attribution.learn(judged.frame)
        ledger = session.ledger
        ledger.learn(judged.frame)
        violation = judged.violation
        if violation is None and isinstance(data, str):
            # Another room's content, in a frame of any type (a history frame, say).
            violation = ledger.leak(
                self.place, data, judged.frame, self.name, self.tokens, self.edited
            )
        self.count(data, judged.violation is None)
        for requirement, text in judged.observations:
            session.observe(requirement, text)
        if len(session.extra_fields) < MAX_EXTRA_FIELDS:
            session.extra_fields |= judged.extra_fields
        return judged.frame, violation, frame_size(data)

    def receive(self, data: str | bytes, now: float, wait: Expect) -> Step:
        """A frame that arrived while ``wait`` is on: what it does to the wait."""
        frame, violation, size = self.judge(data)
        step = wait.feed(frame, violation)
        self.note(wait)
        if isinstance(step, Fail):
            return step
        if isinstance(step, Hit):
            self.session.last_frame_at = now
            return step
        return self.keep(frame, size, now)

    def keep(self, frame: Frame, size: int, now: float) -> Kept | Overflow:
        """Buffer a frame no wait took; past a bound the connection is let go."""
        limit = self.buffer.add(frame, size, now)
        if limit is not None:
            self.limit = limit
            self.session.transcript.log(
                self.name,
                "==",
                f"resource limit: {limit.actual}; the harness aborts the connection",
            )
            self.let_go()
            return Overflow(limit)
        if self.last_entry is not None and len(self.unread) < MAX_UNREAD_MARKS:
            self.last_entry.unread = True
            self.unread[id(frame)] = self.last_entry
        return Kept(frame)

    def scan(self, wait: Expect, now: float) -> Hit | Fail | None:
        """The frames already buffered, for a wait that begins: the step of the first that
        ends it (a hit is taken out of the buffer), or None."""
        found = wait.scan(self.buffer)
        self.note(wait)
        if found is None:
            return None
        index, step = found
        if isinstance(step, Hit):
            del self.buffer[index]
            entry = self.unread.pop(id(step.frame), None)
            if entry is not None:
                entry.unread = False
            self.session.last_frame_at = now
        return step

    def note(self, wait: Expect) -> None:
        """What frames of other clients would have broken, as observations."""
        for requirement, text in wait.notes:
            self.session.observe(requirement, text)
        wait.notes.clear()

    def count(self, data: str | bytes, chat_frame: bool) -> None:
        """Count a received frame in the session's traffic (:mod:`harness.core.diagnosis`)."""
        traffic = self.session.traffic
        traffic.received += 1
        if data in self.sent:
            traffic.echoed += 1
        if chat_frame:
            traffic.chat_frames += 1
        elif not traffic.first_other:
            shown = show(data) if isinstance(data, bytes) else data
            traffic.first_other = self.session.transcript.redacted(show(shown, 120))

    def count_only(self, data: str | bytes) -> None:
        """Count (never judge, never log) a frame that arrived after a failed test."""
        self.count(data, self.session.judge(data, ()).violation is None)

    def ended(
        self,
        code: int | None,
        reason: str = "",
        *,
        too_big: tuple[int | None, int] | None = None,
        app_error: str | None = None,
    ) -> ResourceLimit | None:
        """The connection closed (``code`` None: no close frame); ``too_big`` (the size the
        frame announced, what was read of it): because the harness refused a frame over
        ``max_received_frame_bytes``. Returns the bound passed, for the pump to raise."""
        if self.limit is None and too_big is not None:
            size, read = too_big
            self.closed = (None, "frame too big: close 1009 sent by the harness")
            self.limit = frame_too_big(
                self.name, size, self.session.target.max_received_frame_bytes, read
            )
            self.session.transcript.log(self.name, "==", f"resource limit: {self.limit.actual}")
        if self.limit is not None:
            return self.limit
        if self.closed is None:
            self.closed = (code, reason)
            how = (
                f"close {code} {reason!r}"
                if code is not None
                else "connection lost (no close frame)"
            )
            self.session.transcript.log(self.name, "==", how)
            if app_error:  # an in-process application's exception
                self.session.transcript.log(self.name, "==", app_error)
        return None

    def let_go(self) -> None:
        """The harness drops the connection (a server that floods would not complete a close
        handshake), and everything buffered for it; the pump aborts the transport."""
        self.closed = (None, "aborted by the harness (a resource limit)")
        self.buffer.clear()

    def closed_text(self) -> str:
        if self.closed is None:
            return "open"
        code, reason = self.closed
        return (
            f"close code {code}" + (f" {reason!r}" if reason else "") if code else "no close frame"
        )

    def forget(self) -> None:
        self.buffer.clear()
        self.sent.clear()
        self.unread.clear()

    # what a wait stands on ---------------------------------------------------------------

    def wait(
        self,
        match: Predicate | None,
        requirement: str,
        expected: str,
        forbidden: Predicate | None = None,
        forbidden_requirement: str | None = None,
    ) -> Expect:
        """A wait on this connection, judging only the frames the test owns."""
        return Expect(
            match,
            requirement,
            expected,
            self.name,
            forbidden,
            forbidden_requirement,
            owns=self.session.owns,
        )

    def begin(self, requirement: str, basic: str | None) -> None:
        """Before a wait reads the socket: blocked at once when the gate proved its requirement
        or the basic it stands on failing (and BCAST-001 for a second connection of one
        account)."""
        session = self.session
        session.gate_check(requirement)
        if basic is not None:
            session.gate_check(basic)
            if self.account_twice:
                session.gate_check("BCAST-001")

    def senders_of(self, action: str, body: str | None, message_id: str | None) -> list[ConnState]:
        """The connections of this test (this one first) that sent the frame whose event is
        awaited: the text of ``body`` (a ``new`` event), or an edit or delete of ``message_id``
        (an ``update`` / ``delete`` event)."""
        conns = (self, *self.session.conns)
        if action == "new" and body is not None:
            found = [c for c in conns if body in c.own]
        elif action == "new" and message_id is not None:
            found = [c for c in conns if message_id in c.posted]
        elif action in ("update", "delete") and message_id is not None:
            found = [c for c in conns if message_id in c.edited]
        else:
            return []
        return list({id(c): c for c in found}.values())

    def stands_on(self, *senders: ConnState) -> str:
        """What a wait on this connection for the events of ``senders`` stands on: SEND-002
        for its own, NODE-001 when one of them is on another node, else SEND-003."""
        if all(s is self for s in senders):
            return "SEND-002"
        return "NODE-001" if any(s.node != self.node for s in senders) else "SEND-003"

    def basic_of(self, senders: list[ConnState]) -> str | None:
        """What a wait for the event of the senders' frame stands on: its echo (SEND-002) if
        this connection sent it, the fan-out (SEND-003) if another connection of the test did,
        delivery across nodes (NODE-001) if that connection is on another node."""
        if not senders:
            return None
        if senders[0] is self:
            return "SEND-002"
        return "NODE-001" if senders[0].node != self.node else "SEND-003"

    def origin_of(self, senders: list[ConnState]) -> ConnState | None:
        """The one connection that sent the frame whose event is awaited, if it is still open
        and in this room (events of different senders have no order): it sends the sentinel."""
        if len(senders) != 1:
            return None
        (origin,) = senders
        return origin if origin.closed is None and origin.place == self.place else None

    def event_wait(self, action: str, id: str | None, body: str | None) -> EventWait:
        """What a wait for a ``chat_message`` ``action`` event (of message ``id`` or with
        ``body``) on this connection is."""
        what = f"a chat_message {action!r} event" + (f" for id {id}" if id else "")
        if body is not None:
            what += f" with body {show(body, 60)!r}"
        match = event_matching(action, id=id, body=body)
        senders = self.senders_of(action, body, id)
        basic = self.basic_of(senders)
        return EventWait(
            match=match,
            expected=what + f" on {self.name}",
            basic=basic or ("BCAST-001" if self.account_twice else None),
            origin=self.origin_of(senders),
            key=("new", body) if action == "new" else ("edit", id),
            buffered=any(map(match, self.buffer)),
        )

    def silence(
        self, requirement: str, expected: str, *, error: bool = False
    ) -> ConformanceFailure:
        """The awaited frame is not coming: the sentinel sent after it was answered first
        (one connection's frames are handled in order). With the error frame the server sent
        meanwhile, if any; a frame refused under the rate limit is not tested instead."""
        answered = None
        if not error:
            answered = next((f for f in self.buffer if is_error(f)), None)
            if answered is not None:
                self.session.rate_limited(answered)
        failure = ConformanceFailure(
            requirement,
            expected,
            ANSWERED_LATER + (f"; it had sent {show(answered)}" if answered is not None else ""),
        )
        failure.frame_awaited = True  # silence, proven: in a crowd, not a verdict
        return failure
