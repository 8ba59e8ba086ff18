"""The harness's WebSocket client connections: websockets' asyncio client, bounded, with the
ends of a connection translated to :class:`~harness.wire.closed.Closed`.

Bounded: a frame over the plan's ``max_size`` is refused from its header
(:class:`BoundedConnection`), and websockets stops reading while :data:`MAX_QUEUE` frames wait
to be read, so a flood waits in the server's send buffer, not in ours.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    PayloadTooBig,
)

from harness.core.session import Refusal
from harness.wire.closed import Closed, TooBig
from harness.wire.plan import Plan
from harness.wire.raw import small_socket

#: Frames websockets reads ahead of the test (its default): past this it stops reading the socket
#: until the test takes one.
MAX_QUEUE = 16
#: How long a close frame the harness sent may take to leave, before the transport is aborted.
CLOSE_GRACE = 0.5


class BoundedConnection(ClientConnection):
    """websockets' client connection, that lets go at once of a server sending too large a frame.

    websockets reads a frame's header before its payload: a frame announcing more than
    ``max_size`` fails the connection with close code 1009 before any of it is buffered. Then,
    as RFC 6455 7.1.7 has it, the client waits for the server to close the TCP connection, up to
    ``close_timeout``, discarding what comes; a hostile server never closes and keeps sending.
    So once the close frame has gone out, the transport is aborted: the pending ``recv()`` ends
    at once (:class:`Closed` with ``too_big``).
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


def closed_of(exc: ConnectionClosed) -> Closed:
    """websockets' end of a connection as the harness's :class:`Closed`."""
    cause = exc.__cause__
    if isinstance(cause, PayloadTooBig):
        size = getattr(cause, "size", None)
        read = getattr(cause, "current_size", None) or 0
        bound = getattr(cause, "max_size", None) or 0
        return Closed(None, "", too_big=TooBig(size, bound, read))
    if exc.rcvd is None:
        return Closed(None)
    return Closed(exc.rcvd.code, exc.rcvd.reason)


class WsSocket:
    """A websockets connection as the harness's pump uses it: ``send``, ``recv``, ``close`` and
    the ``transport``; its end raises :class:`Closed`."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @property
    def transport(self) -> Any:
        return self.ws.transport

    async def send(self, message: str | bytes) -> None:
        try:
            await self.ws.send(message)
        except ConnectionClosed as exc:
            raise closed_of(exc) from None

    async def recv(self) -> str | bytes:
        try:
            return await self.ws.recv()
        except ConnectionClosed as exc:
            raise closed_of(exc) from None

    async def close(self) -> None:
        await self.ws.close()


def connect_options(plan: Plan) -> dict[str, Any]:
    """websockets' ``connect`` arguments for ``plan``, the same for its asyncio and its sync
    client: the request, TLS, the timeouts, the frame bound; no proxy, no keepalive pings (a run
    is judged on its events)."""
    options: dict[str, Any] = {
        "additional_headers": plan.headers,
        "subprotocols": plan.subprotocols,
        "origin": plan.origin,
        "open_timeout": plan.connect_timeout,
        "close_timeout": plan.close_timeout,
        "max_size": plan.max_size,
        "proxy": None,
        "ping_interval": None,
    }
    if plan.ssl is not None:
        options.update(ssl=plan.ssl, server_hostname=plan.server_name)
    return options


async def open_websocket(plan: Plan) -> tuple[WsSocket, int] | Refusal:
    """A client connection as ``plan`` says and its HTTP status, or the refusal its handshake
    met. Raises TimeoutError or OSError (TLS failures included)."""
    extra = connect_options(plan)
    if plan.receive_buffer is not None:
        extra["sock"] = await small_socket(plan.receive_buffer, plan.address, plan.connect_timeout)
    try:
        ws = await connect(
            plan.url, **extra, max_queue=MAX_QUEUE, create_connection=BoundedConnection
        )
    except InvalidStatus as exc:
        return Refusal("http", status=exc.response.status_code)
    except InvalidHandshake as exc:
        return Refusal("http", detail=f"handshake failed: {exc}")
    return WsSocket(ws), ws.response.status_code if ws.response else 101


def reset(transport: Any) -> None:
    """Vanish without a close handshake: a TCP reset (``SO_LINGER`` 0) where there is a socket,
    an abort otherwise (an in-process application's link)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
