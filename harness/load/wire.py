"""A load-mode connection: websockets' sync client with the target's handshake (the token's
transport, ``[headers]``, origin, TLS) into ``rooms.main`` on one node. The check before any
load (no gevent yet) and every Locust user open theirs here."""

from __future__ import annotations

from typing import Any

from websockets.sync.client import ClientConnection, connect

from harness import handshake
from harness.target import Target

__all__ = ["open_connection"]


def open_connection(target: Target, node: int, token: str) -> ClientConnection:
    """A connection to ``rooms.main`` on endpoint ``node``, with ``token``. Raises what
    websockets' ``connect`` raises (InvalidStatus, InvalidHandshake, TimeoutError, OSError)."""
    url = target.url_for(target.rooms["main"], node=node)
    url, headers, subprotocols = handshake.request_parts(target, url, token)
    extra: dict[str, Any] = {}
    if target.secure:
        extra = {"ssl": target.tls.context(), "server_hostname": target.server_name}
    return connect(
        url,
        additional_headers=headers,
        subprotocols=subprotocols,  # type: ignore[arg-type, unused-ignore]
        origin=target.origin,  # type: ignore[arg-type, unused-ignore]
        open_timeout=target.connect_timeout,
        close_timeout=1.0,
        max_size=target.max_received_frame_bytes,
        ping_interval=None,  # no keepalive pings: a run is judged on its events
        proxy=None,
        **extra,
    )
