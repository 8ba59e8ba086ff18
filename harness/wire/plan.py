"""One handshake, planned: everything an opener needs, decided before any socket exists.

A :class:`Plan` is built once per connection from the target (:func:`plan_for`): where the token
goes (``auth.transport``: the query, a cookie, a header, the subprotocols), ``[headers]``, the
origin, TLS (``wss://``), the timeouts and the bounds. Every opener of :mod:`harness.wire` (the
asyncio client, the in-process application, the raw half-open client, the load mode's sync
client) takes one, so the four speak the same handshake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from harness import redact
from harness.target import Target, address_of


@dataclass(frozen=True)
class Plan:
    """A handshake to make: the request (``url``, ``headers``, ``subprotocols``, ``origin``), TLS
    (``ssl``: the client context of a ``wss://`` target, None for ``ws://``; ``server_name``),
    the time it may take and the bounds of the connection it opens (``max_size``: the largest
    frame accepted, refused from its header; ``receive_buffer``: the socket's receive buffer, a
    reader that lags)."""

    url: str
    headers: dict[str, str]
    subprotocols: list[str] | None
    origin: str | None
    connect_timeout: float
    close_timeout: float
    max_size: int
    receive_buffer: int | None = None
    ssl: Any = None
    server_name: str | None = None

    @property
    def path(self) -> str:
        """The request target: the path and the query."""
        parts = urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    @property
    def address(self) -> tuple[str, int]:
        return address_of(self.url)


def request_parts(
    target: Target, url: str, token: str | None
) -> tuple[str, dict[str, str], list[str] | None]:
    """Where ``token`` goes in a handshake to ``url``, by the target's ``auth.transport``: the
    URL (a query parameter), the headers (``[headers]``, a cookie, an ``Authorization``-style
    header) and the subprotocols. The query's encoded token is registered for redaction."""
    headers: dict[str, str] = dict(target.headers)
    subprotocols: list[str] | None = None
    auth = target.auth
    if token is not None:
        if auth.transport == "query":
            parts = urlsplit(url)
            encoded = quote(token, safe="")
            redact.register(encoded)
            query = (parts.query + "&" if parts.query else "") + f"{auth.param_name}={encoded}"
            url = urlunsplit(parts._replace(query=query))
        elif auth.transport == "cookie":
            headers["Cookie"] = f"{auth.param_name}={token}"
        elif auth.transport == "header":
            headers[auth.param_name] = f"{auth.scheme} {token}" if auth.scheme else token
        elif auth.transport == "subprotocol":
            subprotocols = [auth.name, token] if auth.name else [token]
    return url, headers, subprotocols


def plan_for(
    target: Target,
    url: str,
    token: str | None,
    *,
    receive_buffer: int | None = None,
    close_timeout: float | None = None,
) -> Plan:
    """The handshake to ``url`` with ``token`` as ``target`` describes it. Raises
    :class:`~harness.wire.tls.TlsError` for ``[tls]`` settings that do not load."""
    url, headers, subprotocols = request_parts(target, url, token)
    return Plan(
        url=url,
        headers=headers,
        subprotocols=subprotocols,
        origin=target.origin,
        connect_timeout=target.connect_timeout,
        close_timeout=target.receive_timeout if close_timeout is None else close_timeout,
        max_size=target.max_received_frame_bytes,
        receive_buffer=receive_buffer,
        ssl=target.tls.context() if target.secure else None,
        server_name=target.server_name if target.secure else None,
    )
