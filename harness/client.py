"""The recording client: the only part of the harness that touches sockets.

Every handshake, frame and close goes into a :class:`Transcript` (redacted); every server frame is
checked against its schema as it arrives. Tests talk to the server through :class:`Chat` (the
``chat`` fixture) and :class:`Conn`, and check with the verifiers here, which raise
:class:`~harness.core.failures.ConformanceFailure` naming the requirement.

Whatever a server sends, what the client holds stays bounded (:mod:`harness.core.bounds`): a frame
over ``limits.max_received_frame_bytes`` is refused from its header, the frames kept for later
checks are bounded by ``limits.max_buffered_frames`` / ``max_buffered_bytes``, and websockets
stops reading while :data:`MAX_QUEUE` frames wait to be read. Passing a bound raises
:class:`~harness.core.failures.ResourceLimit` in the test that received the frame.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    PayloadTooBig,
)

from harness import asgi, handshake, redact
from harness import tls as tls_mod
from harness.core.attribution import Attribution
from harness.core.bounds import FrameBuffer, frame_size, frame_too_big
from harness.core.catalogue import NEEDS
from harness.core.checks import Expect, Fail, Hit, judge_server_frame
from harness.core.diagnosis import Traffic
from harness.core.failures import (
    ConformanceFailure,
    ConformanceTimeout,
    HarnessError,
    NotTested,
    ResourceLimit,
)
from harness.core.frames import (
    Frame,
    Predicate,
    check_error_text,
    event_matching,
    is_error,
    is_event,
    show,
)
from harness.core.gate import PACE, Gate
from harness.core.isolation import Ledger, Place
from harness.core.transcript import Entry, Transcript
from harness.handshake import Refusal
from harness.target import Account, Target, address_of
from harness.tokens import Minter

#: Frames websockets reads ahead of the test (its default): past this it stops reading the socket
#: until the test takes one, so a flood waits in the server's send buffer, not in ours.
MAX_QUEUE = 16
#: Observations kept per requirement in one test; more are counted on one line.
MAX_OBSERVATIONS = 50
#: Undocumented event fields remembered per test (each is reported once); a server inventing
#: a new one per frame gets its observations counted (:data:`MAX_OBSERVATIONS`) instead.
MAX_EXTRA_FIELDS = 1000
#: How long a close frame the harness sent may take to leave, before the transport is aborted.
CLOSE_GRACE = 0.5


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- a connection -------------------------------------------------------------------------


class Transport(Protocol):
    """What a :class:`Conn` needs of its connection's transport (an asyncio one has it)."""

    def abort(self) -> None: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...

    def get_write_buffer_size(self) -> int: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class Socket(Protocol):
    """What a :class:`Conn` needs of its WebSocket (websockets' ``ClientConnection`` has it;
    so does :class:`harness.asgi.AsgiSocket`)."""

    @property
    def transport(self) -> Transport: ...

    async def send(self, message: str | bytes) -> None: ...

    async def recv(self) -> str | bytes: ...

    async def close(self) -> None: ...


Opener = Callable[
    [str, dict[str, str], list[str] | None, int | None],
    Awaitable["tuple[Socket, int] | Refusal"],
]


class BoundedConnection(ClientConnection):
    """websockets' client connection, that lets go at once of a server sending too large a frame.

    websockets reads a frame's header before its payload: a frame announcing more than
    ``max_size`` fails the connection with close code 1009 before any of it is buffered. Then,
    as RFC 6455 7.1.7 has it, the client waits for the server to close the TCP connection, up to
    ``close_timeout``, discarding what comes; a hostile server never closes and keeps sending.
    So once the close frame has gone out, the transport is aborted: the pending ``recv()`` raises
    ``ConnectionClosedError`` at once, its ``sent`` the 1009 and its ``__cause__`` the
    ``PayloadTooBig`` (with the announced ``size`` and ``max_size``).
    """

    _aborting = False

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._aborting and isinstance(self.protocol.parser_exc, PayloadTooBig):
            self._aborting = True
            transport = self.transport
            if transport.get_write_buffer_size() == 0:
                transport.abort()
            else:  # the close frame still waits to be written: a short grace, then abort
                transport.close()
                self.loop.call_later(CLOSE_GRACE, transport.abort)


#: Frames a connection marks as unread at most (beyond, they show as read: cosmetic only).
MAX_UNREAD_MARKS = 10_000


def _echo_of(frame: Frame, body: str) -> bool:
    return is_event(frame, "new") and frame.get("body") == body


