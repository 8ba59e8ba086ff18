"""A hostile WebSocket server for the harness's own tests: it answers the opening handshake
properly (any path, any query, any token), then misbehaves in one of a few ways.

Modes (one per server):

- ``huge``: each connection is sent one text frame whose header announces 64 MiB; the payload
  follows in chunks of one reusable buffer until the peer goes away (64 MiB is never built);
- ``flood``: small JSON frames, as fast as the socket takes them, at most
  :data:`FLOOD_FRAMES` per connection, then idle;
- ``echo``: every text frame received is sent back unchanged; a close is answered;
- ``silent``: reads and discards, never sends; a close is answered with a close.

Bounded and self-stopping: it listens on 127.0.0.1 only, on a free port, serves at most
:data:`MAX_CONNECTIONS` connections at once, and stops by itself after ``lifetime`` seconds.
Run it with :func:`serve` (a context manager yielding the target's URL template) and point a
target file at it with :func:`write_hostile_target`.

The frame code is written out here (RFC 6455 5.2) rather than borrowed from websockets, so that
the server can do what a library never would: announce a length and never stop sending.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import write_target

MODES = ("huge", "flood", "echo", "silent")
#: What ``huge`` announces in its frame header: 64 MiB.
HUGE_BYTES = 64 * 1024 * 1024
#: ``huge`` streams its payload in chunks of this many bytes, from one reusable buffer.
CHUNK_BYTES = 64 * 1024
#: ``flood`` sends at most this many frames per connection, then idles.
FLOOD_FRAMES = 2_000_000
#: ``flood`` writes its frames in batches of this many (one ``sendall`` each).
FLOOD_BATCH = 512
#: Connections served at once; more are closed at once.
MAX_CONNECTIONS = 64
#: The largest client frame ``echo`` and ``silent`` read; a larger one closes with 1009.
MAX_CLIENT_FRAME = 1024 * 1024
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_REQUEST = 64 * 1024
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


class PeerGone(Exception):
    """The client went away (or the server is stopping)."""


def accept_value(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    digest = hashlib.sha1((key + _GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def frame_header(opcode: int, length: int) -> bytes:
    """An unmasked server frame header (FIN set) announcing ``length`` payload bytes."""
    first = 0x80 | opcode
    if length < 126:
        return struct.pack("!BB", first, length)
    if length < 1 << 16:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def server_frame(opcode: int, payload: bytes) -> bytes:
    return frame_header(opcode, len(payload)) + payload


class _Wire:
    """Reading from one client socket: exact reads, the handshake, masked frames."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = b""

    def read_exact(self, n: int) -> bytes:
        while len(self.pending) < n:
            try:
                data = self.sock.recv(max(n - len(self.pending), 4096))
            except OSError as exc:
                raise PeerGone from exc
            if not data:
                raise PeerGone
            self.pending += data
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def request(self) -> bytes:
        while b"\r\n\r\n" not in self.pending:
            if len(self.pending) > _MAX_REQUEST:
                raise PeerGone
            try:
                data = self.sock.recv(4096)
            except OSError as exc:
                raise PeerGone from exc
            if not data:
                raise PeerGone
            self.pending += data
        head, self.pending = self.pending.split(b"\r\n\r\n", 1)
        return head

    def frame(self) -> tuple[int, bytes]:
        """The next client frame (opcode, unmasked payload); a frame over the bound: PeerGone
        after a close 1009."""
        first, second = self.read_exact(2)
        opcode, length = first & 0x0F, second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self.read_exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self.read_exact(8))
        if length > MAX_CLIENT_FRAME:
            send(self.sock, server_frame(CLOSE, struct.pack("!H", 1009)))
            raise PeerGone
        mask = self.read_exact(4) if second & 0x80 else b""
        data = self.read_exact(length)
        if mask:
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        return opcode, data


def send(sock: socket.socket, data: bytes | memoryview) -> None:
    try:
        sock.sendall(data)
    except OSError as exc:
        raise PeerGone from exc


def _handshake(wire: _Wire) -> bool:
    head = wire.request()
    key = ""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip().decode("latin-1")
    if not key:
        send(wire.sock, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        return False
    send(
        wire.sock,
        (
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_value(key)}\r\n\r\n"
        ).encode("ascii"),
    )
    return True


def _answer(wire: _Wire, *, echo: bool) -> None:
    """Read client frames until the peer goes away: answer a close (then stop), a ping, and
    with ``echo`` send text frames back."""
    while True:
        opcode, data = wire.frame()
        if opcode == CLOSE:
            send(wire.sock, server_frame(CLOSE, data[:2]))
            return
        if opcode == PING:
            send(wire.sock, server_frame(PONG, data))
        elif opcode == TEXT and echo:
            send(wire.sock, server_frame(TEXT, data))


#: The buffer ``huge`` streams from (one for every connection: it is only read).
_CHUNK = memoryview(b"a" * CHUNK_BYTES)


def _huge(wire: _Wire, progress: list[int]) -> None:
    """One frame announcing :data:`HUGE_BYTES`; ``progress[0]`` counts the payload bytes the
    socket took before the peer went away."""
    send(wire.sock, frame_header(TEXT, HUGE_BYTES))
    while progress[0] < HUGE_BYTES:
        part = _CHUNK[: min(CHUNK_BYTES, HUGE_BYTES - progress[0])]
        send(wire.sock, part)
        progress[0] += len(part)
    _answer(wire, echo=False)


