"""The raw WebSocket handshake, written by hand: the reachability probe (before any test) and
the half-open clients (which must own their socket), and the small sockets both need."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import ssl
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from harness.core.failures import HarnessError
from harness.target import Target
from harness.wire import tls
from harness.wire.plan import Plan

#: What a half-open client's handshake may fail with (the pump turns it into CONN-001).
RAW_FAILURES = (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError)


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


async def small_socket(size: int, address: tuple[str, int], timeout: float) -> socket.socket:
    """A connected socket with a tiny receive buffer, to make a half-open client bite fast.
    Each address of the host is tried in turn, as ``socket.create_connection`` does
    (``localhost`` may name ::1 first, where an IPv4-only server refuses)."""
    host, port = address
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError | None = None
    async with asyncio.timeout(timeout):
        for family, type_, proto, _, addr in infos:
            sock = socket.socket(family, type_, proto)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, addr)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            except BaseException:
                sock.close()
                raise
            return sock
    raise error or OSError(f"no address for {host}")


class HalfOpen:
    """A raw connection that stopped reading after its handshake: the server's writes to it
    pile up until they block."""

    def __init__(self, name: str, writer: asyncio.StreamWriter) -> None:
        self.name = name
        self.writer = writer

    def close(self) -> None:
        self.writer.transport.abort()


async def open_half_open(
    plan: Plan, address: tuple[str, int]
) -> tuple[asyncio.StreamWriter, bytes]:
    """Complete the handshake of ``plan`` on a socket with a 2 KiB receive buffer to
    ``address``, and read its answer's head; the caller judges it (:func:`accepted`) and then
    never reads again. Raises one of :data:`RAW_FAILURES`."""
    sock = await small_socket(2048, address, plan.connect_timeout)
    try:
        async with asyncio.timeout(plan.connect_timeout):
            tls_options = {"ssl": plan.ssl, "server_hostname": plan.server_name} if plan.ssl else {}
            reader, writer = await asyncio.open_connection(sock=sock, limit=2**16, **tls_options)
            writer.write(
                request_bytes(
                    plan.url,
                    origin=plan.origin,
                    headers=plan.headers,
                    subprotocols=plan.subprotocols,
                )
            )
            head = await reader.readuntil(b"\r\n\r\n")
    except BaseException:
        sock.close()
        raise
    if not accepted(head):
        writer.transport.abort()
    return writer, head


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