class Conn:
    """One WebSocket connection of a test, with its buffered, schema-checked frames."""

    def __init__(
        self,
        chat: Chat,
        name: str,
        ws: Socket,
        account: Account | None,
        room: str,
        node: int = 0,
        host: str | None = None,
    ) -> None:
        self.chat = chat
        self.name = name
        self.ws = ws
        self.account = account
        #: The room's slug, and the room as the endpoint names it (host, slug): a room of
        #: another host may share the slug (``rooms.twin_host``).
        self.room = room
        self.place: Place = (host if host is not None else chat.target.host_name, room)
        #: The tokens this connection sent (bounded): its own content coming back to it is
        #: never another room's (:mod:`harness.core.isolation`).
        self._tokens: collections.deque[str] = collections.deque(maxlen=1024)
        #: When the next frame may leave, under the server's rate limit (monotonic).
        self._next_send = 0.0
        #: The endpoint it went to: an index into ``target.endpoints`` (``nodes``).
        self.node = node
        target = chat.target
        #: Frames no wait asked for yet, kept for later checks (bounded: ``[limits]``).
        self.buffer = FrameBuffer(name, target.max_buffered_frames, target.max_buffered_bytes)
        self.closed: tuple[int | None, str] | None = None
        #: The bound this connection passed, if any: raised again by every later read.
        self.limit: ResourceLimit | None = None
        self.half_open = False
        #: The last frames sent, to tell an echo of them (:mod:`harness.core.diagnosis`).
        self._sent: collections.deque[str | bytes] = collections.deque(maxlen=64)
        #: The transcript entry of the last frame read, and of each frame kept in the buffer
        #: by a wait it did not end (by id of the parsed frame): a frame no check ever reads
        #: stays marked unread (a passing test's report leaves it out).
        self._last_entry: Entry | None = None
        self._unread: dict[int, Entry] = {}
        #: The bodies this connection sent (bounded): a wait for a ``new`` event of one of them
        #: on this same connection is a wait for its echo (SEND-002).
        self._own: collections.deque[str] = collections.deque(maxlen=256)
        #: The message ids this connection sent an edit or a delete of (bounded): their
        #: ``update`` / ``delete`` events on this same connection are its own (SEND-002).
        self._edited: collections.deque[str] = collections.deque(maxlen=256)
        #: The ids of the messages this connection posted (:meth:`Chat.post`): a wait for their
        #: ``new`` event by id knows who sent it.
        self._posted: collections.deque[str] = collections.deque(maxlen=256)
        #: For a text this connection sent (``("new", body)``) or a message it edited or deleted
        #: (``("edit", id)``): the sentinel it sent after that frame, which every observer in
        #: the room may use (dropped at the next edit of the message).
        self._sentinels: dict[tuple[str, str | None], str] = {}
        #: Opened while another connection of its account was open in its room: the one a
        #: server serving one connection per account starves (BCAST-001, from the preflight).
        self.account_twice = account is not None and any(
            c.account == account and c.place == self.place and c.closed is None for c in chat.conns
        )

    # sending -----------------------------------------------------------------------------

    async def send_raw(self, data: str | bytes, kind: str = "other") -> None:
        """Send one frame as it is; ``kind`` (text, update, delete, other): what its content
        is in the room it goes to (:mod:`harness.core.isolation`)."""
        self.chat.transcript.log(
            self.name, "->", show(data, limit=10**6) if isinstance(data, bytes) else data
        )
        if isinstance(data, str):
            self._tokens.extend(self.chat.ledger.sent(self.place, data, kind))
        await self._pace()
        self.chat.traffic.sent += 1
        self._sent.append(data)
        try:
            await self.ws.send(data)
        except ConnectionClosed as exc:
            self._note_closed(exc)

    async def _pace(self) -> None:
        """Under the server's rate limit: wait until this connection may send again."""
        interval = self.chat.send_interval()
        if interval is None:
            return
        now = time.monotonic()
        if self._next_send > now:
            await asyncio.sleep(self._next_send - now)
        self._next_send = max(now, self._next_send) + interval

    async def send_json(self, frame: Any, kind: str = "other") -> None:
        await self.send_raw(json.dumps(frame, ensure_ascii=False), kind)

    async def send_text(self, message: Any, *, timestamp: bool = True, **extra: Any) -> None:
        frame: dict[str, Any] = {"type": "text", "message": message}
        if isinstance(message, str):
            self._own.append(message)
        if timestamp:
            frame["timestamp"] = now_rfc3339()
        frame.update(extra)
        await self.send_json(frame, "text")

    async def send_update(self, message_id: Any, message: Any, **extra: Any) -> None:
        frame = {
            "type": "update",
            "messageId": message_id,
            "message": message,
            "timestamp": now_rfc3339(),
        }
        frame.update(extra)
        self._edited.append(str(message_id))
        self._sentinels.pop(("edit", str(message_id)), None)
        await self.send_json(frame, "update")

    async def send_delete(self, message_id: Any, **extra: Any) -> None:
        frame = {"type": "delete", "messageId": message_id, "timestamp": now_rfc3339()}
        frame.update(extra)
        self._edited.append(str(message_id))
        self._sentinels.pop(("edit", str(message_id)), None)
        await self.send_json(frame, "delete")

    # receiving ---------------------------------------------------------------------------

    def _note_closed(self, exc: ConnectionClosed) -> None:
        """Record how the connection closed; a close because the server's frame passed
        ``max_received_frame_bytes`` raises :class:`ResourceLimit`."""
        cause = exc.__cause__
        if self.limit is None and isinstance(cause, PayloadTooBig):
            self.closed = (None, "frame too big: close 1009 sent by the harness")
            self.limit = frame_too_big(
                self.name,
                getattr(cause, "size", None),
                self.chat.target.max_received_frame_bytes,
                getattr(cause, "current_size", None) or 0,
            )
            self.chat.transcript.log(self.name, "==", f"resource limit: {self.limit.actual}")
        if self.limit is not None:
            raise self.limit from None  # what websockets raised adds nothing to it
        if self.closed is None:
            code = exc.rcvd.code if exc.rcvd else None
            reason = exc.rcvd.reason if exc.rcvd else ""
            self.closed = (code, reason)
            how = (
                f"close {code} {reason!r}"
                if code is not None
                else "connection lost (no close frame)"
            )
            self.chat.transcript.log(self.name, "==", how)
            if isinstance(cause, asgi.AppError):  # an in-process application's exception
                self.chat.transcript.log(self.name, "==", str(cause))

    def _keep(self, frame: Frame, size: int) -> None:
        """Buffer a frame no check asked for yet; past a bound, close and raise ResourceLimit."""
        limit = self.buffer.add(frame, size, time.monotonic())
        if limit is None:
            return
        self.limit = limit
        self.chat.transcript.log(
            self.name, "==", f"resource limit: {limit.actual}; the harness aborts the connection"
        )
        self._let_go()
        raise limit

    def _let_go(self) -> None:
        """Drop the connection without a close handshake (a server that floods would not
        complete it), and everything buffered for it."""
        self.closed = (None, "aborted by the harness (a resource limit)")
        self.buffer.clear()
        transport = self.ws.transport
        if transport is not None:
            transport.abort()

    async def _recv(self, timeout: float) -> tuple[Frame, ConformanceFailure | None, int]:
        """The next frame, parsed, with the failure it earns on its own (if any), and its size.

        Raises TimeoutError, ConnectionClosed or ResourceLimit. The violation is returned, not
        raised, so that a check that forbids this very frame can name its own requirement first.
        """
        if self.limit is not None:
            raise self.limit
        async with asyncio.timeout(timeout):
            data = await self.ws.recv()
        shown = show(data) if isinstance(data, bytes) else data
        self._last_entry = self.chat.transcript.log(self.name, "<-", shown)
        judged = judge_server_frame(data, self.chat.extra_fields)
        self.chat.attribution.learn(judged.frame)
        ledger = self.chat.ledger
        ledger.learn(judged.frame)
        violation = judged.violation
        if violation is None and isinstance(data, str):
            # Another room's content, in a frame of any type (a history frame, say): judged
            # after what the wait forbids, as a schema violation is.
            violation = ledger.leak(
                self.place, data, judged.frame, self.name, self._tokens, self._edited
            )
        self._count(data, judged.violation is None)
        for requirement, text in judged.observations:
            self.chat.observe(requirement, text)
        if len(self.chat.extra_fields) < MAX_EXTRA_FIELDS:
            self.chat.extra_fields |= judged.extra_fields
        return judged.frame, violation, frame_size(data)

    def _count(self, data: str | bytes, chat_frame: bool) -> None:
        """Count a received frame in the session's traffic (:mod:`harness.core.diagnosis`)."""
        traffic = self.chat.traffic
        traffic.received += 1
        if data in self._sent:
            traffic.echoed += 1
        if chat_frame:
            traffic.chat_frames += 1
        elif not traffic.first_other:
            shown = show(data) if isinstance(data, bytes) else data
            traffic.first_other = redact.redact(show(shown, 120))

    async def count_pending(self, limit: int = 20, wait: float = 0.02) -> None:
        """Count (never judge, never log) up to ``limit`` frames that arrived and no check read:
        after a failed test, so that the traffic says what the endpoint answered (an echo on a
        connection the test never read again is still an echo). Each read waits ``wait``."""
        if self.closed is not None or self.half_open or self.limit is not None:
            return
        for _ in range(limit):
            try:
                async with asyncio.timeout(wait):
                    data = await self.ws.recv()
            except Exception:
                return
            self._count(data, judge_server_frame(data, set()).violation is None)

    async def wait_for(
        self,
        predicate: Predicate,
        *,
        requirement: str,
        expected: str,
        forbidden: Predicate | None = None,
        forbidden_requirement: str | None = None,
        timeout: float | None = None,
        basic: str | None = None,
    ) -> Frame:
        """The first frame matching ``predicate`` (buffered ones first).

        A frame matching ``forbidden`` before it fails ``forbidden_requirement``. Frames that
        match neither stay in the buffer for later waits (strangers' traffic, other checks).
        The judging is :class:`~harness.core.checks.Expect`'s; this only reads. ``basic``: the
        basic the awaited frame stands on (SEND-002 for this connection's own ``new`` event,
        SEND-003 for another connection's): the wait is blocked at once when the preflight or a
        probe proved that basic failing.
        """
        check = Expect(
            predicate,
            requirement,
            expected,
            self.name,
            forbidden,
            forbidden_requirement,
            owns=self.chat.owns,
        )
        found = check.scan(self.buffer)
        self._note(check)
        if found is not None:
            index, step = found
            if isinstance(step, Fail):
                raise step.failure
            del self.buffer[index]
            entry = self._unread.pop(id(step.frame), None)
            if entry is not None:
                entry.unread = False
            self.chat.last_frame_at = time.monotonic()
            return step.frame
        self.chat.gate_check(requirement)
        if basic is not None:
            self.chat.gate_check(basic)
            if self.account_twice:
                self.chat.gate_check("BCAST-001")
        limit = self.chat.target.receive_timeout if timeout is None else timeout
        return await self._drive(check, limit)

    async def _drive(self, check: Expect, limit: float) -> Frame:
        """Feed frames to ``check`` until it hits or fails; unmatched frames are buffered."""
        deadline = time.monotonic() + limit
        while True:
            if self.limit is not None:
                raise self.limit
            if self.closed is not None:
                raise check.closed(self._closed_text())
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                frame, violation, size = await self._recv(remaining)
            except TimeoutError:
                raise check.timed_out(limit, len(self.buffer)) from None
            except ConnectionClosed as exc:
                self._note_closed(exc)
                continue
            step = check.feed(frame, violation)
            self._note(check)
            if isinstance(step, Fail):
                raise step.failure
            if isinstance(step, Hit):
                self.chat.last_frame_at = time.monotonic()
                return step.frame
            self._keep(frame, size)
            if self._last_entry is not None and len(self._unread) < MAX_UNREAD_MARKS:
                self._last_entry.unread = True
                self._unread[id(frame)] = self._last_entry

    def _note(self, check: Expect) -> None:
        """What frames of other clients would have broken, as observations."""
        for requirement, text in check.notes:
            self.chat.observe(requirement, text)
        check.notes.clear()

    def _closed_text(self) -> str:
        if self.closed is None:
            return "open"
        code, reason = self.closed
        return (
            f"close code {code}" + (f" {reason!r}" if reason else "") if code else "no close frame"
        )

    async def expect_event(
        self,
        action: str,
        *,
        requirement: str,
        id: str | None = None,
        body: str | None = None,
        forbidden: Predicate | None = None,
        forbidden_requirement: str | None = None,
    ) -> dict[str, Any]:
        what = f"a chat_message {action!r} event" + (f" for id {id}" if id else "")
        if body is not None:
            what += f" with body {show(body, 60)!r}"
        expected = what + f" on {self.name}"
        match = event_matching(action, id=id, body=body)
        senders = self._senders_of(action, body, id)
        basic = self._basic_of(senders)
        gated = basic or ("BCAST-001" if self.account_twice else None)
        wait = functools.partial(
            self.wait_for,
            requirement=requirement,
            expected=expected,
            forbidden=forbidden,
            forbidden_requirement=forbidden_requirement,
            basic=gated,
        )
        # The event of a frame a connection of this test and room sent (this one or another):
        # silence is proven by a sentinel that connection sends after it, as for an error.
        # Events of one sender arrive in order (BCAST-004): the sentinel's `new` event arriving
        # first means the awaited one is not coming. Sent only when the event is late (a
        # grace of a few round trips), so a healthy server sees no extra traffic.
        key = ("new", body) if action == "new" else ("edit", id)
        origin = self._origin_of(senders)
        after = None
        if origin is not None and not any(map(match, self.buffer)):
            after = origin._sentinels.get(key)
            grace = self.chat.sentinel_grace()
            if after is None and grace is not None:
                start = time.monotonic()
                try:
                    return cast(dict[str, Any], await wait(match, timeout=grace))
                except ConformanceTimeout as exc:
                    if not exc.frame_awaited:
                        raise  # not the grace running out (a basic proved failing, say)
                after = await origin._sentinel_for(key)
                if after is None:
                    rest = self.chat.target.receive_timeout - (time.monotonic() - start)
                    return cast(dict[str, Any], await wait(match, timeout=max(rest, 0.0)))
        if after is None:
            return cast(dict[str, Any], await wait(match))
        sentinel = after
        frame: dict[str, Any] = await wait(lambda f: match(f) or _echo_of(f, sentinel))
        if not match(frame):
            answered = next((f for f in self.buffer if is_error(f)), None)
            if answered is not None:
                self.chat.rate_limited(answered)
            failure = ConformanceFailure(
                requirement,
                expected,
                "no answer; the server answered a later frame (the sentinel sent after it) first"
                + (f"; it had sent {show(answered)}" if answered is not None else ""),
            )
            failure.frame_awaited = True  # silence, proven: in a crowd, not a verdict
            raise failure
        return frame

    def _senders_of(self, action: str, body: str | None, message_id: str | None) -> list[Conn]:
        """The connections of this test (this one first) that sent the frame whose event is
        awaited: the text of ``body`` (a ``new`` event), or an edit or delete of ``message_id``
        (an ``update`` / ``delete`` event)."""
        if action == "new" and body is not None:
            return list({id(c): c for c in (self, *self.chat.conns) if body in c._own}.values())
        if action == "new" and message_id is not None:
            conns = (self, *self.chat.conns)
            return list({id(c): c for c in conns if message_id in c._posted}.values())
        if action in ("update", "delete") and message_id is not None:
            return list(
                {id(c): c for c in (self, *self.chat.conns) if message_id in c._edited}.values()
            )
        return []

    def stands_on(self, *senders: Conn) -> str:
        """What a wait on this connection for the events of ``senders`` stands on (for a
        custom :meth:`wait_for`): SEND-002 for its own, NODE-001 when one of them is on another
        node, else SEND-003."""
        if all(s is self for s in senders):
            return "SEND-002"
        return "NODE-001" if any(s.node != self.node for s in senders) else "SEND-003"

    def _basic_of(self, senders: list[Conn]) -> str | None:
        """What a wait for the event of the senders' frame stands on: its echo (SEND-002) if
        this connection sent it, the fan-out (SEND-003) if another connection of the test did,
        delivery across nodes (NODE-001) if that connection is on another node."""
        if not senders:
            return None
        if senders[0] is self:
            return "SEND-002"
        return "NODE-001" if senders[0].node != self.node else "SEND-003"

    def _origin_of(self, senders: list[Conn]) -> Conn | None:
        """The one connection that sent the frame whose event is awaited, if it is still open
        and in this room (events of different senders have no order): it sends the sentinel."""
        if len(senders) != 1:
            return None
        (origin,) = senders
        return origin if origin.closed is None and origin.place == self.place else None

    async def _sentinel_for(self, key: tuple[str, str | None]) -> str | None:
        """The sentinel sent after this connection's frame ``key`` (sent now, the first time
        it is asked for; shared by every connection that awaits that frame's event)."""
        if key not in self._sentinels:
            body = await self._sentinel_after()
            if body is None:
                return None
            self._sentinels[key] = body
        return self._sentinels[key]

    async def expect_error(
        self,
        text: str | None,
        *,
        requirement: str,
        forbidden: Predicate | None = None,
        forbidden_requirement: str | None = None,
    ) -> str:
        """The next error frame; with ``text``, it must say exactly that.

        Silence is proven, not waited out: a sentinel text goes right after the frame under
        test, and its echo arriving first (one connection's frames are handled in order) fails
        the check at once: "no answer; the server answered a later frame"."""
        expected = f'{{"error": "{text}"}}' if text else "an error frame"
        after = await self._sentinel_after()
        frame = await self.wait_for(
            is_error if after is None else lambda f: is_error(f) or _echo_of(f, after),
            requirement=requirement,
            expected=f"{expected} on {self.name}",
            forbidden=forbidden,
            forbidden_requirement=forbidden_requirement,
        )
        if after is not None and not is_error(frame):
            failure = ConformanceFailure(
                requirement,
                f"{expected} on {self.name}",
                "no answer; the server answered a later frame (the sentinel sent after it) first",
            )
            failure.frame_awaited = True  # silence, proven: in a crowd, not a verdict
            raise failure
        if text is None or frame.get("error") != text:
            self.chat.rate_limited(frame)  # refused for going too fast: says nothing here
        if text is not None:
            check_error_text(requirement, text, frame)
        return str(frame.get("error"))

    async def _sentinel_after(self) -> str | None:
        """Send a sentinel text now, if this connection can prove silence with one: it is open
        and the preflight saw the server return a sender's own event."""
        gate = self.chat.gate
        if self.closed is not None or gate is None or not gate.echo_seen:
            return None
        if gate.blocked_by("SEND-002"):  # echoes seen at first, gone since (a probe found)
            return None
        body = self.chat.nonce("after")
        try:
            await self.send_text(body)
        except ConnectionClosed:
            return None
        return body

    async def expect_nothing_before(
        self,
        sentinel: str,
        forbidden: Predicate,
        *,
        requirement: str,
        what: str,
        arrival_requirement: str | None = None,
    ) -> None:
        """Prove absence: the sentinel message (already sent in this room) arrives, and nothing
        matching ``forbidden`` came before it (delivery on one connection is FIFO). A sentinel
        that never arrives fails ``arrival_requirement`` (default: ``requirement``)."""
        await self.wait_for(
            event_matching("new", body=sentinel),
            requirement=arrival_requirement or requirement,
            expected=f"no {what} before the sentinel on {self.name}",
            forbidden=forbidden,
            forbidden_requirement=requirement,
            basic=self._basic_of(self._senders_of("new", sentinel, None)),
        )

    async def wait_closed(
        self,
        timeout: float,
        until: Predicate | None = None,
        forbidden: Predicate | None = None,
        forbidden_requirement: str = "",
    ) -> tuple[int | None, str] | None:
        """Drain until the connection closes; None if still open after ``timeout`` (or once a
        frame matching ``until`` arrived). Frames seen stay in the buffer for the caller; one
        matching ``forbidden`` fails ``forbidden_requirement`` at once.
        """
        if self.limit is not None:
            raise self.limit
        if until is not None and any(until(f) for f in self.buffer):
            return None
        check = Expect(
            None,
            forbidden_requirement,
            "nothing of the kind",
            self.name,
            forbidden,
            owns=self.chat.owns,
        )
        deadline = time.monotonic() + timeout
        while self.closed is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                frame, violation, size = await self._recv(remaining)
            except TimeoutError:
                return None
            except ConnectionClosed as exc:
                self._note_closed(exc)
                break
            step = check.feed(frame, violation)
            self._note(check)
            if isinstance(step, Fail):
                raise step.failure
            self._keep(frame, size)
            if until is not None and until(frame):
                return None
        return self.closed

    async def is_served(self, requirement: str) -> None:
        """The connection is open and its next valid frame is served (its own event returns)."""
        body = self.chat.nonce("alive")
        await self.send_text(body)
        await self.expect_event("new", body=body, requirement=requirement)

    def abort(self) -> None:
        """Vanish without a close handshake: a TCP reset."""
        self.chat.transcript.log(self.name, "==", "TCP reset (no close handshake)")
        transport = self.ws.transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        self.closed = (None, "aborted by the test")

    def stop_reading(self, why: str = "half-open") -> None:
        """Become half-open: keep the TCP connection but never read again (until
        :meth:`resume_reading`)."""
        self.chat.transcript.log(self.name, "==", f"stops reading ({why})")
        self.ws.transport.pause_reading()
        self.half_open = True

    def resume_reading(self) -> None:
        """Read again after :meth:`stop_reading` (a reader that lagged)."""
        self.chat.transcript.log(self.name, "==", "reads again")
        self.half_open = False
        self.ws.transport.resume_reading()

    async def close(self) -> None:
        """The closing handshake, bounded by the receive timeout. Frames still coming are read
        and dropped meanwhile: websockets stops reading while :data:`MAX_QUEUE` frames wait, and
        the server's close reply would wait behind them. A server that sends more than
        ``limits.max_buffered_frames`` frames after the close frame is flooding: the
        connection is aborted."""
        if self.half_open and self.closed is None:
            self.abort()
        if self.closed is None:
            drain = asyncio.ensure_future(self._drop_incoming())
            try:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.chat.target.receive_timeout):
                        await self.ws.close()
            finally:
                drain.cancel()
                await asyncio.gather(drain, return_exceptions=True)
            self.closed = (1000, "closed by the test")
            self.chat.transcript.log(self.name, "==", "close 1000 (by the harness)")

    async def _drop_incoming(self) -> None:
        dropped = 0
        with contextlib.suppress(Exception):
            while dropped <= self.buffer.max_frames:
                await self.ws.recv()
                dropped += 1
            self.chat.transcript.log(
                self.name,
                "==",
                f"{dropped:,} frames after the harness's close frame, over "
                "limits.max_buffered_frames: the harness aborts the connection",
            )
            self.ws.transport.abort()


