"""The client mode's server socket (client-check's fake server): follows a scenario's plan and
records every attempt.

Attempt ``k`` (in arrival order; 0 is the first connection) gets the plan's ``k``-th action, or
the scenario's default action once the plan is used up:

- ``refuse``: answer the handshake with HTTP 503 (a failed attempt);
- ``drop``: accept, wait for the client's first frame (bounded), then abort the TCP connection
  with no close frame (an unclean loss);
- ``close``: accept, wait for the first frame (bounded), then close cleanly with code 1000;
- ``hold``: accept and keep the connection open until the scenario ends.

Each attempt records its arrival time (when the handshake request was read), the path (without
the query string, which may carry a token), the outcome, how and when it ended, and every frame
the client sent. No header is recorded. Checking is done elsewhere (policy, frames).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Literal

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

__all__ = [
    "Action",
    "AttemptRecord",
    "FakeServer",
    "FrameRecord",
    "Signal",
]

Action = Literal["refuse", "drop", "close", "hold"]
End = Literal["refused", "dropped", "closed", "held", "client-closed", "open"]

_LOG = logging.getLogger("harness.wire.serve")
_LOG.addHandler(logging.NullHandler())
_LOG.propagate = False


class Signal:
    """Wakes up waiters whenever something was recorded (one event loop, no threads)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()

    async def wait_until(self, predicate: Callable[[], bool], deadline: float) -> bool:
        """Wait until ``predicate()`` holds or the loop time ``deadline`` passes; return it."""
        loop = asyncio.get_running_loop()
        while True:
            if predicate():
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), remaining)


@dataclass
class FrameRecord:
    """A frame the client sent: when (ms from the scenario start) and what."""

    at_ms: float
    data: str | bytes


@dataclass
class AttemptRecord:
    """One connection attempt (times in ms from the scenario start)."""

    index: int
    at_ms: float
    path: str
    action: Action
    outcome: Literal["pending", "accepted", "refused"] = "pending"
    status: int | None = None
    end: End = "open"
    end_ms: float | None = None
    frames: list[FrameRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _first_offered(
    connection: ServerConnection, subprotocols: Sequence[Subprotocol]
) -> Subprotocol | None:
    """Accept whatever subprotocol the client offers first (some carry the token that way)."""
    del connection
    return subprotocols[0] if subprotocols else None


class FakeServer:
    """A WebSocket server on ``host:port`` that plays one scenario's plan."""

    def __init__(
        self,
        plan: Sequence[Action],
        default: Action,
        now_ms: Callable[[], float],
        frame_wait_s: float,
        on_change: Callable[[], None],
    ) -> None:
        self.plan = tuple(plan)
        self.default: Action = default
        self.attempts: list[AttemptRecord] = []
        self._now_ms = now_ms
        self._frame_wait_s = frame_wait_s
        self._on_change = on_change
        self._by_connection: dict[ServerConnection, AttemptRecord] = {}
        self._server: Server | None = None
        self._stopping = False

    def action_for(self, index: int) -> Action:
        return self.plan[index] if index < len(self.plan) else self.default

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the port (a free one when ``port`` is 0). Raises ``OSError``."""
        self._server = await serve(
            self._handler,
            host,
            port,
            process_request=self._process_request,
            process_response=self._process_response,
            select_subprotocol=_first_offered,
            ping_interval=None,
            open_timeout=5,
            close_timeout=2,
            logger=_LOG,
        )
        sockets = list(self._server.sockets)
        return int(sockets[0].getsockname()[1])

    def begin_stop(self) -> None:
        """From now on, connections that end are recorded as ``held`` (the scenario is over)."""
        self._stopping = True

    async def stop(self) -> None:
        """Close held connections with 1000, stop listening, wait (bounded) for handlers."""
        self._stopping = True
        if self._server is None:
            return
        self._server.close(close_connections=True, code=1000)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    # -- websockets callbacks -----------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        index = len(self.attempts)
        action = self.action_for(index)
        record = AttemptRecord(
            index=index,
            at_ms=self._now_ms(),
            path=request.path.split("?", 1)[0],
            action=action,
        )
        self.attempts.append(record)
        self._by_connection[connection] = record
        self._on_change()
        if action == "refuse":
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, "client-check: this handshake is refused\n"
            )
        return None

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        del request
        record = self._by_connection.get(connection)
        if record is None:
            return None
        record.status = response.status_code
        if response.status_code != HTTPStatus.SWITCHING_PROTOCOLS:
            record.outcome = "refused"
            record.end = "refused"
            record.end_ms = self._now_ms()
            self._by_connection.pop(connection, None)
            self._on_change()
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        record = self._by_connection.pop(ws, None)
        if record is None:  # pragma: no cover - every handshake goes through process_request
            return
        record.outcome = "accepted"
        self._on_change()
        first_frame = asyncio.Event()
        reader = asyncio.create_task(self._read(ws, record, first_frame))
        try:
            if record.action == "hold":
                await reader
                return
            waiter = asyncio.create_task(first_frame.wait())
            await asyncio.wait(
                {waiter, reader}, timeout=self._frame_wait_s, return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()
            if record.end_ms is None and not self._stopping:
                if not record.frames:
                    record.notes.append(
                        f"no frame within {self._frame_wait_s * 1000:.0f} ms of the opening"
                    )
                record.end_ms = self._now_ms()
                if record.action == "drop":
                    record.end = "dropped"
                    ws.transport.abort()
                else:
                    record.end = "closed"
                    with contextlib.suppress(ConnectionClosed, OSError):
                        await ws.close(1000)
                self._on_change()
            await reader
        finally:
            if not reader.done():
                reader.cancel()

    async def _read(
        self, ws: ServerConnection, record: AttemptRecord, first_frame: asyncio.Event
    ) -> None:
        try:
            async for message in ws:
                record.frames.append(FrameRecord(self._now_ms(), message))
                first_frame.set()
                self._on_change()
        except ConnectionClosed:
            pass
        finally:
            if record.end_ms is None:
                record.end = "held" if self._stopping else "client-closed"
                record.end_ms = self._now_ms()
                self._on_change()
