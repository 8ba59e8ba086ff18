"""In-process ASGI targets (``[asgi] app``), the harness's side: a connection to the application
(:mod:`harness.wire.apphost`) that offers what a connection of the harness needs of a WebSocket
(:class:`AsgiSocket`), opened from one :class:`~harness.wire.plan.Plan` (:func:`open_asgi`).

Whatever ends it reaches the harness as :class:`~harness.wire.closed.Closed`: the close frame the
client received (the application's ``websocket.close``; 1011 with ``app_error`` when it raised;
none when it returned without closing, or when the harness refused a frame too big, ``too_big``).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from harness.core.session import Refusal
from harness.target import Target
from harness.wire.apphost import WINDOW, AppHost, Link, host_for, started
from harness.wire.closed import Closed
from harness.wire.plan import Plan


class _Transport:
    """What a :class:`harness.client.Conn` asks of its connection's transport."""

    def __init__(self, sock: AsgiSocket) -> None:
        self.sock = sock

    def abort(self) -> None:
        """The client vanishes: the application receives ``websocket.disconnect`` 1006."""
        self.sock.vanish()

    close = abort

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        """Nothing to pause: the client reads only when a test waits (the requirements that
        need a reader that stops are network-only)."""

    def resume_reading(self) -> None:
        pass


class AsgiSocket:
    """The harness's end of a :class:`~harness.wire.apphost.Link`: what a connection of the
    harness needs of a WebSocket (``send``, ``recv``, ``close``, ``transport``). Once closed,
    each of ``send`` and ``recv`` raises :class:`~harness.wire.closed.Closed`."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.inbox: collections.deque[tuple[Any, ...]] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.closed: Closed | None = None
        self.transport = _Transport(self)
        link.socket = self

    def deliver(self, item: tuple[Any, ...]) -> None:
        if self.closed is not None:
            if item[0] == "frame":
                self.link.read(item[2])
            return
        self.inbox.append(item)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def send(self, message: str | bytes) -> None:
        if self.closed is not None:
            raise self.closed
        frame = (
            {"type": "websocket.receive", "text": message}
            if isinstance(message, str)
            else {"type": "websocket.receive", "bytes": bytes(message)}
        )
        self.link.from_client(frame)

    async def recv(self) -> str | bytes:
        while True:
            if self.inbox:
                item = self.inbox.popleft()
                if item[0] == "frame":
                    self.link.read(item[2])
                    return item[1]  # type: ignore[no-any-return]
                self._shut(item[1])
            if self.closed is not None:
                raise self.closed
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None

    def _shut(self, closed: Closed) -> None:
        if self.closed is None:
            self.closed = closed
            for item in self.inbox:
                if item[0] == "frame":
                    self.link.read(item[2])
            self.inbox.clear()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def close(self) -> None:
        """The closing handshake, from the client: the application receives
        ``websocket.disconnect`` 1000."""
        if self.closed is None:
            self.link.from_client({"type": "websocket.disconnect", "code": 1000, "reason": ""})
            self._shut(Closed(1000, ""))

    def vanish(self) -> None:
        if self.closed is None:
            self.link.from_client({"type": "websocket.disconnect", "code": 1006, "reason": ""})
            self._shut(Closed(None))


async def open_on(host: AppHost, plan: Plan) -> tuple[AsgiSocket, int] | Refusal:
    """Open a connection to ``host``'s application from the running loop, as ``plan`` says
    (its url, headers, subprotocols, origin; ``max_size``; ``receive_buffer``, the frames held
    unread, :data:`~harness.wire.apphost.WINDOW` by default): the socket and HTTP 101, or the
    refusal. Raises TimeoutError when the application does not answer within
    ``plan.connect_timeout``, :class:`~harness.core.failures.HarnessError` once it has
    stopped."""
    offered = list(plan.subprotocols or [])
    window = plan.receive_buffer or WINDOW
    link = Link(host, asyncio.get_running_loop(), offered, plan.max_size, window)
    sock = AsgiSocket(link)
    host.serve(link, host.scope(plan.url, plan.headers, offered, plan.origin))
    try:
        async with asyncio.timeout(plan.connect_timeout):
            answer = await asyncio.wrap_future(link.answer)
    except TimeoutError:
        sock.vanish()
        raise
    if isinstance(answer, Refusal):
        sock.vanish()
        return answer
    return sock, 101


async def open_asgi(target: Target, plan: Plan) -> tuple[AsgiSocket, int] | Refusal:
    """A connection to ``target``'s application in-process (:func:`open_on`), started first
    (imported, its lifespan run) if this process has not yet: in a thread, as a pytest-xdist
    worker's first connection does. Raises :class:`~harness.target.TargetError` or
    :class:`~harness.core.failures.HarnessError` for an application that cannot start."""
    if started(target):
        host = host_for(target)
    else:  # a pytest-xdist worker's first connection: import and start it here
        host = await asyncio.to_thread(host_for, target)
    return await open_on(host, plan)
