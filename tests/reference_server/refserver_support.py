"""Helpers for the reference server's tests: tokens, a small client, bounded waits."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import jwt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from reference_server.demo import DEMO_SECRET, demo_user_id
from reference_server.runner import free_port

T = TypeVar("T")

# Every wait is bounded; scale them all at once on a slow machine.
TIMEOUT = 3.0 * float(os.environ.get("REFERENCE_SERVER_TESTS_TIMEOUT_FACTOR", "1"))


def run(coro: Coroutine[Any, Any, T], timeout: float = 4 * TIMEOUT) -> T:
    """Run a coroutine on a fresh loop, bounded."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


def make_token(
    user: str = "bob",
    *,
    secret: str = DEMO_SECRET,
    algorithm: str = "HS256",
    lifetime: int = 3600,
    claims: dict[str, Any] | None = None,
) -> str:
    """A token for a demo user (``sub`` = its id) unless ``claims`` replaces the payload."""
    now = int(time.time())
    payload = {"sub": demo_user_id(user), "iat": now, "exp": now + lifetime}
    if claims is not None:
        payload = claims
    return jwt.encode(payload, secret, algorithm=algorithm)


def room_url(url_template: str, room: str = "general", host: str = "alice") -> str:
    """The endpoint URL of a room."""
    return url_template.format(host=host, room=room)


class Client:
    """A recording client: frames received are parsed and kept until matched."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, frame: Any) -> None:
        """Send a frame: dicts and lists as JSON, str and bytes as they are."""
        await self.ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    async def recv(self, timeout: float = TIMEOUT) -> Any:
        """The next frame, JSON-decoded when possible."""
        async with asyncio.timeout(timeout):
            raw = await self.ws.recv()
        try:
            return json.loads(raw)
        except ValueError:
            return raw

    async def expect(self, predicate: Callable[[Any], bool], timeout: float = TIMEOUT) -> Any:
        """The first frame matching ``predicate``, skipping the others."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if predicate(frame):
                    return frame

    async def until(self, predicate: Callable[[Any], bool], timeout: float = TIMEOUT) -> list[Any]:
        """Every frame up to and including the first one matching ``predicate``."""
        seen: list[Any] = []
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                seen.append(frame)
                if predicate(frame):
                    return seen

    async def error(self, timeout: float = TIMEOUT) -> Any:
        """The next error frame, skipping events."""
        return await self.expect(is_error, timeout)

    async def say(self, body: str, **extra: Any) -> dict[str, Any]:
        """Send a text message and return its own ``new`` event."""
        await self.send({"type": "text", "message": body, **extra})
        event: dict[str, Any] = await self.expect(lambda f: is_new(f, body))
        return event

    async def sentinel(self, *others: Client) -> list[list[Any]]:
        """Send a unique message and collect, on every given client, what arrived before it.

        Protocol notes, "Prove absence with a sentinel": delivery on one connection is FIFO.
        """
        body = f"sentinel-{time.monotonic_ns()}"
        await self.send({"type": "text", "message": body})
        return [await c.until(lambda f: is_new(f, body)) for c in (self, *others)]


def _body(frame: Any) -> str:
    body = frame.get("body") if isinstance(frame, dict) else None
    return body if isinstance(body, str) else ""


def is_new(frame: Any, body: str) -> bool:
    """Whether ``frame`` is the ``new`` event of ``body``."""
    return isinstance(frame, dict) and frame.get("action") == "new" and frame.get("body") == body


def is_error(frame: Any, error: str | None = None) -> bool:
    """Whether ``frame`` is an error frame (with that text)."""
    return isinstance(frame, dict) and "error" in frame and error in (None, frame["error"])


@asynccontextmanager
async def client(
    url_template: str,
    user: str = "bob",
    room: str = "general",
    host: str = "alice",
    *,
    token: str | None = None,
    transport: str = "query",
    name: str = "token",
    suffix: str = "",
    **kwargs: Any,
) -> AsyncIterator[Client]:
    """Connect as ``user`` (token in the query string by default)."""
    url = room_url(url_template, room, host) + suffix
    token = make_token(user) if token is None else token
    # max_queue=None: a test that leaves its own events unread must not stall the close handshake.
    options: dict[str, Any] = {"proxy": None, "open_timeout": TIMEOUT, "max_queue": None, **kwargs}
    if transport == "query":
        url += ("&" if "?" in url else "?") + f"{name}={token}"
    elif transport == "cookie":
        options["additional_headers"] = {"Cookie": f"other=1; {name}={token}"}
    elif transport == "header":
        options["additional_headers"] = {"Authorization": f"Bearer {token}"}
    elif transport == "subprotocol":
        options["subprotocols"] = [token]
    elif transport != "none":
        raise ValueError(transport)
    async with connect(url, **options) as ws:
        yield Client(ws)


async def refusal(connecting: Any, timeout: float = TIMEOUT) -> str:
    """How a connection attempt ended: ``http NNN``, ``close NNNN``, ``open`` (a probe message
    came back) or ``silent`` (open, but the probe got no answer within ``timeout``)."""
    try:
        async with connecting as conn:
            probe = f"probe-{time.monotonic_ns()}"
            try:
                await conn.send({"type": "text", "message": probe})
                await conn.expect(lambda f: is_new(f, probe), timeout)
            except ConnectionClosed as exc:
                return f"close {exc.rcvd.code}" if exc.rcvd else "closed"
            except TimeoutError:
                return "silent"
            return "open"
    except InvalidStatus as exc:
        return f"http {exc.response.status_code}"


# -- load: a burst of many senders, a reader that lags ---------------------------------------------


