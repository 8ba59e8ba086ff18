"""The raw WebSocket handshake, written by hand: one request builder and one status reader for
the reachability probe (before any test) and the half-open clients (which must own their socket).
Everything else connects through websockets (:mod:`harness.client`).
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from harness.core.failures import HarnessError
from harness.target import Target


def request_bytes(
    url: str,
    *,
    origin: str | None = None,
    headers: Mapping[str, str] | None = None,
    subprotocols: Sequence[str] | None = None,
) -> bytes:
    """The HTTP/1.1 upgrade request for ``url`` (RFC 6455 4.1), with a fresh key."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin:
        lines.append(f"Origin: {origin}")
    if subprotocols:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(subprotocols)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_line(head: bytes) -> str:
    """The first line of the server's answer, as text."""
    return head.split(b"\r\n", 1)[0].decode("latin-1")


def accepted(head: bytes) -> bool:
    """Whether the answer is ``101 Switching Protocols``."""
    return " 101 " in f"{status_line(head)} "


def probe(target: Target) -> None:
    """Before any test: the target answers TCP and then a WebSocket handshake (any answer: an
    upgrade, a refusal, an error status) within ``connect_timeout``. A server that never
    answers would otherwise cost every test its full timeout. Raises :class:`HarnessError`."""
    host, port = target.address
    try:
        sock = socket.create_connection((host, port), timeout=target.connect_timeout)
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise HarnessError(
            f"target unreachable: {host}:{port} ({reason}, within {target.connect_timeout:.1f} s)"
        ) from None
    url = target.url_for(target.rooms.get("main", "probe"))
    try:
        with sock:
            if urlsplit(url).scheme == "wss":
                context = ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=host)
            sock.sendall(request_bytes(url, origin=target.origin))
            answered = sock.recv(1)
    except TimeoutError:
        answered = b""
    except OSError:
        return  # a reset or a TLS failure is an answer; the tests will say what is wrong
    if not answered:
        raise HarnessError(
            f"target does not answer the WebSocket handshake: {host}:{port} accepts TCP but "
            f"sent nothing within {target.connect_timeout:.1f} s"
        )
