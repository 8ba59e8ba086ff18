"""The bundled reference client: the seed's reconnection policy, exactly.

Seed, "Connection Management / Reconnection Logic"::

    Connection Lost -> reconnectAttempts < MAX_RECONNECT_ATTEMPTS ?
        yes -> Increment reconnectAttempts -> setTimeout(RECONNECT_DELAY * attempts)
               -> Attempt Reconnection -> Success -> Reset reconnectAttempts = 0
                                       -> Failure -> (check again)
        no  -> Show Connection Failed

Seed, "Configuration Constants": ``MAX_RECONNECT_ATTEMPTS: 5``, ``RECONNECT_DELAY: 3000ms base
delay``, ``Actual delay: RECONNECT_DELAY * reconnectAttempts``.

How this client reads it:

- The delay of attempt ``n`` is ``base_delay * n`` and is scheduled when the loss or the failure
  of attempt ``n - 1`` is observed (so attempt n starts ``base_delay * n`` after the previous
  failure, not after the original loss).
- Exactly one reconnection is scheduled per loss or failure (one timer at a time).
- The counter resets to 0 when a connection opens.
- No reconnection after a clean close (the server sent close code 1000), nor after the client's
  own :meth:`ReconnectingClient.close`. Any other end of the connection (abnormal closure 1006,
  1001 going away, 1011, ...) is a loss.
- A failed *first* connection is handled as a failure: it is retried by the same policy.
- States (seed, "Connection States"): ``connected`` once a connection opens; ``disconnected``
  before the first connection, after a loss (while waiting to reconnect) and after a clean or
  own close; ``error`` after a failed attempt and when the client gives up.

Library use::

    client = ReconnectingClient(url, token_provider=lambda: token, base_delay=3.0)
    task = asyncio.create_task(client.run())
    await client.wait_connected(timeout=10)
    await client.send_text("hello")
    await client.close()

Command line: ``python -m reference_client`` reads ``EDUSPHERE_WS_URL`` (required),
``EDUSPHERE_TOKEN`` (optional, sent as ``Authorization: Bearer``), ``EDUSPHERE_RECONNECT_DELAY_MS``
(default 3000) and ``EDUSPHERE_MAX_RECONNECT_ATTEMPTS`` (default 5). It sends one text frame,
``hello after reconnect N``, after every (re)connection, and exits 0 after a clean close, 1 when it
gives up.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.uri import parse_uri

from harness.core.frames import now_rfc3339

__all__ = [
    "DEFAULT_BASE_DELAY",
    "DEFAULT_MAX_ATTEMPTS",
    "NotConnectedError",
    "ReconnectingClient",
    "State",
    "delete_frame",
    "main",
    "text_frame",
    "update_frame",
]

State = Literal["disconnected", "connected", "error"]
"""Connection states of the seed's "Connection States" table."""

Finish = Literal["clean-close", "gave-up", "closed"]
"""Why :meth:`ReconnectingClient.run` returned."""

DEFAULT_BASE_DELAY = 3.0
"""Seed: ``RECONNECT_DELAY: 3000ms base delay`` (seconds here)."""

DEFAULT_MAX_ATTEMPTS = 5
"""Seed: ``MAX_RECONNECT_ATTEMPTS: 5``."""

NORMAL_CLOSURE = 1000

_FrameT = TypeVar("_FrameT", bound=Mapping[str, Any])

OnOpen = Callable[[int], Awaitable[None]]
OnMessage = Callable[[Any], None]


class NotConnectedError(ConnectionError):
    """A frame was sent while no connection is open."""


def text_frame(message: str, now: dt.datetime | None = None) -> dict[str, str]:
    """Seed, "Text Message Format": ``{"type": "text", "message", "timestamp"}``."""
    return {"type": "text", "message": message, "timestamp": now_rfc3339(at=now)}


def update_frame(message_id: str, message: str, now: dt.datetime | None = None) -> dict[str, str]:
    """Seed, "Update Message Format": ``{"type": "update", messageId, message, timestamp}``."""
    return {
        "type": "update",
        "messageId": message_id,
        "message": message,
        "timestamp": now_rfc3339(at=now),
    }


def delete_frame(message_id: str, now: dt.datetime | None = None) -> dict[str, str]:
    """Seed, "Delete Message Format": ``{"type": "delete", "messageId", "timestamp"}``."""
    return {"type": "delete", "messageId": message_id, "timestamp": now_rfc3339(at=now)}


