"""In-process ASGI targets (``[asgi] app``), the application's side: the suites drive an
application through the ASGI WebSocket messages, with no socket and no server.

The application runs on an event loop of its own, in a thread of its own (:class:`AppHost`),
for the whole run, as it would under an ASGI server: its state (rooms, a channel layer, what its
lifespan set up) lives on that one loop, while the harness's tests run on theirs (the scheduler's,
pytest's, the preflight's). Each connection is a :class:`Link` between the two loops; nothing
crosses between them but through ``call_soon_threadsafe``.

What the application sees is what uvicorn would hand it: a ``websocket`` scope with the
request's path, query string, headers (cookies, ``Origin``, ``Sec-WebSocket-Protocol``, the
target's ``[headers]``) and subprotocols, the lifespan's ``state``, and the WebSocket Denial
Response extension. What the harness sees of it (:mod:`harness.wire.asgi`) is what a network
connection would give it: the handshake accepted (HTTP 101) or refused (an HTTP status), frames,
close codes, :class:`~harness.wire.closed.Closed`. Where the wire has no in-process equivalent,
the requirement is not tested (catalogue ``needs = "network"``; README, "Check an ASGI
application in-process").
"""

from __future__ import annotations

import asyncio
import base64
import collections
import concurrent.futures
import contextlib
import importlib
import inspect
import itertools
import os
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from harness import redact
from harness.core.failures import HarnessError
from harness.core.session import Refusal
from harness.target import Target, TargetError
from harness.wire.closed import Closed, TooBig

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Application = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

#: Bytes of frames an in-process connection holds for a client that has not read them yet,
#: before the application's ``send`` waits (as a TCP connection's socket buffers would).
WINDOW = 4 * 1024 * 1024
#: Each frame held counts this many bytes more than its payload (a flood of empty frames is
#: bounded too).
FRAME_OVERHEAD = 64
#: How long the application's lifespan startup and shutdown may take.
LIFESPAN_TIMEOUT = 30.0
#: How long stopping the application's loop may take (its tasks cancelled) at the run's end.
STOP_TIMEOUT = 5.0
#: The most traceback text kept of an exception inside the application.
MAX_TRACEBACK = 8_000


class ClientDisconnected(OSError):
    """What the application's ``send`` raises once its client has gone (as uvicorn's does)."""


class AppError(Exception):
    """An exception inside the application, as text (a traceback, redacted): the cause of the
    :class:`~harness.wire.closed.Closed` the harness's client sees (close 1011), whose
    ``app_error`` is that text."""


class Receiver(Protocol):
    """The harness's end of a :class:`Link` (:class:`harness.wire.asgi.AsgiSocket`): it is
    handed, on its own loop, ``("frame", payload, cost)`` and ``("closed", Closed)``."""

    def deliver(self, item: tuple[Any, ...]) -> None: ...


# --- loading the application ------------------------------------------------------------


def load_app(spec: str, where: str = "target") -> Application:
    """Import ``package.module:attribute`` (the attribute may be dotted) and check that it is
    an ASGI 3 application. Raises :class:`TargetError` with one line naming ``asgi.app``."""
    module_name, _, attr = spec.partition(":")  # its shape checked with the target file
    key = f"{where}: asgi.app"
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as uvicorn does (--app-dir .)
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:  # anything an import raises, SystemExit too
        if isinstance(exc, KeyboardInterrupt):
            raise
        missing = isinstance(exc, ModuleNotFoundError) and exc.name == module_name.split(".")[0]
        hint = " (run from the project's directory, or install it)" if missing else ""
        raise TargetError(f"{key}: cannot import {module_name!r}: {_one_line(exc)}{hint}") from None
    app: Any = module
    for name in attr.split("."):
        try:
            app = getattr(app, name)
        except AttributeError:
            raise TargetError(f"{key}: {module_name!r} has no attribute {attr!r}") from None
        except Exception as exc:
            raise TargetError(f"{key}: {spec!r}: {_one_line(exc)}") from None
    problem = _not_asgi3(app)
    if problem:
        raise TargetError(f"{key}: {spec!r} is {problem}")
    return app  # type: ignore[no-any-return]


