"""The runtime of a replay script: a failing sequence of steps, played again against a server.

:mod:`harness.render.replay_script` writes one script per ``sequence`` figure
(``replay-EDIT-009.py``): a docstring saying what it replays, this module's source without this
docstring, the figure as a JSON literal and a ``main`` call. So this module imports the standard
library and websockets only, never the harness, and must stay self-contained: it is the script.
It lives in the wire because it opens sockets (``tests/test_layout.py``); the harness itself
never calls it.

What the script does, step by step (the figure's ``steps``): ``connect`` opens a connection,
``reconnect`` closes ``from`` cleanly and opens ``conn``, ``close`` closes cleanly, ``vanish``
drops the connection without a close handshake, ``send`` / ``edit`` / ``delete`` send the
step's frame (an edit's or delete's ``messageId`` replaced by the id this run learned for the
step's message ref). After every step a sentinel in each room with an open connection proves
the step complete, as the harness does; what each connection got before its sentinel (chat
events and errors only) must equal the step's ``expect`` items for it, in order. The first
difference is a FAIL (exit status 1); every step as expected is a PASS (0); a token variable
missing or the server unreachable is a usage problem (2). No token is ever printed.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import ssl
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Origin, Subprotocol

__all__ = [
    "CA_VARIABLE",
    "EXIT_FAIL",
    "EXIT_PASS",
    "EXIT_USAGE",
    "HEADERS_VARIABLE",
    "TOKEN_PREFIX",
    "main",
    "token_variable",
]

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
#: ``EDUSPHERE_TOKEN_<ROLE>``: the token of each connection's account role.
TOKEN_PREFIX = "EDUSPHERE_TOKEN_"
#: A JSON object: the values of the target's extra headers (the figure has their names only).
HEADERS_VARIABLE = "EDUSPHERE_HEADERS"
#: A CA bundle for ``wss://`` (default: the system's trust store).
CA_VARIABLE = "EDUSPHERE_CA"
#: Characters of a frame shown in a FAIL line.
SHOWN = 300
DEFAULT_TIMEOUT = 10.0
#: A handshake or a close waits at most this long (or the --timeout, when it is shorter).
CLOSE_TIMEOUT = 5.0
MAX_FRAME = 16 * 2**20
_ACTIONS = ("new", "update", "delete")
_SENTINEL_PREFIX = "sentinel "
_HEX = frozenset("0123456789abcdef")


def token_variable(role: str) -> str:
    """The environment variable holding ``role``'s token: upper case, ``_`` for the rest."""
    return TOKEN_PREFIX + "".join(c if c.isascii() and c.isalnum() else "_" for c in role.upper())


