"""The pump of one connection: :class:`Conn` reads and writes its socket and feeds the
session without I/O (:mod:`harness.core.session`), which logs, judges and keeps its frames.

A wait's verdict is the session's, one step per frame (:meth:`ConnState.receive
<harness.core.connstate.ConnState.receive>`); :meth:`Conn._pump` is the one read loop. The tests
check with the verifiers here (``expect_event``, ``expect_error``, ``expect_nothing_before``,
``wait_closed``), which raise :class:`~harness.core.failures.ConformanceFailure` naming the
requirement.

Whatever a server sends, what the connection holds stays bounded (:mod:`harness.core.bounds`): a
frame over ``limits.max_received_frame_bytes`` is refused from its header
(:mod:`harness.wire.websocket`), the frames kept for later checks are bounded by
``limits.max_buffered_frames`` / ``max_buffered_bytes``, and the socket is read ahead of the
test by a few frames at most. Passing a bound raises
:class:`~harness.core.failures.ResourceLimit` in the test that received the frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

from harness.core.bounds import FrameBuffer
from harness.core.checks import Expect, Fail, Hit
from harness.core.connstate import ConnState, Kept, Overflow, echo_of
from harness.core.failures import (
    ConformanceFailure,
    ConformanceTimeout,
    ResourceLimit,
)
from harness.core.frames import (
    Frame,
    Predicate,
    check_error_text,
    event_matching,
    is_error,
    now_rfc3339,
)
from harness.core.session import Refusal, Session
from harness.target import Account
from harness.wire.closed import Closed
from harness.wire.plan import Plan
from harness.wire.websocket import reset

__all__ = ["Conn", "Opener", "Socket"]


class Transport(Protocol):
    """What a :class:`Conn` needs of its connection's transport (an asyncio one has it)."""

    def abort(self) -> None: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...

    def get_write_buffer_size(self) -> int: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class Socket(Protocol):
    """What a :class:`Conn` needs of its WebSocket (:class:`harness.wire.websocket.WsSocket`
    and :class:`harness.wire.asgi.AsgiSocket` have it); its end raises
    :class:`~harness.wire.closed.Closed`."""

    @property
    def transport(self) -> Transport: ...

    async def send(self, message: str | bytes) -> None: ...

    async def recv(self) -> str | bytes: ...

    async def close(self) -> None: ...


#: How a connection is opened: one handshake plan in, a socket and its HTTP status (or the
#: refusal the handshake met) out. Raises TimeoutError or OSError.
Opener = Callable[[Plan], Awaitable["tuple[Socket, int] | Refusal"]]