def _not_asgi3(app: Any) -> str | None:
    """Why ``app`` is not an ASGI 3 application (a callable taking scope, receive and send), or
    None."""
    if isinstance(app, type):
        return f"a class ({app.__name__}), not an application: name an instance of it"
    if not callable(app):
        kind = type(app).__name__
        return f"a {kind}, not an ASGI application (a callable taking scope, receive, send)"
    try:
        signature = inspect.signature(app)
    except (TypeError, ValueError):
        return None  # a builtin: it cannot be told, and calling it will say
    try:
        signature.bind(object(), object(), object())
    except TypeError:
        takes = ", ".join(signature.parameters)
        return (
            f"not an ASGI 3 application: it takes ({takes}), not (scope, receive, send) "
            "(a WSGI application, or ASGI 2?)"
        )
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact.redact(f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__)


def _traceback(exc: BaseException) -> str:
    """The application's traceback (the harness's own frame that called it left out)."""
    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    text = "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()
    if len(text) > MAX_TRACEBACK:
        text = "…\n" + text[-MAX_TRACEBACK:]
    return redact.redact(text)


# --- one connection, between the harness's loop and the application's -------------------


class Link:
    """One in-process WebSocket connection. The application's end runs on the host's loop
    (``app_receive``, ``app_send``); the harness's end (a :class:`Receiver`) on the loop that
    opened it. ``pending`` (bytes the client has not read) is shared, under ``lock``."""

    def __init__(
        self,
        host: AppHost,
        client_loop: asyncio.AbstractEventLoop,
        subprotocols: list[str],
        max_size: int,
        window: int,
    ) -> None:
        self.host = host
        self.client_loop = client_loop
        self.offered = subprotocols
        self.max_size = max_size
        self.window = window
        self.lock = threading.Lock()
        #: Bytes of frames the client holds unread, and whether a send waits for room.
        self.pending = 0
        self.blocked = False
        #: Items on their way to the client, and messages on their way to the application,
        #: each handed over in batches (``delivering`` / ``receiving``: a wake-up is on its way).
        self.outbox: collections.deque[tuple[Any, ...]] = collections.deque()
        self.delivering = False
        self.inbound: collections.deque[Message] = collections.deque()
        self.receiving = False
        #: The handshake's outcome, for the client: None (accepted) or a Refusal.
        self.answer: concurrent.futures.Future[Refusal | None] = concurrent.futures.Future()
        # Application side (its loop only).
        self.state = "connecting"  # then "open", "closed"
        self.to_app: asyncio.Queue[Message] = asyncio.Queue()
        self.drained = asyncio.Event()
        self.disconnect: Message | None = None
        self.connect_sent = False
        self.refusal_status: int | None = None
        # Client side (its loop only).
        self.socket: Receiver | None = None

    # the application's end (the host's loop) ---------------------------------------------

    async def app_receive(self) -> Message:
        if self.state == "connecting" and not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        if self.disconnect is not None:  # closed: what the client sent after is dropped
            return dict(self.disconnect)
        message = await self.to_app.get()
        if message["type"] == "websocket.disconnect":
            self.disconnect = message
            self.state = "closed"
        return message

    async def app_send(self, message: Message) -> None:
        kind = message.get("type")
        if self.state == "connecting":
            await self._handshake(kind, message)
        elif self.state == "open" and kind == "websocket.send":
            await self._frame(message)
        elif self.state == "open" and kind == "websocket.close":
            code = int(message.get("code") or 1000)
            reason = str(message.get("reason") or "")
            self._close_from_app(code, reason)
        elif self.state == "closed" and kind in ("websocket.send", "websocket.close"):
            raise ClientDisconnected("the client has gone")
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} (connection {self.state})")

    async def _handshake(self, kind: Any, message: Message) -> None:
        if kind == "websocket.accept":
            chosen = message.get("subprotocol")
            if chosen is not None and chosen not in self.offered:
                self._refuse(
                    Refusal(
                        "http",
                        detail=f"handshake failed: the application chose the subprotocol "
                        f"{chosen!r}, which the client did not offer",
                    )
                )
                return
            self.state = "open"
            self._answer(None)
        elif kind == "websocket.close":
            self._refuse(Refusal("http", status=403))  # before the accept: HTTP 403 (ASGI)
        elif kind == "websocket.http.response.start":
            self.refusal_status = int(message.get("status") or 500)
        elif kind == "websocket.http.response.body" and self.refusal_status is not None:
            if not message.get("more_body", False):
                self._refuse(Refusal("http", status=self.refusal_status))
        else:
            raise RuntimeError(
                f"Expected ASGI message 'websocket.accept', 'websocket.close' or "
                f"'websocket.http.response.start', but got {kind!r}"
            )

    def _answer(self, answer: Refusal | None) -> None:
        if not self.answer.done():
            self.answer.set_result(answer)

    def _refuse(self, refusal: Refusal) -> None:
        self._closed(1006)
        self._answer(refusal)

    async def _frame(self, message: Message) -> None:
        text, data = message.get("text"), message.get("bytes")
        payload: str | bytes
        if text is not None:
            payload = str(text)
        elif data is not None:
            payload = bytes(data)
        else:
            raise RuntimeError("'websocket.send' needs 'text' or 'bytes'")
        size = len(payload.encode()) if isinstance(payload, str) else len(payload)
        if size > self.max_size:
            # What websockets does from the frame's header: the client fails the connection
            # with 1009 (it sent it; it received no close).
            self._closed(1009)
            self._to_client(("closed", Closed(None, too_big=TooBig(size, self.max_size))))
            return
        cost = size + FRAME_OVERHEAD
        with self.lock:
            self.pending += cost
            full = self.blocked = self.pending > self.window
            if full:
                self.drained.clear()
        self._to_client(("frame", payload, cost))
        while full and self.state == "open":
            await self.drained.wait()
            with self.lock:
                full = self.blocked = self.pending > self.window
                if full:
                    self.drained.clear()
        if self.state != "open" and full:
            raise ClientDisconnected("the client has gone")

    def _closed(self, code: int, reason: str = "") -> None:
        """The connection is over: the application's receive (a waiting one too) returns
        ``websocket.disconnect`` with ``code`` from now on."""
        self.state = "closed"
        self.disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
        self.to_app.put_nowait(dict(self.disconnect))
        self.drained.set()

    def _close_from_app(self, code: int, reason: str, error: AppError | None = None) -> None:
        """The application closed (or failed): the client reads the close frame after the
        frames before it; the application's next receive is the client's reply."""
        self._closed(code, reason)
        closed = Closed(code, reason, app_error=None if error is None else str(error))
        closed.__cause__ = error
        self._to_client(("closed", closed))

    def _to_client(self, item: tuple[Any, ...]) -> None:
        """Queue ``item`` for the client; its loop is woken once per batch, not per frame (a
        burst of frames costs one wake-up, as one read of a socket would)."""
        with self.lock:
            self.outbox.append(item)
            wake = not self.delivering
            self.delivering = True
        if wake:
            try:
                self.client_loop.call_soon_threadsafe(self._deliver)
            except RuntimeError:  # the client's loop is gone (its test ended): so is the client
                if self.disconnect is None:
                    self._closed(1006)

    def app_finished(self, exc: BaseException | None) -> None:
        """The application's coroutine ended, with ``exc`` or without."""
        if self.state == "connecting":
            why = (
                f"the application raised before answering the handshake:\n{_traceback(exc)}"
                if exc is not None
                else "the application returned without answering the handshake"
            )
            self._refuse(Refusal("http", status=500, detail=why))
        elif self.state == "open":
            if exc is not None and not isinstance(exc, ClientDisconnected):
                error = AppError(f"the application raised:\n{_traceback(exc)}")
                self._close_from_app(1011, "", error)
            else:  # returned without closing: the connection drops (as uvicorn does)
                self._closed(1006)
                self._to_client(("closed", Closed(None)))

    # the client's end (the opening loop) --------------------------------------------------

    def _deliver(self) -> None:
        with self.lock:
            items = list(self.outbox)
            self.outbox.clear()
            self.delivering = False
        if self.socket is not None:
            for item in items:
                self.socket.deliver(item)

    def from_client(self, message: Message) -> None:
        """Hand the application a message from the client (any thread); its loop is woken once
        per batch."""
        with self.lock:
            self.inbound.append(message)
            wake = not self.receiving
            self.receiving = True
        if wake:
            with contextlib.suppress(RuntimeError):  # the application's loop stopped
                self.host.loop.call_soon_threadsafe(self._put)

    def _put(self) -> None:
        with self.lock:
            messages = list(self.inbound)
            self.inbound.clear()
            self.receiving = False
        for message in messages:
            if self.disconnect is None or message["type"] != "websocket.disconnect":
                self.to_app.put_nowait(message)
            if message["type"] == "websocket.disconnect":
                self.drained.set()  # a send waiting for room gives up: the client has gone

    def read(self, cost: int) -> None:
        """The client read a frame: ``cost`` bytes of the window are free again (a send that
        waits for room is woken once half the window is free)."""
        with self.lock:
            self.pending -= cost
            wake = self.blocked and self.pending <= self.window // 2
            if wake:
                self.blocked = False
        if wake:
            with contextlib.suppress(RuntimeError):
                self.host.loop.call_soon_threadsafe(self.drained.set)