def now() -> str:
    """Now, RFC 3339 with milliseconds and ``Z`` (the harness's clock-to-text)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_sentinel(body: object) -> bool:
    """A sentinel's body: ``sentinel`` and 32 hex digits (a uuid4's hex)."""
    if not isinstance(body, str) or not body.startswith(_SENTINEL_PREFIX):
        return False
    tail = body[len(_SENTINEL_PREFIX) :]
    return len(tail) == 32 and set(tail) <= _HEX


def quoted(text: object, limit: int = 60) -> str:
    """A body or error text as JSON, shortened."""
    shown = json.dumps(text, ensure_ascii=False)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def describe_step(step: Mapping[str, Any]) -> str:
    """One step in words: ``edit c1 m1 "late"``, ``reconnect c3 in room other (closing c2)``
    (the script's lines and the report's docstring of the script)."""
    do, conn = str(step.get("do", "")), str(step.get("conn", ""))
    given = step.get("frame")
    frame: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    if do in ("connect", "reconnect"):
        room = f" in room {step['room']}" if step.get("room") else ""
        was = f" (closing {step.get('from')})" if do == "reconnect" else ""
        return f"{do} {conn}{room}{was}"
    if do == "send":
        creates = f" (creates {step['creates']})" if step.get("creates") else ""
        return f"send {conn} {quoted(frame.get('message'))}{creates}"
    if do == "edit":
        return f"edit {conn} {step.get('message')} {quoted(frame.get('message'))}"
    if do == "delete":
        return f"delete {conn} {step.get('message')}"
    return f"{do} {conn}"


def show(frame: object) -> str:
    """A frame as it came, at most :data:`SHOWN` characters."""
    text = frame if isinstance(frame, str) else json.dumps(frame, ensure_ascii=False)
    return text if len(text) <= SHOWN else f"{text[:SHOWN]}… ({len(text):,} characters)"


class Usage(Exception):
    """A usage problem: one line, exit status 2."""


class Failed(Exception):
    """The first difference: the FAIL line, exit status 1."""


@dataclass
class Settings:
    """What the environment gives: the tokens per role, the extra headers, the TLS context."""

    tokens: dict[str, str]
    headers: dict[str, str]
    ssl_context: ssl.SSLContext | None

    @classmethod
    def from_env(cls, figure: Mapping[str, Any], environ: Mapping[str, str]) -> Settings:
        tokens: dict[str, str] = {}
        for conn in figure.get("connections") or []:
            role = str(conn.get("role") or "")
            variable = token_variable(role)
            token = environ.get(variable)
            if not token:
                raise Usage(f"{variable} is not set: give it a valid token of the {role} account")
            tokens[role] = token
        headers: dict[str, str] = {}
        names = [str(n) for n in figure.get("header_names") or []]
        if names:
            raw = environ.get(HEADERS_VARIABLE)
            if not raw:
                raise Usage(f"{HEADERS_VARIABLE} is not set: a JSON object with {', '.join(names)}")
            try:
                given = json.loads(raw)
            except ValueError:
                given = None
            if not isinstance(given, dict):
                raise Usage(f"{HEADERS_VARIABLE} is not a JSON object")
            for name in names:
                value = given.get(name)
                if not isinstance(value, str):
                    raise Usage(f"{HEADERS_VARIABLE} has no string value for the header {name}")
                headers[name] = value
        context = None
        urls = [str(c.get("url") or "") for c in figure.get("connections") or []]
        if any(u.startswith("wss://") for u in urls):
            ca = environ.get(CA_VARIABLE) or None
            try:
                context = ssl.create_default_context(cafile=ca)
            except (OSError, ssl.SSLError) as exc:
                raise Usage(f"{CA_VARIABLE}: cannot read the CA bundle {ca}: {exc}") from None
        return cls(tokens, headers, context)

    def scrub(self, text: str) -> str:
        """``text`` with every token and header value masked (longest first)."""
        secrets = sorted({*self.tokens.values(), *self.headers.values()}, key=len, reverse=True)
        for secret in secrets:
            if len(secret) >= 4:
                text = text.replace(secret, "<token>")
        return text


def with_query(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    pairs = [*parse_qsl(parts.query, keep_blank_values=True), (name, value)]
    return urlunsplit(parts._replace(query=urlencode(pairs)))


def handshake(
    figure: Mapping[str, Any],
    conn: Mapping[str, Any],
    settings: Settings,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[str, dict[str, Any]]:
    """The url and ``connect`` arguments of one connection: its token placed as ``auth`` says."""
    auth = figure.get("auth") or {}
    transport = auth.get("transport") or "query"
    param = auth.get("param")
    token = settings.tokens[str(conn.get("role") or "")]
    url = str(conn.get("url") or "")
    headers: list[tuple[str, str]] = list(settings.headers.items())
    subprotocols: list[Subprotocol] | None = None
    if transport == "query":
        url = with_query(url, str(param or "token"), token)
    elif transport == "cookie":
        headers.append(("Cookie", f"{param or 'JWT'}={token}"))
    elif transport == "header":
        scheme = auth.get("scheme")
        headers.append((str(param or "Authorization"), f"{scheme} {token}" if scheme else token))
    elif transport == "subprotocol":
        name = auth.get("subprotocol")
        offered = [name, token] if name else [token]
        subprotocols = [Subprotocol(str(p)) for p in offered]
    else:
        raise Usage(f"unknown auth transport {transport!r}")
    kwargs: dict[str, Any] = {
        "additional_headers": headers,
        "subprotocols": subprotocols,
        "open_timeout": timeout,
        "close_timeout": CLOSE_TIMEOUT,
        "max_size": MAX_FRAME,
    }
    if figure.get("origin") is not None:
        kwargs["origin"] = Origin(str(figure["origin"]))
    if url.startswith("wss://"):
        kwargs["ssl"] = settings.ssl_context
    if "proxy" in inspect.signature(connect).parameters:
        kwargs["proxy"] = None  # websockets >= 15 reads proxy settings from the environment
    return url, kwargs


def relevant(frame: object) -> bool:
    """A chat event (new, update, delete) or an error; a sentinel's event is not."""
    if not isinstance(frame, dict):
        return False
    if "error" in frame:
        return True
    if frame.get("type") != "chat_message" or frame.get("action") not in _ACTIONS:
        return False
    return not (frame.get("action") == "new" and is_sentinel(frame.get("body")))


