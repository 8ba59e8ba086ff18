"""The load mode's connections: websockets' sync client (Locust's users run under gevent), from
the same handshake plan as every other opener, into ``rooms.main`` on one node. The check
before any load (no gevent yet) and every Locust user open theirs here."""

from __future__ import annotations

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from harness.core.session import Refusal
from harness.target import Target
from harness.wire.closed import Closed
from harness.wire.plan import Plan, plan_for
from harness.wire.websocket import connect_options

__all__ = ["SyncSocket", "open_connection", "open_sync"]


class SyncSocket:
    """A sync connection: ``send``, ``recv(timeout)``; its end raises :class:`Closed`."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    def send(self, text: str) -> None:
        try:
            self.ws.send(text)
        except ConnectionClosed as exc:
            raise _closed(exc) from None

    def recv(self, timeout: float) -> str | bytes:
        """The next frame; raises TimeoutError after ``timeout`` s, :class:`Closed` at its end."""
        try:
            return self.ws.recv(timeout=timeout)
        except ConnectionClosed as exc:
            raise _closed(exc) from None

    def close(self) -> None:
        """The closing handshake (bounded by the plan's close timeout)."""
        self.ws.close()

    def close_socket(self) -> None:
        """Drop the connection without a close handshake."""
        self.ws.close_socket()


def _closed(exc: ConnectionClosed) -> Closed:
    if exc.rcvd is None:
        return Closed(None)
    return Closed(exc.rcvd.code, exc.rcvd.reason)


def open_sync(plan: Plan) -> SyncSocket | Refusal:
    """A sync connection as ``plan`` says, or the refusal its handshake met (``status`` for an
    HTTP answer, else ``detail``). Raises TimeoutError or OSError."""
    try:
        ws = connect(plan.url, **connect_options(plan))
    except InvalidStatus as exc:
        return Refusal("http", status=exc.response.status_code)
    except InvalidHandshake as exc:
        return Refusal("http", detail=str(exc) or type(exc).__name__)
    return SyncSocket(ws)


def open_connection(target: Target, node: int, token: str) -> SyncSocket | Refusal:
    """A connection to ``rooms.main`` on endpoint ``node``, with ``token``."""
    url = target.url_for(target.rooms["main"], node=node)
    return open_sync(plan_for(target, url, token, close_timeout=1.0))
