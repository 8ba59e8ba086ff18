"""Helpers for the reference server's tests: tokens, a small client, bounded waits."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import jwt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from reference_server.demo import DEMO_SECRET, demo_user_id

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