@dataclass
class Replay:
    """One replay of a figure's steps, with what it learned: the ids of the message refs."""

    figure: Mapping[str, Any]
    settings: Settings
    timeout: float = DEFAULT_TIMEOUT
    out: Any = field(default=sys.stdout)
    conns: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    open: dict[str, ClientConnection] = field(default_factory=dict)
    learned: dict[str, str] = field(default_factory=dict)
    #: Refs a send step creates, not learned yet: ref -> the body sent.
    pending: dict[str, str] = field(default_factory=dict)
    #: Refs this run never learned, with the literal id the figure's frames used.
    literal: dict[str, str] = field(default_factory=dict)
    accepted: bool = False
    n: int = 0

    def __post_init__(self) -> None:
        self.conns = {str(c["name"]): c for c in self.figure.get("connections") or []}

    def say(self, text: str, end: str = "\n") -> None:
        print(self.settings.scrub(text), end=end, file=self.out, flush=True)

    def fail(self, text: str) -> Failed:
        return Failed(f"FAIL at step {self.n}: {text}")

    # --- the steps ------------------------------------------------------------------------

    async def run(self) -> int:
        steps = list(self.figure.get("steps") or [])
        try:
            for step in steps:
                self.n = int(step.get("n") or self.n + 1)
                try:
                    await self.step(step)
                except Failed:
                    self.say(f"step {self.n}: {self.describe(step)}")
                    raise
                self.say(f"step {self.n}: {self.describe(step)} ok")
        except Failed as failed:
            self.say(str(failed))
            return EXIT_FAIL
        finally:
            await self.close_all()
        requirement = self.figure.get("requirement") or "the requirement"
        self.say(f"PASS: all {len(steps)} steps as expected; {requirement} held on this sequence")
        return EXIT_PASS

    def describe(self, step: Mapping[str, Any]) -> str:
        room = step.get("room") or self.conns.get(str(step.get("conn")), {}).get("room")
        return describe_step({**step, "room": room} if room else step)

    async def step(self, step: Mapping[str, Any]) -> None:
        do, name = str(step.get("do")), str(step.get("conn"))
        if do == "connect":
            await self.connect(name)
        elif do == "reconnect":
            await self.close(str(step.get("from")))
            await self.connect(name)
        elif do == "close":
            await self.close(name)
        elif do == "vanish":
            ws = self.open.pop(name, None)
            if ws is not None:
                ws.transport.abort()
        elif do in ("send", "edit", "delete"):
            await self.send_step(step, name)
        else:
            raise Usage(f"step {self.n}: unknown step {do!r}")
        await self.settle(step)

    async def connect(self, name: str) -> None:
        conn = self.conns.get(name)
        if conn is None:
            raise Usage(f"step {self.n}: the connection {name} is not in the figure")
        url, kwargs = handshake(self.figure, conn, self.settings, self.timeout)
        shown = str(conn.get("url"))
        try:
            ws = await connect(url, **kwargs)
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise self.fail(f"expected {name} to be accepted; got HTTP {status}") from None
        except InvalidURI:
            raise Usage(f"{name}: not a WebSocket URL: {shown}") from None
        except (OSError, TimeoutError) as exc:
            why = str(exc) or type(exc).__name__
            if not self.accepted:
                raise Usage(f"cannot reach {shown}: {why}") from None
            raise self.fail(f"expected {name} to be accepted; got {why}") from None
        except InvalidHandshake as exc:
            raise self.fail(f"expected {name} to be accepted; got {exc}") from None
        self.accepted = True
        old = self.open.pop(name, None)
        if old is not None:
            old.transport.abort()
        self.open[name] = ws

    async def close(self, name: str) -> None:
        ws = self.open.pop(name, None)
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), min(self.timeout, CLOSE_TIMEOUT) + 1)
            except (TimeoutError, OSError):
                ws.transport.abort()

    async def close_all(self) -> None:
        for name in list(self.open):
            await self.close(name)

    async def send(self, name: str, frame: Mapping[str, Any]) -> None:
        ws = self.open.get(name)
        if ws is None:
            raise self.fail(f"expected {name} to be open to send on it; it is not")
        try:
            await ws.send(json.dumps(frame, ensure_ascii=False))
        except ConnectionClosed as exc:
            raise self.fail(f"expected {name} to take a frame; got {self.ended(exc)}") from None

    async def send_step(self, step: Mapping[str, Any], name: str) -> None:
        frame = dict(step.get("frame") or {})
        if step.get("creates") and isinstance(frame.get("message"), str):
            self.pending[str(step["creates"])] = frame["message"]
        ref = step.get("message")
        if ref is not None and "messageId" in frame:
            if str(ref) in self.learned:
                frame["messageId"] = self.learned[str(ref)]
            elif isinstance(frame["messageId"], str):
                self.literal[str(ref)] = frame["messageId"]
        await self.send(name, frame)

    # --- proving a step complete ----------------------------------------------------------

    def rooms(self, first: str) -> dict[str, list[str]]:
        """Room -> its open connections, in the figure's order (``first`` first if open)."""
        rooms: dict[str, list[str]] = {}
        for name, conn in self.conns.items():
            if name in self.open:
                rooms.setdefault(str(conn.get("room")), []).append(name)
        for names in rooms.values():
            if first in names:
                names.remove(first)
                names.insert(0, first)
        return rooms

    async def settle(self, step: Mapping[str, Any]) -> None:
        expect = [e for e in step.get("expect") or [] if isinstance(e, dict)]
        rooms = self.rooms(str(step.get("conn")))
        sentinels: dict[str, str] = {}
        for room, names in rooms.items():
            body = f"{_SENTINEL_PREFIX}{uuid.uuid4().hex}"
            sentinels[room] = body
            await self.send(names[0], {"type": "text", "message": body, "timestamp": now()})
        # The step's own connection is read first: its answer is the step's first word.
        for room, names in sorted(rooms.items(), key=lambda kv: kv[0] != kv[1][0]):
            for name in names:
                items = [e for e in expect if str(e.get("conn")) == name]
                frames = await self.read_until(name, sentinels[room], items)
                self.compare(name, items, frames, final=True)

    def ended(self, exc: ConnectionClosed) -> str:
        if exc.rcvd is not None:
            reason = f" {exc.rcvd.reason!r}" if exc.rcvd.reason else ""
            return f"a close {exc.rcvd.code}{reason} from the server"
        return "the connection lost without a close frame"

    async def read_until(
        self, name: str, sentinel: str, items: Sequence[Mapping[str, Any]]
    ) -> list[Any]:
        ws = self.open[name]
        frames: list[Any] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                data = await asyncio.wait_for(ws.recv(), remaining)
            except TimeoutError:
                self.compare(name, items, frames, final=False)
                rest = [self.expected(e) for e in items[len(frames) :]]
                still = ", ".join([*rest, "its sentinel"])
                raise self.fail(
                    f"expected {name} to get {still} within {self.timeout:g} s; got nothing more"
                ) from None
            except ConnectionClosed as exc:
                self.open.pop(name, None)
                self.compare(name, items, frames, final=False)
                rest = [self.expected(e) for e in items[len(frames) :]]
                still = ", ".join([*rest, "its sentinel"])
                raise self.fail(f"expected {name} to get {still}; got {self.ended(exc)}") from None
            try:
                frame = json.loads(data)
            except ValueError:
                continue  # neither an event nor an error
            if (
                isinstance(frame, dict)
                and frame.get("type") == "chat_message"
                and frame.get("action") == "new"
                and frame.get("body") == sentinel
            ):
                return frames
            if relevant(frame):
                self.learn(frame)
                frames.append(frame)

    def learn(self, frame: Mapping[str, Any]) -> None:
        """The first ``new`` event whose body a send step sent names that step's ref."""
        if frame.get("action") != "new" or not isinstance(frame.get("id"), str):
            return
        if frame["id"] in self.learned.values():
            return  # another connection's copy of an event already learned
        for ref, body in list(self.pending.items()):
            if frame.get("body") == body:
                self.learned[ref] = frame["id"]
                del self.pending[ref]
                return

    # --- matching -------------------------------------------------------------------------

    def expected(self, item: Mapping[str, Any]) -> str:
        if "error" in item:
            errors = item["error"] if isinstance(item["error"], list) else [item["error"]]
            return "the error " + " or ".join(quoted(e) for e in errors)
        what = f"{item.get('event')} {item.get('message') or ''}".rstrip()
        return what + (f" {quoted(item['body'])}" if "body" in item else "")

    def matches(self, item: Mapping[str, Any], frame: Mapping[str, Any]) -> bool:
        if "error" in item:
            errors = item["error"] if isinstance(item["error"], list) else [item["error"]]
            return "error" in frame and frame["error"] in errors
        if "error" in frame or frame.get("action") != item.get("event"):
            return False
        if "body" in item and frame.get("body") != item["body"]:
            return False
        ref = item.get("message")
        if ref is None:
            return True
        ref = str(ref)
        if ref in self.learned:
            return frame.get("id") == self.learned[ref]
        if item.get("event") == "new":
            body = self.pending.get(ref)
            if body is not None and frame.get("body") != body:
                return False
            if isinstance(frame.get("id"), str):
                self.learned[ref] = frame["id"]
                self.pending.pop(ref, None)
            return True
        if ref in self.literal:
            return frame.get("id") == self.literal[ref]
        return True

    def compare(
        self, name: str, items: Sequence[Mapping[str, Any]], frames: Sequence[Any], *, final: bool
    ) -> None:
        """Raise the first difference between ``items`` and ``frames`` (all of both when
        ``final``; else the frames so far against the items' start)."""
        for i, frame in enumerate(frames):
            if i >= len(items):
                raise self.fail(f"expected {name} to get nothing more; got {show(frame)}")
            if not self.matches(items[i], frame):
                wanted = self.expected(items[i])
                raise self.fail(f"expected {name} to get {wanted}; got {show(frame)}")
        if final and len(frames) < len(items):
            missing = self.expected(items[len(frames)])
            raise self.fail(f"expected {name} to get {missing}; got nothing before its sentinel")