def _flood(wire: _Wire) -> None:
    sent = 0
    while sent < FLOOD_FRAMES:
        n = min(FLOOD_BATCH, FLOOD_FRAMES - sent)
        batch = b"".join(
            server_frame(TEXT, b'{"type": "flood", "n": %d}' % i) for i in range(sent, sent + n)
        )
        send(wire.sock, batch)
        sent += n
    _answer(wire, echo=False)


class HostileServer:
    """The server: an accept loop in a thread, one thread per connection."""

    def __init__(self, mode: str, lifetime: float = 600.0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self.deadline = time.monotonic() + lifetime
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.clients: dict[socket.socket, threading.Thread] = {}
        #: ``huge``: per connection, the payload bytes sent before the peer went away.
        self.huge_sent: list[int] = []
        self.thread = threading.Thread(target=self._accept_loop, name="hostile", daemon=True)

    @property
    def url_template(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat/{{host}}/{{room}}"

    def start(self) -> HostileServer:
        self.thread.start()
        return self

    def _accept_loop(self) -> None:
        while not self.stopping.is_set() and time.monotonic() < self.deadline:
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            with self.lock:
                if len(self.clients) >= MAX_CONNECTIONS or self.stopping.is_set():
                    sock.close()
                    continue
                worker = threading.Thread(
                    target=self._serve, args=(sock,), name="hostile-conn", daemon=True
                )
                self.clients[sock] = worker
            worker.start()
        self.stopping.set()
        self.listener.close()
        self._shut_clients()

    def _serve(self, sock: socket.socket) -> None:
        # A bound on every blocking call: a peer that stops reading cannot hold a thread past
        # the server's lifetime.
        sock.settimeout(max(0.1, self.deadline - time.monotonic()))
        wire = _Wire(sock)
        try:
            if _handshake(wire):
                if self.mode == "huge":
                    progress = [0]
                    try:
                        _huge(wire, progress)
                    finally:
                        with self.lock:
                            self.huge_sent.append(progress[0])
                elif self.mode == "flood":
                    _flood(wire)
                else:
                    _answer(wire, echo=self.mode == "echo")
        except PeerGone:
            pass
        finally:
            with self.lock:
                self.clients.pop(sock, None)
            sock.close()

    def _shut_clients(self) -> None:
        with self.lock:
            socks = list(self.clients)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self._shut_clients()
        with self.lock:
            workers = list(self.clients.values())
        for worker in workers:
            worker.join(timeout=5)


@contextlib.contextmanager
def serve(mode: str, lifetime: float = 600.0) -> Iterator[str]:
    """A hostile server in a background thread; yields its URL template
    (``ws://127.0.0.1:PORT/ws/chat/{host}/{room}``) and stops it on exit."""
    server = HostileServer(mode, lifetime).start()
    try:
        yield server.url_template
    finally:
        server.stop()


def hostile_target(url: str, timeout: float = 1.0, **limits: int) -> dict[str, Any]:
    """A target description for a hostile server: every role and room named, short timeouts."""
    secret = "hostile-server-secret-0123456789abcdef-0123456789"
    accounts = {
        role: {"username": name, "user_id": f"00000000-0000-4000-8000-00000000000{i}"}
        for i, (role, name) in enumerate(
            [("host", "alice"), ("member", "bob"), ("member2", "carol"), ("outsider", "dave")]
        )
    }
    data: dict[str, Any] = {
        "url": url,
        "connect_timeout": timeout,
        "receive_timeout": timeout,
        "auth": {"transport": "query", "secret": secret},
        "accounts": accounts,
        "rooms": {"main": "general", "other": "random", "missing": "no-such-room"},
    }
    if limits:
        data["limits"] = dict(limits)
    return data


def write_hostile_target(path: Path, url: str, timeout: float = 1.0, **limits: int) -> Path:
    """Write a target file for a hostile server (see :func:`hostile_target`)."""
    return write_target(path, hostile_target(url, timeout, **limits))


# --- running the CLI with its peak memory measured -----------------------------------------

#: Runs a command, bounded by a timeout, and writes its exit status, wall time and peak resident
#: memory (of the command and every descendant it waited for) as JSON to a file. A process of its
#: own, so that no earlier child of the test process counts.
_MEASURE = """
import json, resource, subprocess, sys, time
out, timeout, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
t0 = time.monotonic()
try:
    code = subprocess.run(cmd, timeout=timeout, check=False).returncode
except subprocess.TimeoutExpired:
    code = None
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
with open(out, "w") as f:
    json.dump({"code": code, "seconds": time.monotonic() - t0, "peak_rss": peak}, f)
"""


@dataclass
class Measured:
    """One measured run: exit status (None: killed at the timeout), wall time, peak RSS."""

    code: int | None
    seconds: float
    peak_rss: int
    output: str


def run_measured(cmd: list[str], out_dir: Path, timeout: float) -> Measured:
    """Run ``cmd`` in a measuring wrapper (see :data:`_MEASURE`); ``timeout`` is a hang guard."""
    out_dir.mkdir(parents=True, exist_ok=True)
    numbers = out_dir / "measured.json"
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(numbers), str(timeout), *cmd],
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        check=False,
    )
    data = json.loads(numbers.read_text())
    return Measured(data["code"], data["seconds"], data["peak_rss"], done.stdout + done.stderr)


if __name__ == "__main__":  # pragma: no cover - by hand: serve one mode until Ctrl-C
    import sys

    mode = sys.argv[1] if len(sys.argv) > 1 else "flood"
    with serve(mode) as url:
        print(json.dumps({"mode": mode, "url": url}), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