def padded(head: str, chars: int) -> str:
    """``head`` padded with dots to ``chars`` characters."""
    return head + "." * max(0, chars - len(head))


async def burst(
    urls: list[str],
    *,
    senders: int = 10,
    messages: int = 50,
    receivers: int = 5,
    chars: int = 200,
    timeout: float = 10 * TIMEOUT,
) -> list[list[tuple[int, int, str]]]:
    """Senders send ``messages`` each at once, without waiting; what each receiver got of them:
    (sender, number, message id) in order of arrival. Connections go round-robin over ``urls``.

    The end of the burst is proven per sender (its frames are handled in order): each sends an
    end mark after its messages, again every half second until every receiver has all the
    marks, so that a server that drops events cannot make the wait hang.
    """
    tag = f"burst-{time.monotonic_ns()}"
    users = ("bob", "carol", "alice")
    async with AsyncExitStack() as stack:
        readers = [
            await stack.enter_async_context(client(urls[i % len(urls)], users[i % 3]))
            for i in range(receivers)
        ]
        writers = [
            await stack.enter_async_context(client(urls[(i + receivers) % len(urls)], users[i % 3]))
            for i in range(senders)
        ]
        got: list[list[tuple[int, int, str]]] = [[] for _ in readers]
        marks: list[set[int]] = [set() for _ in readers]

        async def read(index: int, conn: Client) -> None:
            while len(marks[index]) < senders:
                frame = await conn.recv(timeout)
                body = frame.get("body") if isinstance(frame, dict) else None
                if not isinstance(body, str) or not body.startswith(tag):
                    continue
                _, kind, who, number = body.split()[0].split(":")
                if kind == "end":
                    marks[index].add(int(who))
                else:
                    got[index].append((int(who), int(number), frame["id"]))

        async def write(who: int, conn: Client) -> None:
            for number in range(messages):
                body = padded(f"{tag}:m:{who}:{number} ", chars)
                await conn.send({"type": "text", "message": body})
            while not all(who in seen for seen in marks):
                await conn.send({"type": "text", "message": f"{tag}:end:{who}:0"})
                with suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await done.wait()

        done = asyncio.Event()
        reading = asyncio.gather(*(read(i, conn) for i, conn in enumerate(readers)))
        reading.add_done_callback(lambda _: done.set())
        async with asyncio.timeout(timeout):
            await asyncio.gather(reading, *(write(i, conn) for i, conn in enumerate(writers)))
        return got


async def lagging_reader(
    reader_url: str, sender_url: str, *, total: int = 2_000_000, chars: int = 500
) -> tuple[int, int]:
    """A reader with a 4 KiB receive buffer stops reading while about ``total`` bytes of events
    are sent to its room, then reads again: (events sent, events it got). The sender's own echo
    of a mark proves the server has written (or skipped) everything before it; the reader then
    reads until a mark reaches it too (sent again every half second, so that a server that
    skips events cannot make the wait hang)."""
    tag = f"lag-{time.monotonic_ns()}"
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    port = int(reader_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    async with client(reader_url, "carol", sock=sock) as reader, client(sender_url) as sender:
        reader.ws.transport.pause_reading()
        count = total // (chars + 250)  # an event is its body and about 250 bytes of fields
        for number in range(count):
            await sender.send({"type": "text", "message": padded(f"{tag}:{number} ", chars)})
        # The sender read nothing meanwhile: a server that skips lagging readers may skip its
        # own echo of the mark too. A mark goes again every half second until one comes back.
        while True:
            await sender.send({"type": "text", "message": f"{tag}:end"})
            with suppress(TimeoutError):
                await sender.expect(lambda f: _body(f).startswith(f"{tag}:end"), 0.5)
                break
        reader.ws.transport.resume_reading()
        got: set[str] = set()
        done = asyncio.Event()

        async def read() -> None:
            while True:
                frame = await reader.recv(10 * TIMEOUT)
                body = frame.get("body") if isinstance(frame, dict) else None
                if isinstance(body, str) and body.startswith(f"{tag}:end"):
                    done.set()
                    return
                if isinstance(body, str) and body.startswith(tag):
                    got.add(body)

        async def mark() -> None:
            while not done.is_set():
                await sender.send({"type": "text", "message": f"{tag}:end"})
                with suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await done.wait()

        await asyncio.gather(read(), mark())
        return count, len(got)


# -- PostgreSQL, for the store's tests -------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The directory of PostgreSQL's ``initdb`` and ``pg_ctl``: on PATH, else Debian's
    ``/usr/lib/postgresql/VERSION/bin`` (the newest); None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found is not None:
        return Path(found).parent
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    return debian[-1].parent if debian else None


@contextmanager
def postgres_server(bin_dir: Path, timeout: float = 60.0) -> Iterator[str]:
    """A throwaway PostgreSQL cluster (initdb, pg_ctl of ``bin_dir``) on a free port of
    127.0.0.1; yields the URL of its ``postgres`` database (user postgres, trust
    authentication). Run as root, the programs run as the ``postgres`` user, which owns the
    data directory."""
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    directory = Path(tempfile.mkdtemp(prefix="edusphere-pg-"))
    data = directory / "data"
    if as_postgres:
        shutil.chown(directory, "postgres")
    port = free_port()

    def run_as(program: str, *argv: str) -> None:
        command = [*as_postgres, str(bin_dir / program), *argv]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    try:
        run_as("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "-N")
        options = f"-p {port} -k {directory} -h 127.0.0.1 -F"
        log = str(directory / "postgres.log")
        run_as("pg_ctl", "-D", str(data), "-o", options, "-l", log, "-w", "-t", "30", "start")
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            run_as("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
