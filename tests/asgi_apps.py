"""Small ASGI applications for tests/test_asgi.py: each does one thing right or wrong, so that
the in-process driver (:mod:`harness.asgi`) is seen to hand it what an ASGI server would and to
report what it does as the wire would show it. Named in target files as ``tests.asgi_apps:NAME``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: The scopes :func:`recorder` saw, and the disconnects it received, newest last.
SCOPES: list[Scope] = []
DISCONNECTS: list[MutableMapping[str, Any]] = []


async def _no_lifespan(scope: Scope, receive: Receive, send: Send) -> bool:
    if scope["type"] == "lifespan":
        raise RuntimeError("no lifespan here")  # allowed: the server goes on without it
    return False


async def recorder(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts with the first subprotocol offered and a header, then answers each text frame
    with a JSON description of the scope and the frame."""
    await _no_lifespan(scope, receive, send)
    SCOPES.append(scope)
    assert (await receive())["type"] == "websocket.connect"
    offered = scope["subprotocols"]
    await send(
        {
            "type": "websocket.accept",
            "subprotocol": offered[0] if offered else None,
            "headers": [(b"x-app", b"recorder")],
        }
    )
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            DISCONNECTS.append(message)
            return
        described = {
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
            "subprotocols": scope["subprotocols"],
            "scheme": scope["scheme"],
            "text": message.get("text"),
            "state": sorted(scope.get("state", {})),
        }
        await send({"type": "websocket.send", "text": json.dumps(described)})


async def raising_after_accept(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts, then raises at the first frame, with the query string (the token) in its
    message: the transcript must mask it."""
    await _no_lifespan(scope, receive, send)
    await receive()
    await send({"type": "websocket.accept"})
    await receive()
    raise ValueError(f"the database said no to {scope['query_string'].decode()}")


async def raising(scope: Scope, receive: Receive, send: Send) -> None:
    """Raises at every call: at the handshake."""
    raise RuntimeError("boom at the handshake")


async def closing_before_accept(scope: Scope, receive: Receive, send: Send) -> None:
    await _no_lifespan(scope, receive, send)
    await receive()
    await send({"type": "websocket.close", "code": 4401})


async def denying(scope: Scope, receive: Receive, send: Send) -> None:
    """Refuses with HTTP 401 through the WebSocket Denial Response extension."""
    await _no_lifespan(scope, receive, send)
    await receive()
    assert "websocket.http.response" in scope["extensions"]
    await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
    await send({"type": "websocket.http.response.body", "body": b"no", "more_body": False})


async def wrong_subprotocol(scope: Scope, receive: Receive, send: Send) -> None:
    await _no_lifespan(scope, receive, send)
    await receive()
    await send({"type": "websocket.accept", "subprotocol": "never-offered"})


async def silent(scope: Scope, receive: Receive, send: Send) -> None:
    """Never answers a handshake."""
    await _no_lifespan(scope, receive, send)
    await asyncio.Event().wait()


async def flooding(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts, then sends frames without end (each send waits when the client is behind)."""
    await _no_lifespan(scope, receive, send)
    await receive()
    await send({"type": "websocket.accept"})
    frame = json.dumps({"type": "chat_message", "action": "new", "body": "x" * 1000})
    while True:
        await send({"type": "websocket.send", "text": frame})


async def huge(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts, then sends one 2 MiB frame."""
    await _no_lifespan(scope, receive, send)
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "x" * (2 * 1024 * 1024)})
    await receive()


async def failing_startup(scope: Scope, receive: Receive, send: Send) -> None:
    """A lifespan whose startup fails (the database is down, say)."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "cannot reach the database"})
        return
    raise AssertionError("never reached")


class WithLifespan:
    """An application object with a lifespan: its state reaches every connection's scope."""

    def __init__(self) -> None:
        self.started = 0
        self.stopped = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.started += 1
                    scope["state"]["pool"] = "ready"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    self.stopped += 1
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await recorder(scope, receive, send)


with_lifespan = WithLifespan()


def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Not an ASGI application."""
    return [b""]


NOT_CALLABLE = {"an": "object"}


#: What :func:`closing` received after its close, and what its send after it raised.
AFTER_CLOSE: list[object] = []


async def closing(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts, closes with 4000 at the first frame, then receives (the client's reply) and
    tries to send once more."""
    await _no_lifespan(scope, receive, send)
    await receive()
    await send({"type": "websocket.accept"})
    await receive()
    await send({"type": "websocket.close", "code": 4000, "reason": "bye"})
    AFTER_CLOSE.append(await receive())
    try:
        await send({"type": "websocket.send", "text": "too late"})
    except OSError as exc:
        AFTER_CLOSE.append(type(exc).__name__)
