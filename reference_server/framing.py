"""How server messages go on the wire: whole, or in fragments; and when a connection last saw
a data frame.

RFC 6455 5.4: "A fragmented message consists of a single frame with the FIN bit clear and an
opcode other than 0, followed by zero or more frames with the FIN bit clear and the opcode set
to 0, and terminated by a single frame with the FIN bit set and an opcode of 0." Servers do
send them: a proxy that re-frames, a framework that streams a large JSON document, a server
with a small send buffer (``ServerConfig.fragment``, ``serve --fragment``). A conformant client
reassembles them, so the reference server can play such a deployment.

``write`` is ``websockets.asyncio.server.broadcast`` for connections whose messages go whole,
and its fragmenting equivalent for the others: every fragment of a message is written at once,
without awaiting any one client, so a slow or half-open client holds no other back (RECON-001,
RECON-002) and no other message can come between the fragments of one. ``send`` is the awaited
send of one message to one connection (an error answering its sender), with the same framing
and ``Connection.send``'s flow control. Every data frame either of them writes, and every data
frame a ``FramedConnection`` receives, moves its ``last_data`` (``ServerConfig.idle_timeout``).
This module depends on websockets only, so that ``behaviour`` and ``faults`` can use it.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable
from typing import Any, Final

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.frames import DATA_OPCODES, Frame
from websockets.protocol import OPEN, Event

logger = logging.getLogger("reference_server")

FRAGMENTS: Final = 3
"""The fragments of one message, when the server fragments (fewer for a shorter text)."""


class FramedConnection(ServerConnection):
    """A server connection that knows how its messages are framed (``fragments``: 1, whole
    messages; 2 or more, that many fragments each) and when it last saw a data frame."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fragments = 1
        self.last_data = self.loop.time()
        """Loop time of the last data frame received from the client or written to it (pings,
        pongs and close frames do not count)."""

    def process_event(self, event: Event) -> None:
        """Note every data frame received (the library then queues it for the handler)."""
        if isinstance(event, Frame) and event.opcode in DATA_OPCODES:
            self.last_data = self.loop.time()
        super().process_event(event)


def pieces(text: str, count: int = FRAGMENTS) -> list[str]:
    """``text`` cut into ``count`` pieces of about equal length, at character boundaries (so
    that each fragment is valid UTF-8 on its own, which the RFC does not require but some
    clients do); fewer when the text is shorter than ``count`` characters, one for ""."""
    count = max(1, min(count, len(text)))
    size, extra = divmod(len(text), count)
    cuts, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        cuts.append(text[start:end])
        start = end
    return cuts


def _fragments(conn: ServerConnection) -> int:
    return conn.fragments if isinstance(conn, FramedConnection) else 1


def _mark(conn: ServerConnection) -> None:
    if isinstance(conn, FramedConnection):
        conn.last_data = conn.loop.time()


def write(connections: Iterable[ServerConnection], text: str) -> None:
    """Write one text message to each connection without awaiting any: ``broadcast`` for those
    that take whole messages, its fragmenting equivalent for the others. As ``broadcast``, it
    skips connections that are not open or are sending a fragmented message, and a failed write
    is logged, never raised."""
    whole: list[ServerConnection] = []
    split: list[ServerConnection] = []
    for conn in connections:
        (whole if _fragments(conn) < 2 else split).append(conn)
        _mark(conn)
    if whole:
        broadcast(whole, text)
    for conn in split:
        _write_fragments(conn, text)


def _write_fragments(conn: ServerConnection, text: str) -> None:
    """``broadcast``'s loop body for one connection, the message in fragments: every fragment
    goes to the protocol at once, then to the transport, so nothing can come between them."""
    if conn.protocol.state is not OPEN:
        return
    if conn.send_in_progress is not None:
        conn.logger.warning("skipped broadcast: sending a fragmented message")
        return
    first, *rest = [piece.encode() for piece in pieces(text, _fragments(conn))]
    protocol = conn.protocol
    try:
        protocol.send_text(first, fin=not rest)
        for index, piece in enumerate(rest, start=1):
            protocol.send_continuation(piece, fin=index == len(rest))
        conn.send_data()
    except Exception as exc:  # as broadcast: one failed connection stops no other
        conn.logger.warning(
            "skipped broadcast: failed to write message: %s",
            traceback.format_exception_only(exc)[0].strip(),
        )


async def send(conn: ServerConnection, text: str) -> None:
    """Send one text message to ``conn``, waiting while its write buffer is full, as
    ``Connection.send`` does (ConnectionClosed once it is closed). Fragmented messages are
    written at once (``write``) rather than with ``send(iterable)``, which would keep the
    connection busy between fragments and make ``write`` skip it meanwhile."""
    _mark(conn)
    count = _fragments(conn)
    if count < 2 or conn.protocol.state is not OPEN:
        await conn.send(text)  # whole; or closed: ConnectionClosed, nothing written
        return
    if conn.send_in_progress is not None:  # another send(iterable): wait for its turn as send does
        await conn.send(pieces(text, count))
        return
    _write_fragments(conn, text)
    try:
        await conn.drain()
    except Exception:  # the transport failed while draining: the connection is closing
        logger.debug("connection lost while draining", exc_info=True)


__all__ = ["FRAGMENTS", "FramedConnection", "pieces", "send", "write"]