class ReconnectingClient:
    """A chat connection that follows the seed's reconnection policy.

    ``token_provider`` is called before every attempt (so a refreshed token is used); its token
    travels as ``Authorization: Bearer <token>``. ``headers`` are sent on every attempt too (for
    a ``Cookie`` or another scheme). ``on_state`` is called on every state change, ``on_open``
    (a coroutine function) after every opened connection with its number (0 for the first, N for
    the N-th reconnection), ``on_message`` with every parsed frame received.

    The protected ``_delay_for``, ``_may_retry``, ``_reset_counter``, ``_after_loss``,
    ``_url_for`` and ``_is_clean_close`` are the policy's steps, one method each, so a test can
    derive faulty variants.
    """

    def __init__(
        self,
        url: str,
        *,
        token_provider: Callable[[], str] | None = None,
        headers: Mapping[str, str] | None = None,
        base_delay: float = DEFAULT_BASE_DELAY,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        on_state: Callable[[State], None] | None = None,
        on_open: OnOpen | None = None,
        on_message: OnMessage | None = None,
        open_timeout: float = 10.0,
        close_timeout: float = 2.0,
    ) -> None:
        try:
            parse_uri(url)
        except InvalidURI as exc:
            raise ValueError(f"not a WebSocket URL: {url!r}") from exc
        if base_delay < 0:
            raise ValueError("base_delay must not be negative")
        if max_attempts < 0:
            raise ValueError("max_attempts must not be negative")
        self.url = url
        self.base_delay = base_delay
        self.max_attempts = max_attempts
        self._token_provider = token_provider
        self._headers = dict(headers or {})
        self._on_state = on_state
        self._on_open = on_open
        self._on_message = on_message
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout

        self._state: State = "disconnected"
        self._attempts = 0  # the seed's reconnectAttempts
        self._connections_opened = 0
        self._ws: ClientConnection | None = None
        self._closing = False
        self._timers: list[asyncio.TimerHandle] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._done: asyncio.Future[Finish] | None = None
        self._connected = asyncio.Event()

    # -- public API ---------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The current connection state."""
        return self._state

    @property
    def attempts(self) -> int:
        """The seed's ``reconnectAttempts`` counter."""
        return self._attempts

    @property
    def connections_opened(self) -> int:
        """How many connections opened so far."""
        return self._connections_opened

    async def run(self) -> Finish:
        """Connect and follow the policy until a clean close, giving up, or :meth:`close`."""
        self._start()
        assert self._done is not None
        return await asyncio.shield(self._done)

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until a connection is open (raises ``TimeoutError`` after ``timeout``)."""
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    async def send_text(self, message: str) -> dict[str, str]:
        """Send a ``text`` frame; returns the frame sent."""
        return await self.send_json(text_frame(message))

    async def send_update(self, message_id: str, message: str) -> dict[str, str]:
        """Send an ``update`` frame; returns the frame sent."""
        return await self.send_json(update_frame(message_id, message))

    async def send_delete(self, message_id: str) -> dict[str, str]:
        """Send a ``delete`` frame; returns the frame sent."""
        return await self.send_json(delete_frame(message_id))

    async def send_json(self, frame: _FrameT) -> _FrameT:
        """Send any JSON object as a text frame (no validation); returns it."""
        ws = self._ws
        if ws is None or self._state != "connected":
            raise NotConnectedError("no open connection")
        await ws.send(json.dumps(frame, ensure_ascii=False))
        return frame

    async def close(self) -> None:
        """Close with 1000 and stop reconnecting."""
        self._closing = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(ConnectionClosed, OSError):
                await ws.close(NORMAL_CLOSURE)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self._close_timeout + 1)
        self._set_state("disconnected")
        self._finish("closed")

    # -- the policy's steps (overridable) ------------------------------------------------------

    def _delay_for(self, attempt: int) -> float:
        """Seed: ``Actual delay: RECONNECT_DELAY * reconnectAttempts``."""
        return self.base_delay * attempt

    def _may_retry(self) -> bool:
        """Seed: ``reconnectAttempts < MAX_RECONNECT_ATTEMPTS``."""
        return self._attempts < self.max_attempts

    def _reset_counter(self) -> None:
        """Seed: ``Success -> Reset reconnectAttempts = 0``."""
        self._attempts = 0

    def _after_loss(self) -> None:
        """Called once per loss or failed attempt: one reconnection is scheduled."""
        self._schedule_reconnect()

    def _url_for(self, connection_number: int) -> str:
        """Every attempt goes to the same URL (the same room path)."""
        return self.url

    def _is_clean_close(self, code: int | None) -> bool:
        """Only a close frame with 1000 from the server ends the session without a retry."""
        return code == NORMAL_CLOSURE

    # -- machinery ----------------------------------------------------------------------------

    def _start(self) -> None:
        if self._done is not None:
            raise RuntimeError("ReconnectingClient.run() may be called once")
        self._done = asyncio.get_running_loop().create_future()
        self._spawn_attempt()

    def _finish(self, why: Finish) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(why)

    def _set_state(self, state: State) -> None:
        if state == self._state:
            return
        self._state = state
        if state == "connected":
            self._connected.set()
        else:
            self._connected.clear()
        if self._on_state is not None:
            self._on_state(state)

    def _schedule_reconnect(self) -> None:
        if self._closing:
            return
        if not self._may_retry():
            # Seed: "Show Connection Failed".
            self._set_state("error")
            self._finish("gave-up")
            return
        self._attempts += 1
        delay = self._delay_for(self._attempts)
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(delay, self._spawn_attempt))

    def _spawn_attempt(self) -> None:
        loop = asyncio.get_running_loop()
        self._timers = [t for t in self._timers if not t.cancelled() and t.when() > loop.time()]
        if self._closing:
            return
        task = loop.create_task(self._connect_and_serve())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _request_headers(self) -> dict[str, str]:
        headers = dict(self._headers)
        if self._token_provider is not None:
            headers["Authorization"] = f"Bearer {self._token_provider()}"
        return headers

    async def _connect_and_serve(self) -> None:
        number = self._connections_opened
        try:
            ws = await connect(
                self._url_for(number),
                additional_headers=self._request_headers(),
                proxy=None,
                open_timeout=self._open_timeout,
                close_timeout=self._close_timeout,
            )
        except (OSError, TimeoutError, InvalidHandshake):
            if self._closing:
                return
            self._set_state("error")
            self._after_loss()
            return
        if self._closing:
            await ws.close(NORMAL_CLOSURE)
            return
        self._ws = ws
        self._connections_opened += 1
        self._reset_counter()
        self._set_state("connected")
        try:
            if self._on_open is not None:
                await self._on_open(number)
            async for raw in ws:
                if self._on_message is not None:
                    self._on_message(_parse(raw))
        except (ConnectionClosed, NotConnectedError):
            pass
        if self._ws is ws:
            self._ws = None
        if self._closing:
            return
        if self._is_clean_close(ws.close_code):
            self._set_state("disconnected")
            self._finish("clean-close")
            return
        self._set_state("disconnected")
        self._after_loss()


def _parse(raw: str | bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


# -- command line ----------------------------------------------------------------------------


def _env_number(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if number < 0:
        raise ValueError(f"{name} must not be negative, got {number}")
    return number


def client_from_env(
    environ: Mapping[str, str],
    *,
    on_state: Callable[[State], None] | None = None,
    on_open: OnOpen | None = None,
    client_class: type[ReconnectingClient] = ReconnectingClient,
) -> ReconnectingClient:
    """Build a client from the ``EDUSPHERE_*`` variables (raises ``ValueError`` on bad ones)."""
    url = environ.get("EDUSPHERE_WS_URL", "").strip()
    if not url:
        raise ValueError(
            "EDUSPHERE_WS_URL is not set (e.g. ws://127.0.0.1:8000/ws/chat/alice/room)"
        )
    token = environ.get("EDUSPHERE_TOKEN", "").strip()
    delay_ms = _env_number(environ, "EDUSPHERE_RECONNECT_DELAY_MS", int(DEFAULT_BASE_DELAY * 1000))
    max_attempts = _env_number(environ, "EDUSPHERE_MAX_RECONNECT_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)
    return client_class(
        url,
        token_provider=(lambda: token) if token else None,
        base_delay=delay_ms / 1000,
        max_attempts=max_attempts,
        on_state=on_state,
        on_open=on_open,
    )


async def run_from_env(
    environ: Mapping[str, str], client_class: type[ReconnectingClient] = ReconnectingClient
) -> int:
    """The ``python -m reference_client`` behaviour; returns the exit status."""

    def log_state(state: State) -> None:
        print(f"refclient: {state}", file=sys.stderr, flush=True)

    client: ReconnectingClient

    async def hello(number: int) -> None:
        await client.send_text(f"hello after reconnect {number}")

    client = client_from_env(environ, on_state=log_state, on_open=hello, client_class=client_class)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, lambda: loop.create_task(client.close()))
    finish = await client.run()
    print(f"refclient: finished ({finish})", file=sys.stderr, flush=True)
    return 1 if finish == "gave-up" else 0


def main(
    argv: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
    client_class: type[ReconnectingClient] = ReconnectingClient,
) -> int:
    """Entry point of ``python -m reference_client`` (takes no arguments)."""
    args = sys.argv[1:] if argv is None else argv
    if args:
        print("usage: python -m reference_client (set EDUSPHERE_WS_URL)", file=sys.stderr)
        return 2
    env = os.environ if environ is None else environ
    try:
        return asyncio.run(run_from_env(env, client_class))
    except ValueError as exc:
        print(f"refclient: {exc}", file=sys.stderr)
        return 2
