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
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from harness import redact, tls
from harness.core.failures import HarnessError
from harness.target import Target


@dataclass
class Refusal:
    """A handshake that did not open a connection: an HTTP answer other than 101 (``http``,
    ``detail`` saying more when there is more to say), or a close right after it (``close``)."""

    style: str  # "http" | "close"
    status: int | None = None
    close_code: int | None = None
    detail: str = ""

    def describe(self) -> str:
        if self.style == "http":
            return f"HTTP {self.status} at the handshake" if self.status else self.detail
        return f"close {self.close_code} after the handshake"


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


def status_line(head: bytes) -> str:
    """The first line of the server's answer, as text."""
    return head.split(b"\r\n", 1)[0].decode("latin-1")


def accepted(head: bytes) -> bool:
    """Whether the answer is ``101 Switching Protocols``."""
    return " 101 " in f"{status_line(head)} "


def probe(target: Target) -> None:
    """Before any test: the target (each of its ``nodes``) answers TCP and then a WebSocket
    handshake (any answer: an upgrade, a refusal, an error status) within ``connect_timeout``.
    A server that never answers would otherwise cost every test its full timeout. Raises
    :class:`HarnessError`."""
    for node in range(len(target.endpoints)):
        _probe(target, node)


def _probe(target: Target, node: int) -> None:
    host, port = target.node_address(node)
    try:
        sock = socket.create_connection((host, port), timeout=target.connect_timeout)
    except OSError as exc:
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {target.connect_timeout:.1f} s"
        else:
            reason = exc.strerror or str(exc)
        which = f"{target.node_label(node)}: " if target.nodes else ""
        raise HarnessError(f"target unreachable: {which}{host}:{port} ({reason})") from None
    url = target.url_for(target.rooms.get("main", "probe"), node=node)
    where = target.node_label(node) or f"{host}:{port}"
    timed_out = False
    try:
        with sock:
            if target.secure:
                sock = target.tls.context().wrap_socket(sock, server_hostname=target.server_name)
            sock.sendall(request_bytes(url, origin=target.origin, headers=target.headers))
            answered = sock.recv(1)
    except TimeoutError:
        answered, timed_out = b"", True
    except ssl.SSLError as exc:
        # A TLS failure ends the run before any test, with the [tls] key that fixes it (with
        # TLS 1.3 a refused client certificate shows only here, at the first read).
        raise HarnessError(
            tls.explain(exc, target.tls, where, target.server_name) or str(exc)
        ) from None
    except OSError:
        return  # a reset is an answer; the tests will say what is wrong
    if answered:
        return
    if timed_out:
        hint = " (if it serves TLS, use wss:// in url)" if not target.secure else ""
        raise HarnessError(
            f"target does not answer the WebSocket handshake: {where} accepts TCP but "
            f"sent nothing within {target.connect_timeout:.1f} s{hint}"
        )
    if target.secure:
        raise HarnessError(tls.closed_after_handshake(target.tls, where))
    raise HarnessError(
        f"target does not answer the WebSocket handshake: {where} closed the connection "
        "without a word (if it serves TLS, use wss:// in url)"
    )