# --- the application's loop ------------------------------------------------------------


class AppHost:
    """One application, on its own event loop in its own thread, for a whole run: its lifespan
    started once (when it has one), its connections served until :meth:`stop`."""

    def __init__(self, app: Application, spec: str) -> None:
        self.app = app
        self.spec = spec
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=f"asgi {spec}", daemon=True)
        #: The lifespan's ``state``: each connection's scope gets a shallow copy.
        self.state: dict[str, Any] = {}
        self._lifespan_task: asyncio.Task[None] | None = None
        self._lifespan_events: asyncio.Queue[Message] | None = None
        self._lifespan_inbox: asyncio.Queue[Message] | None = None
        self.lifespan_supported = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._ports = itertools.count(50000)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def _call(self, coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError from None

    def start(self) -> None:
        """Start the loop and the application's lifespan. Raises :class:`HarnessError`."""
        self.thread.start()
        try:
            failed = self._call(self._startup(), LIFESPAN_TIMEOUT)
        except TimeoutError:
            self.stop()
            raise HarnessError(
                f"asgi.app: {self.spec}: its lifespan startup did not finish within "
                f"{LIFESPAN_TIMEOUT:.0f} s"
            ) from None
        if failed:
            self.stop()
            raise HarnessError(f"asgi.app: {self.spec}: its lifespan startup failed: {failed}")

    async def _startup(self) -> str | None:
        """The lifespan protocol's startup: None when it completed or the application has no
        lifespan (it raised at once, as ASGI allows); the failure's message otherwise."""
        events: asyncio.Queue[Message] = asyncio.Queue()
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        inbox.put_nowait({"type": "lifespan.startup"})
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "state": self.state,
        }

        async def send(message: Message) -> None:
            events.put_nowait(message)

        async def run() -> None:
            try:
                await self.app(scope, inbox.get, send)
            except BaseException as exc:  # any exception: no lifespan
                events.put_nowait({"type": "_raised", "error": exc})
                raise
            events.put_nowait({"type": "_returned"})

        self._lifespan_inbox = inbox
        self._lifespan_events = events
        self._lifespan_task = asyncio.ensure_future(run())
        self._lifespan_task.add_done_callback(lambda t: t.cancelled() or t.exception())
        event = await events.get()
        if event["type"] == "lifespan.startup.complete":
            self.lifespan_supported = True
            return None
        if event["type"] == "lifespan.startup.failed":
            message = str(event.get("message") or "no message").strip().splitlines()
            return redact.redact(message[-1] if message else "no message")
        return None  # raised or returned at once: the application does not do lifespan

    async def _shutdown(self) -> None:
        if self.lifespan_supported and self._lifespan_events and self._lifespan_inbox:
            self._lifespan_inbox.put_nowait({"type": "lifespan.shutdown"})
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_TIMEOUT):
                    while (await self._lifespan_events.get())["type"] not in (
                        "lifespan.shutdown.complete",
                        "lifespan.shutdown.failed",
                        "_raised",
                        "_returned",
                    ):
                        pass
        tasks = [t for t in (*self._tasks, self._lifespan_task) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """The lifespan's shutdown, every connection's task cancelled, the loop stopped (each
        bounded: a hung application cannot hold the run)."""
        if not self.thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._shutdown(), STOP_TIMEOUT * 2)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(STOP_TIMEOUT)

    # connections -----------------------------------------------------------------------

    def scope(
        self, url: str, headers: dict[str, str], subprotocols: list[str], origin: str | None
    ) -> dict[str, Any]:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        raw = [
            ("host", parts.netloc),
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", base64.b64encode(os.urandom(16)).decode()),
        ]
        if origin:
            raw.append(("origin", origin))
        if subprotocols:
            raw.append(("sec-websocket-protocol", ", ".join(subprotocols)))
        raw += [(name.lower(), value) for name, value in headers.items()]
        return {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": parts.scheme,
            "server": (parts.hostname or "testserver", port),
            "client": ("127.0.0.1", next(self._ports)),
            "root_path": "",
            "path": unquote(parts.path) or "/",
            "raw_path": (parts.path or "/").encode("latin-1"),
            "query_string": parts.query.encode("latin-1"),
            "headers": [(n.encode("latin-1"), v.encode("latin-1")) for n, v in raw],
            "subprotocols": list(subprotocols),
            "state": dict(self.state),
            "extensions": {"websocket.http.response": {}},
        }

    def serve(self, link: Link, scope: dict[str, Any]) -> None:
        """Run the application on ``scope`` for ``link`` (from any thread). Raises
        :class:`HarnessError` once the application has stopped."""
        try:
            self.loop.call_soon_threadsafe(self._serve, link, scope)
        except RuntimeError:
            raise HarnessError(f"asgi.app: {self.spec}: the application has stopped") from None

    def _serve(self, link: Link, scope: dict[str, Any]) -> None:
        async def run() -> None:
            try:
                await self.app(scope, link.app_receive, link.app_send)
            except asyncio.CancelledError:
                link.app_finished(None)
                raise
            except BaseException as exc:  # the application's: close 1011
                link.app_finished(exc)
            else:
                link.app_finished(None)

        task = self.loop.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


# --- the run's applications ----------------------------------------------------------------

_HOSTS: dict[str, AppHost] = {}
_LOCK = threading.Lock()


def host_for(target: Target) -> AppHost:
    """The running host of the target's application: started (imported, its lifespan run) on
    first use in this process. Raises :class:`TargetError` or :class:`HarnessError`."""
    spec = target.asgi_app
    assert spec is not None
    with _LOCK:
        host = _HOSTS.get(spec)
        if host is None:
            host = AppHost(load_app(spec, target.source), spec)
            host.start()
            _HOSTS[spec] = host
        return host


def started(target: Target) -> bool:
    return target.asgi_app in _HOSTS


def stop_all() -> None:
    """Stop every application this process started (the end of a run)."""
    with _LOCK:
        hosts = list(_HOSTS.values())
        _HOSTS.clear()
    for host in hosts:
        host.stop()