def main(figure: Mapping[str, Any], argv: Sequence[str] | None = None) -> int:
    """Replay ``figure``'s steps with the options of ``argv``; the exit status."""
    prog = os.path.basename(sys.argv[0]) or "replay"
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"Replay the failing sequence of {figure.get('requirement')} against a server.",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds each connection waits for its sentinel after a step (default: 10)",
    )
    parser.add_argument(
        "--server",
        metavar="URL",
        help="another server to replay against: its scheme, host and port replace the"
        " recorded ones (ws://127.0.0.1:8000, wss://staging.example.org)",
    )
    args = parser.parse_args(argv)
    if not args.timeout > 0:
        parser.error("--timeout must be more than 0 seconds")
    if args.server:
        moved = urlsplit(args.server)
        if moved.scheme not in ("ws", "wss") or not moved.netloc:
            parser.error("--server must be a ws:// or wss:// URL with a host")
        figure = {
            **figure,
            "connections": [
                {**c, "url": urlunsplit(urlsplit(str(c.get("url") or ""))._replace(
                    scheme=moved.scheme, netloc=moved.netloc))}
                for c in figure.get("connections") or []
            ],
        }  # fmt: skip
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    settings = Settings({}, {}, None)
    try:
        settings = Settings.from_env(figure, os.environ)
        return asyncio.run(Replay(figure, settings, args.timeout).run())
    except Usage as exc:
        print(f"{prog}: error: {settings.scrub(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