class HalfOpen:
    """A raw connection that stopped reading after its handshake (see :meth:`Chat.half_open`)."""

    def __init__(self, name: str, writer: asyncio.StreamWriter) -> None:
        self.name = name
        self.writer = writer

    def close(self) -> None:
        self.writer.transport.abort()


# --- the per-test session -----------------------------------------------------------------


class Chat:
    """Everything a test needs to talk to the target: the ``chat`` fixture."""

    def __init__(
        self, target: Target, minter: Minter | None = None, opener: Opener | None = None
    ) -> None:
        self.target = target
        #: How a connection is opened: websockets by default, the application in-process for
        #: an ``[asgi]`` target; tests of the harness plug an in-memory server here
        #: (``tests/fakewire.py``).
        self.opener: Opener = opener or (
            self.open_asgi if target.asgi_app is not None else self.open_websocket
        )
        self.minter = minter or Minter(target.auth)
        self.transcript = Transcript()
        self.observations: dict[str, list[str]] = {}
        #: What the test measured, per requirement, for the report's tables and plots (plain
        #: data: it travels to the controller).
        self.figures: dict[str, dict[str, Any]] = {}
        self.conns: list[Conn] = []
        self.half_opens: list[HalfOpen] = []
        #: Connections opened so far: the next one goes to endpoint ``opened % len(endpoints)``
        #: (round-robin across ``nodes``).
        self.opened = 0
        self._names: dict[str, int] = {}
        self.extra_fields: set[str] = set()
        self._more_observations: dict[str, int] = {}
        #: What went over the wire, counted (:mod:`harness.core.diagnosis`).
        self.traffic = Traffic()
        #: When a wait last got the frame it waited for (monotonic): a test out of time while
        #: its waits are still answered is slow, not failed (:func:`harness.runner.too_slow`).
        self.last_frame_at: float | None = None
        #: The requirements of the test this session serves, and the run's preflight findings
        #: and breaker (:mod:`harness.core.gate`); set by the plugin.
        self.own: tuple[str, ...] = ()
        self.gate: Gate | None = None
        #: What this test can call its own: its nonces, and the ids of its messages.
        self.attribution = Attribution()
        #: Which room each of them belongs to (every frame is searched for other rooms').
        self.ledger = Ledger()

    def sentinel_grace(self) -> float | None:
        """How long a wait for an event goes on before the sender's sentinel is sent: five of
        the preflight's round trips (at least 0.25 s), at most half of ``receive_timeout``. None
        without the preflight's evidence that a sender's own events come back (then a sentinel
        proves nothing)."""
        gate = self.gate
        if gate is None or not gate.echo_seen:
            return None
        return min(self.target.receive_timeout / 2, max(0.25, 5 * gate.round_trip_s))

    def send_interval(self) -> float | None:
        """The least time between two frames of one connection: under the server's rate limit
        (``limits.max_frames_per_second``, else what the preflight found), :data:`PACE` of it;
        None without one."""
        rate = self.target.max_frames_per_second
        if rate is None and self.gate is not None:
            rate = self.gate.rate_limit
        return None if rate is None else 1 / (PACE * rate)

    def rate_limit_text(self) -> str:
        """The server's rate limit in words, for a line of the report."""
        rate: float | None = self.target.max_frames_per_second
        source = "limits.max_frames_per_second"
        if rate is None:
            rate = self.gate.rate_limit if self.gate is not None else None
            source = "found by the preflight"
        return f"about {rate or 0:g} frames a second on one connection ({source})"

    def rate_limited(self, frame: Frame) -> None:
        """An error frame with the text the server refused frames under its rate limit with,
        where a check expected something else: not tested, with the limit (the frame was
        refused for going too fast, which says nothing of what the check is about)."""
        gate = self.gate
        if gate is None or gate.rate_limit_error is None or not isinstance(frame, dict):
            return
        if frame.get("error") == gate.rate_limit_error:
            raise NotTested(
                f"the server refused a frame of the test under its rate limit "
                f"({self.rate_limit_text()}: {show(frame, 80)})"
            )

    def gate_check(self, requirement: str) -> None:
        """Before a wait attributed to ``requirement``: end it at once if the preflight
        proved that requirement fails (:meth:`harness.core.gate.Gate.check`)."""
        if self.gate is not None:
            self.gate.check(requirement, self.own)

    # fixtures of the target --------------------------------------------------------------

    def needs(self, need: str) -> None:
        """Not tested unless the target offers ``need`` (catalogue ``needs``: ``nodes``,
        ``network``)."""
        if need in self.target.lacking:
            raise NotTested(NEEDS[need])

    def account(self, role: str) -> Account:
        acc = self.target.accounts.get(role)
        if acc is None:
            raise NotTested(f"needs accounts.{role} in the target file")
        return acc

    def slug(self, room: str) -> str:
        slug = self.target.rooms.get(room)
        if slug is None:
            raise NotTested(f"needs rooms.{room} in the target file")
        return slug

    def place_of(self, room: str) -> Place:
        """The room ``room`` names (a key of [rooms], or ``twin``: the room of
        ``rooms.twin_host`` with the slug of ``rooms.main``) as (host, slug)."""
        if room == "twin":
            self.needs("twin")
            return self.target.rooms["twin_host"], self.slug("main")
        return self.target.host_name, self.slug(room)

    def token(self, role: str) -> str:
        return self.minter.valid(self.account(role))

    def nonce(self, label: str = "m") -> str:
        """A text unique to this test (``label-`` and 16 hex digits): the frames that carry it
        are the test's own (:mod:`harness.core.attribution`)."""
        return self.attribution.nonce(label)

    def unique_int(self) -> int:
        """A 16-digit number unique to this test, for a frame that carries a number where a
        string belongs: its broadcast is attributable to the test, where ``42`` is not."""
        return self.attribution.unique_int()

    def owns(self, frame: Frame) -> bool:
        """Whether this test can attribute ``frame`` to its own frames: only such a frame
        fails a check (:mod:`harness.core.attribution`)."""
        return self.attribution.owns(frame)

    def observe(self, requirement: str, text: str) -> None:
        """Note something worth reporting; past :data:`MAX_OBSERVATIONS` for one requirement
        (a server repeating itself), the rest are counted on one last line."""
        seen = self.observations.setdefault(requirement, [])
        if len(seen) < MAX_OBSERVATIONS:
            seen.append(text)
            return
        more = self._more_observations.get(requirement, 0) + 1
        self._more_observations[requirement] = more
        line = f"… and {more:,} more like these"
        if len(seen) == MAX_OBSERVATIONS:
            seen.append(line)
        else:
            seen[-1] = line

    # connecting ----------------------------------------------------------------------------

    def _conn_name(self, label: str) -> str:
        n = self._names.get(label, 0) + 1
        self._names[label] = n
        return f"{label}#{n}"

    def _request(self, url: str, token: str | None) -> tuple[str, dict[str, str], list[str] | None]:
        return handshake.request_parts(self.target, url, token)

    async def attempt(
        self,
        token: str | None,
        *,
        room: str,
        host: str | None = None,
        label: str = "client",
        account: Account | None = None,
        receive_buffer: int | None = None,
        node: int | None = None,
    ) -> Conn | Refusal:
        """Open a connection; a refusal at the handshake comes back as :class:`Refusal`.
        ``node``: the endpoint (an index into ``target.endpoints``); by default the next one,
        round-robin."""
        node = self.next_node() if node is None else node % len(self.target.endpoints)
        url = self.target.url_for(room, host, node)
        url, headers, subprotocols = self._request(url, token)
        name = self._conn_name(label)
        path = urlsplit(url).path + (f"?{urlsplit(url).query}" if urlsplit(url).query else "")
        via = self.target.auth.transport if token is not None else "none"
        where = self.target.node_label(node)
        where = f" to {where}" if where else ""
        self.transcript.log(name, "==", f"GET {path}{where} (token via {via}{self._gateway()})")
        try:
            opened = await self.opener(url, headers, subprotocols, receive_buffer)
        except TimeoutError:
            self.transcript.log(name, "==", "handshake timed out")
            raise ConformanceTimeout(
                "CONN-001",
                "a handshake answer",
                f"no answer{where} within {self.target.connect_timeout:.1f} s",
            ) from None
        except OSError as exc:
            raise self.unreachable(exc, node) from None
        if isinstance(opened, Refusal):
            line = f"handshake refused: HTTP {opened.status}" if opened.status else opened.detail
            if opened.status and opened.detail:
                line += f"; {opened.detail}"  # an in-process application's traceback, say
            self.transcript.log(name, "==", redact.redact(line))
            self.traffic.refused[
                f"HTTP {opened.status}" if opened.status else "handshake failed"
            ] += 1
            return opened
        ws, status = opened
        self.traffic.accepted += 1
        self.transcript.log(name, "==", f"handshake accepted: HTTP {status}")
        conn = Conn(self, name, ws, account, room, node, host)
        self.conns.append(conn)
        return conn

    def next_node(self) -> int:
        """The endpoint of the next connection: round-robin across ``nodes``."""
        node = self.opened % len(self.target.endpoints)
        self.opened += 1
        return node

    def _gateway(self) -> str:
        """The ``[headers]`` a handshake carries, by name (never by value), for its log line."""
        names = ", ".join(self.target.headers)
        return f"; with {names}" if names else ""

    def unreachable(self, exc: OSError, node: int = 0) -> HarnessError:
        """The run-ending line for a connection that failed below WebSocket: TLS (naming the
        ``[tls]`` key that fixes it), DNS, a refused port."""
        host, port = self.target.node_address(node)
        line = tls_mod.explain(exc, self.target.tls, f"{host}:{port}", self.target.server_name)
        return HarnessError(line or f"target unreachable: {host}:{port}: {exc.strerror or exc}")

    def _tls_options(self) -> dict[str, Any]:
        """websockets' (and asyncio's) TLS arguments for a ``wss://`` target."""
        if not self.target.secure:
            return {}
        return {"ssl": self.target.tls.context(), "server_hostname": self.target.server_name}

    async def open_websocket(
        self,
        url: str,
        headers: dict[str, str],
        subprotocols: list[str] | None,
        receive_buffer: int | None,
    ) -> tuple[Socket, int] | Refusal:
        """The default :attr:`opener`: a websockets client connection and its HTTP status, or
        the refusal its handshake met. Raises TimeoutError or OSError.

        Bounded: a frame over ``limits.max_received_frame_bytes`` is refused from its header
        (:class:`BoundedConnection`), and at most :data:`MAX_QUEUE` frames are read ahead."""
        extra: dict[str, Any] = {}
        if receive_buffer is not None:
            extra["sock"] = await self._small_socket(receive_buffer, address_of(url))
        extra.update(self._tls_options())
        try:
            ws = await connect(
                url,
                **extra,
                additional_headers=headers,
                subprotocols=subprotocols,  # type: ignore[arg-type, unused-ignore]
                origin=self.target.origin,  # type: ignore[arg-type, unused-ignore]
                open_timeout=self.target.connect_timeout,
                close_timeout=self.target.receive_timeout,
                max_size=self.target.max_received_frame_bytes,
                proxy=None,
                ping_interval=None,
                max_queue=MAX_QUEUE,
                create_connection=BoundedConnection,
            )
        except InvalidStatus as exc:
            return Refusal("http", status=exc.response.status_code)
        except InvalidHandshake as exc:
            return Refusal("http", detail=f"handshake failed: {exc}")
        return ws, ws.response.status_code if ws.response else 101

    async def open_asgi(
        self,
        url: str,
        headers: dict[str, str],
        subprotocols: list[str] | None,
        receive_buffer: int | None,
    ) -> tuple[Socket, int] | Refusal:
        """The :attr:`opener` of an ``[asgi]`` target: a connection to the application
        in-process (:mod:`harness.asgi`), bounded as :meth:`open_websocket` is."""
        if asgi.started(self.target):
            host = asgi.host_for(self.target)
        else:  # a pytest-xdist worker's first connection: import and start it here
            host = await asyncio.to_thread(asgi.host_for, self.target)
        return await host.open(
            url,
            headers,
            subprotocols,
            origin=self.target.origin,
            max_size=self.target.max_received_frame_bytes,
            window=receive_buffer or asgi.WINDOW,
            timeout=self.target.connect_timeout,
        )

    async def _small_socket(self, size: int, address: tuple[str, int]) -> socket.socket:
        """A connected socket with a tiny receive buffer, to make a half-open client bite fast.
        Each address of the host is tried in turn, as ``socket.create_connection`` does
        (``localhost`` may name ::1 first, where an IPv4-only server refuses)."""
        host, port = address
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        error: OSError | None = None
        async with asyncio.timeout(self.target.connect_timeout):
            for family, type_, proto, _, addr in infos:
                sock = socket.socket(family, type_, proto)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, addr)
                except OSError as exc:
                    sock.close()
                    error = exc
                    continue
                except BaseException:
                    sock.close()
                    raise
                return sock
        raise error or OSError(f"no address for {host}")

    async def half_open(self, role: str, room: str = "main", label: str = "half-open") -> HalfOpen:
        """A client that completes the handshake, then never reads again (raw TCP, a tiny
        receive window): the server's writes to it pile up until they block."""
        self.needs("network")
        account = self.account(role)
        node = self.next_node()
        url, headers, subprotocols = self._request(
            self.target.url_for(self.slug(room), node=node), self.token(role)
        )
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        name = self._conn_name(label)
        sock = await self._small_socket(2048, self.target.node_address(node))
        try:
            async with asyncio.timeout(self.target.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    sock=sock, limit=2**16, **self._tls_options()
                )
                self.transcript.log(
                    name,
                    "==",
                    f"GET {path} (raw; token via {self.target.auth.transport}{self._gateway()})",
                )
                writer.write(
                    handshake.request_bytes(
                        url, origin=self.target.origin, headers=headers, subprotocols=subprotocols
                    )
                )
                head = await reader.readuntil(b"\r\n\r\n")
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            OSError,
        ) as exc:
            sock.close()
            raise ConformanceFailure(
                "CONN-001", f"{role} accepted", f"raw handshake failed: {exc!r}"
            ) from None
        status = handshake.status_line(head)
        self.transcript.log(name, "==", f"handshake: {status}; stops reading (half-open)")
        if not handshake.accepted(head):
            writer.transport.abort()
            raise ConformanceFailure("CONN-001", f"{role} ({account.username}) accepted", status)
        ghost = HalfOpen(name, writer)
        self.half_opens.append(ghost)
        return ghost

    async def connect(
        self,
        role: str = "member",
        room: str = "main",
        *,
        requirement: str = "CONN-001",
        label: str | None = None,
        node: int | None = None,
        receive_buffer: int | None = None,
    ) -> Conn:
        """A connection of ``role`` to room ``room`` (a key of [rooms]) that must be accepted,
        on ``node`` (default: the next endpoint, round-robin); ``receive_buffer``: its socket's
        receive buffer in bytes (a reader that lags)."""
        self.gate_check("CONN-001")
        account = self.account(role)
        host, slug = self.place_of(room)
        node = self.next_node() if node is None else node
        outcome = await self.attempt(
            self.token(role),
            room=slug,
            host=host,
            label=label or role,
            account=account,
            node=node,
            receive_buffer=receive_buffer,
        )
        if isinstance(outcome, Refusal):
            where = self.target.node_label(node)
            raise ConformanceFailure(
                requirement,
                f"{role} ({account.username}) accepted to {host}/{slug}"
                + (f" on {where}" if where else ""),
                f"refused: {outcome.describe()}",
            )
        return outcome

    async def connect_many(
        self, specs: Iterable[tuple[str, str]], requirement: str = "CONN-001"
    ) -> list[Conn]:
        return [await self.connect(role, room, requirement=requirement) for role, room in specs]

    # posting and observing -----------------------------------------------------------------

    async def post(
        self,
        conn: Conn,
        body: str | None = None,
        *,
        observers: Iterable[Conn] = (),
        echo: bool = True,
        echo_requirement: str = "SEND-002",
        fanout_requirement: str = "SEND-003",
    ) -> dict[str, Any]:
        """Send a text frame and wait for its ``new`` event on ``observers``, then (with
        ``echo``, or when there is no observer) on the sender itself."""
        body = body if body is not None else self.nonce("msg")
        observers = list(observers)
        # Blocked before sending, not after: a server wedged by what the gate proved may also
        # never answer this connection's closing handshake once it took the frame.
        if observers:
            self.gate_check(fanout_requirement)
            self.gate_check("SEND-003")
        if echo or not observers:
            self.gate_check(echo_requirement)
            self.gate_check("SEND-002")
        await conn.send_text(body)
        event: dict[str, Any] | None = None
        for other in observers:
            seen = await other.expect_event("new", body=body, requirement=fanout_requirement)
            event = event or seen
        if echo or event is None:
            event = await conn.expect_event("new", body=body, requirement=echo_requirement)
        conn._posted.append(str(event.get("id")))
        return event

    async def settle(
        self,
        culprit: Conn,
        watchers: Iterable[Conn],
        requirement: str,
        forbidden: Predicate,
        what: str,
    ) -> bool:
        """After a frame on ``culprit``, prove that nothing ``forbidden`` reached ``watchers``.

        The sentinel goes through the culprit itself, so the server handles it after the frame
        under test (frames of one connection are handled in order): anything that frame caused
        reaches every watcher before the sentinel. If the server closed the culprit (allowed for
        bad frames) a watcher sends the sentinel instead. Returns whether the culprit still
        serves frames.
        """
        watchers = list(watchers)
        body = self.nonce("sentinel")
        served = False
        if culprit.closed is None:
            self.gate_check("SEND-002")  # the culprit's own sentinel is its echo
            await culprit.send_text(body)
            closed = await culprit.wait_closed(
                self.target.receive_timeout,
                until=event_matching("new", body=body),
                forbidden=forbidden,
                forbidden_requirement=requirement,
            )
            served = closed is None and any(
                event_matching("new", body=body)(f) for f in culprit.buffer
            )
        if not served:
            await self.sentinel(watchers[0], watchers, requirement, forbidden, what)
            return False
        for obs in watchers:
            await obs.expect_nothing_before(body, forbidden, requirement=requirement, what=what)
        return True

    async def sentinel(
        self,
        sender: Conn,
        observers: Iterable[Conn],
        requirement: str,
        forbidden: Predicate,
        what: str,
    ) -> None:
        """Send a sentinel through ``sender``; each observer must see it with nothing
        ``forbidden`` before it. All observers must be in the sender's room."""
        body = self.nonce("sentinel")
        await sender.send_text(body)
        for obs in observers:
            # The sender's own copy of the sentinel is its echo (SEND-002).
            await obs.expect_nothing_before(
                body,
                forbidden,
                requirement=requirement,
                what=what,
                arrival_requirement="SEND-002" if obs is sender else None,
            )

    async def expect_refused(
        self,
        token: str | None,
        *,
        requirement: str,
        room: str,
        host: str | None = None,
        sentinel_room: str | None = None,
        label: str = "refused",
    ) -> Refusal:
        """The connection must be refused: an HTTP error at the handshake, or a close at once
        after it before any room event (protocol notes: "How a refusal looks")."""
        outcome = await self.attempt(token, room=room, host=host, label=label)
        if isinstance(outcome, Refusal):
            self._check_style(outcome, requirement)
            return outcome
        conn = outcome
        # Accepted: prove with a sentinel that it gets no room event, then wait for the close.
        if sentinel_room is not None and sentinel_room in self.target.rooms:
            poster = await self.connect("member", sentinel_room, label="sentinel")
            body = self.nonce("sentinel")
            await poster.send_text(body)
            await poster.expect_event("new", body=body, requirement="SEND-002")
        closed = await conn.wait_closed(self.target.receive_timeout)
        events = [f for f in conn.buffer if is_event(f)]
        if events:
            raise ConformanceFailure(
                requirement,
                "refused, and no room event on the refused connection",
                f"accepted; {conn.name} received {show(events[0])}",
                also=("AUTH-008",),
            )
        if closed is None:
            raise ConformanceTimeout(
                requirement,
                "refused: HTTP error at the handshake, or a close right after it",
                f"accepted and still open after {self.target.receive_timeout:.1f} s",
            )
        refusal = Refusal("close", close_code=closed[0])
        self._check_style(refusal, requirement)
        return refusal

    def _check_style(self, refusal: Refusal, requirement: str) -> None:
        self.observe("AUTH-010", refusal.describe())
        pinned = self.target.refusal
        if pinned != "any" and refusal.style != pinned:
            raise ConformanceFailure(
                "AUTH-009", f"refusal style {pinned!r} (expect.refusal)", f"{refusal.describe()}"
            )

    async def count_pending(self) -> None:
        """After a failed test: count what its connections received and no check read."""
        await asyncio.gather(*(c.count_pending() for c in self.conns), return_exceptions=True)

    async def close_all(self) -> None:
        """Close every connection, and let go of what they kept: the buffered frames, the
        connections themselves, the transcript beyond what a report shows. The session outlives
        its test (pytest keeps it until the run ends), so a test against a flooding server must
        not leave megabytes behind. The session can still open new connections after this."""
        for ghost in self.half_opens:
            ghost.close()
        await asyncio.gather(*(c.close() for c in self.conns), return_exceptions=True)
        for conn in self.conns:
            conn.buffer.clear()
            conn._sent.clear()
            conn._unread.clear()
        self.conns.clear()
        self.half_opens.clear()
        self.transcript.compact_in_place()