class Conn:
    """One WebSocket connection of a test: its socket, and its state in the session."""

    def __init__(
        self, session: Session, state: ConnState, ws: Socket, peers: dict[int, Conn]
    ) -> None:
        self.session = session
        self.state = state
        self.ws = ws
        #: The test's connections by their state (:meth:`Chat.conn_of`): the one that sent a
        #: frame sends the sentinel after it.
        self._peers = peers
        peers[id(state)] = self

    # the state, as the suites name it ----------------------------------------------------

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def account(self) -> Account | None:
        return cast("Account | None", self.state.account)

    @property
    def room(self) -> str:
        return self.state.room

    @property
    def place(self) -> tuple[str, str]:
        return self.state.place

    @property
    def node(self) -> int:
        return self.state.node

    @property
    def buffer(self) -> FrameBuffer:
        return self.state.buffer

    @property
    def closed(self) -> tuple[int | None, str] | None:
        return self.state.closed

    @closed.setter
    def closed(self, value: tuple[int | None, str] | None) -> None:
        self.state.closed = value

    @property
    def limit(self) -> ResourceLimit | None:
        return self.state.limit

    @property
    def half_open(self) -> bool:
        return self.state.half_open

    @property
    def account_twice(self) -> bool:
        return self.state.account_twice

    # sending -----------------------------------------------------------------------------

    async def send_raw(self, data: str | bytes, kind: str = "other") -> None:
        """Send one frame as it is; ``kind`` (text, update, delete, other): what its content
        is in the room it goes to (:mod:`harness.core.isolation`)."""
        delay = self.state.send(data, kind, time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            await self.ws.send(data)
        except Closed as exc:
            self._ended(exc)

    async def send_json(self, frame: Any, kind: str = "other") -> None:
        await self.send_raw(json.dumps(frame, ensure_ascii=False), kind)

    async def send_text(self, message: Any, *, timestamp: bool = True, **extra: Any) -> None:
        frame = self.state.text(message, now_rfc3339() if timestamp else None, extra)
        await self.send_json(frame, "text")

    async def send_update(self, message_id: Any, message: Any, **extra: Any) -> None:
        await self.send_json(self.state.update(message_id, message, now_rfc3339(), extra), "update")

    async def send_delete(self, message_id: Any, **extra: Any) -> None:
        await self.send_json(self.state.delete(message_id, now_rfc3339(), extra), "delete")

    # receiving ---------------------------------------------------------------------------

    def _ended(self, exc: Closed) -> None:
        """Record how the connection closed; a close because the server's frame passed
        ``max_received_frame_bytes`` raises :class:`ResourceLimit`."""
        too_big = (exc.too_big.size, exc.too_big.read) if exc.too_big is not None else None
        limit = self.state.ended(exc.code, exc.reason, too_big=too_big, app_error=exc.app_error)
        if limit is not None:
            raise limit from None

    async def recv_judged(self, timeout: float) -> tuple[Frame, ConformanceFailure | None, int]:
        """The next frame, parsed, with the failure it earns on its own (if any), and its size.
        Raises TimeoutError, :class:`Closed` or :class:`ResourceLimit`."""
        if self.state.limit is not None:
            raise self.state.limit
        async with asyncio.timeout(timeout):
            data = await self.ws.recv()
        return self.state.judge(data)

    async def _pump(
        self, wait: Expect, limit_s: float, until: Predicate | None = None
    ) -> Frame | None:
        """Feed frames to ``wait`` until it hits (the frame), fails (raised), the connection
        closes (None; with ``until``, a wait that only watches) or ``limit_s`` passes (None
        with ``until``; else the wait's timeout, raised). ``until``: a kept frame matching it
        ends the pump too (None)."""
        state = self.state
        deadline = time.monotonic() + limit_s
        while True:
            if state.limit is not None:
                raise state.limit
            if state.closed is not None:
                if until is not None or wait.match is None:
                    return None
                raise wait.closed(state.closed_text())
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                async with asyncio.timeout(remaining):
                    data = await self.ws.recv()
            except TimeoutError:
                if wait.match is None:
                    return None
                raise wait.timed_out(limit_s, len(state.buffer)) from None
            except Closed as exc:
                self._ended(exc)
                continue
            step = state.receive(data, time.monotonic(), wait)
            if isinstance(step, Fail):
                raise step.failure
            if isinstance(step, Hit):
                return step.frame
            if isinstance(step, Overflow):
                transport = self.ws.transport
                if transport is not None:
                    transport.abort()
                raise step.limit
            if until is not None and isinstance(step, Kept) and until(step.frame):
                return None

    async def count_pending(self, limit: int = 20, wait: float = 0.02) -> None:
        """Count (never judge, never log) up to ``limit`` frames that arrived and no check read:
        after a failed test, so that the traffic says what the endpoint answered (an echo on a
        connection the test never read again is still an echo). Each read waits ``wait``."""
        state = self.state
        if state.closed is not None or state.half_open or state.limit is not None:
            return
        for _ in range(limit):
            try:
                async with asyncio.timeout(wait):
                    data = await self.ws.recv()
            except Exception:
                return
            state.count_only(data)

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
        The judging is the session's; this only reads. ``basic``: the basic the awaited frame
        stands on (SEND-002 for this connection's own ``new`` event, SEND-003 for another
        connection's): the wait is blocked at once when the preflight or a probe proved that
        basic failing.
        """
        state = self.state
        wait = state.wait(predicate, requirement, expected, forbidden, forbidden_requirement)
        step = state.scan(wait, time.monotonic())
        if isinstance(step, Fail):
            raise step.failure
        if isinstance(step, Hit):
            return step.frame
        state.begin(requirement, basic)
        limit = self.session.target.receive_timeout if timeout is None else timeout
        frame = await self._pump(wait, limit)
        assert frame is not None  # a wait with a predicate hits or raises
        return frame

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
        """The ``chat_message`` ``action`` event (of message ``id``, with ``body``).

        The event of a frame a connection of this test and room sent (this one or another):
        silence is proven by a sentinel that connection sends after it, as for an error. Events
        of one sender arrive in order (BCAST-004): the sentinel's ``new`` event arriving first
        means the awaited one is not coming. Sent only when the event is late (a grace of a few
        round trips), so a healthy server sees no extra traffic."""
        plan = self.state.event_wait(action, id, body)

        async def wait(match: Predicate, timeout: float | None = None) -> dict[str, Any]:
            frame = await self.wait_for(
                match,
                requirement=requirement,
                expected=plan.expected,
                forbidden=forbidden,
                forbidden_requirement=forbidden_requirement,
                timeout=timeout,
                basic=plan.basic,
            )
            return cast(dict[str, Any], frame)

        after = None
        origin = self._peer(plan.origin)
        if origin is not None and not plan.buffered:
            after = origin.state.sentinels.get(plan.key)
            grace = self.session.sentinel_grace()
            if after is None and grace is not None:
                start = time.monotonic()
                try:
                    return await wait(plan.match, timeout=grace)
                except ConformanceTimeout as exc:
                    if not exc.frame_awaited:
                        raise  # not the grace running out (a basic proved failing, say)
                after = await origin._sentinel_for(plan.key)
                if after is None:
                    rest = self.session.target.receive_timeout - (time.monotonic() - start)
                    return await wait(plan.match, timeout=max(rest, 0.0))
        if after is None:
            return await wait(plan.match)
        sentinel = after
        frame = await wait(lambda f: plan.match(f) or echo_of(f, sentinel))
        if not plan.match(frame):
            raise self.state.silence(requirement, plan.expected)
        return frame

    def _peer(self, state: ConnState | None) -> Conn | None:
        """The connection of the test whose state ``state`` is (None for None)."""
        return self._peers.get(id(state)) if state is not None else None

    async def _sentinel_for(self, key: tuple[str, str | None]) -> str | None:
        """The sentinel sent after this connection's frame ``key`` (sent now, the first time
        it is asked for; shared by every connection that awaits that frame's event)."""
        sentinels = self.state.sentinels
        if key not in sentinels:
            body = await self._sentinel_after()
            if body is None:
                return None
            sentinels[key] = body
        return sentinels[key]

    def stands_on(self, *senders: Conn) -> str:
        """What a wait on this connection for the events of ``senders`` stands on (for a
        custom :meth:`wait_for`): SEND-002 for its own, NODE-001 when one of them is on another
        node, else SEND-003."""
        return self.state.stands_on(*(s.state for s in senders))

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
            is_error if after is None else lambda f: is_error(f) or echo_of(f, after),
            requirement=requirement,
            expected=f"{expected} on {self.name}",
            forbidden=forbidden,
            forbidden_requirement=forbidden_requirement,
        )
        if after is not None and not is_error(frame):
            raise self.state.silence(requirement, f"{expected} on {self.name}", error=True)
        if text is None or frame.get("error") != text:
            self.session.rate_limited(frame)  # refused for going too fast: says nothing
        if text is not None:
            check_error_text(requirement, text, frame)
        return str(frame.get("error"))

    async def _sentinel_after(self) -> str | None:
        """Send a sentinel text now, if this connection can prove silence with one: it is open
        and the preflight saw the server return a sender's own event."""
        if self.state.closed is not None or not self.session.can_prove_silence():
            return None
        body = self.session.nonce("after")
        await self.send_text(body)
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
        state = self.state
        await self.wait_for(
            event_matching("new", body=sentinel),
            requirement=arrival_requirement or requirement,
            expected=f"no {what} before the sentinel on {self.name}",
            forbidden=forbidden,
            forbidden_requirement=requirement,
            basic=state.basic_of(state.senders_of("new", sentinel, None)),
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
        state = self.state
        if state.limit is not None:
            raise state.limit
        if until is not None and any(until(f) for f in state.buffer):
            return None
        wait = state.wait(None, forbidden_requirement, "nothing of the kind", forbidden)
        await self._pump(wait, timeout, until)
        return state.closed

    async def is_served(self, requirement: str) -> None:
        """The connection is open and its next valid frame is served (its own event returns)."""
        body = self.session.nonce("alive")
        await self.send_text(body)
        await self.expect_event("new", body=body, requirement=requirement)

    def abort(self) -> None:
        """Vanish without a close handshake: a TCP reset."""
        self.session.transcript.log(self.name, "==", "TCP reset (no close handshake)")
        reset(self.ws.transport)
        self.state.closed = (None, "aborted by the test")

    def stop_reading(self, why: str = "half-open") -> None:
        """Become half-open: keep the TCP connection but never read again (until
        :meth:`resume_reading`)."""
        self.session.transcript.log(self.name, "==", f"stops reading ({why})")
        self.ws.transport.pause_reading()
        self.state.half_open = True

    def resume_reading(self) -> None:
        """Read again after :meth:`stop_reading` (a reader that lagged)."""
        self.session.transcript.log(self.name, "==", "reads again")
        self.state.half_open = False
        self.ws.transport.resume_reading()

    async def close(self) -> None:
        """The closing handshake, bounded by the receive timeout. Frames still coming are read
        and dropped meanwhile: the server's close reply would wait behind them. A server that
        sends more than ``limits.max_buffered_frames`` frames after the close frame is
        flooding: the connection is aborted."""
        if self.state.half_open and self.state.closed is None:
            self.abort()
        if self.state.closed is None:
            drain = asyncio.ensure_future(self._drop_incoming())
            try:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.session.target.receive_timeout):
                        await self.ws.close()
            finally:
                drain.cancel()
                await asyncio.gather(drain, return_exceptions=True)
            self.state.closed = (1000, "closed by the test")
            self.session.transcript.log(self.name, "==", "close 1000 (by the harness)")

    async def _drop_incoming(self) -> None:
        dropped = 0
        with contextlib.suppress(Exception):
            while dropped <= self.state.buffer.max_frames:
                await self.ws.recv()
                dropped += 1
            self.session.transcript.log(
                self.name,
                "==",
                f"{dropped:,} frames after the harness's close frame, over "
                "limits.max_buffered_frames: the harness aborts the connection",
            )
            self.ws.transport.abort()
