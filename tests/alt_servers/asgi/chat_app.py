"""An independent implementation of the EduSphere chat WebSocket protocol as a Starlette app.

Written from the seed (``websocket-api.md``) and the protocol notes only, to check that the
conformance harness passes a correct server it was not written against. Where the seed leaves a
choice open, this server takes a reading unlike both the Python reference server and the Node
one (see README.md beside this file).

Two ways to run it:

* ``create_app(secret=..., fixtures=..., faults=...)`` builds the Starlette application;
* the module-level ``app`` is an ASGI3 callable that builds the real application on its first
  call from the environment (``ALT_ASGI_SECRET``, ``ALT_ASGI_DATA``, ``ALT_ASGI_FAULTS``) and
  delegates to it, so that ``uvicorn tests.alt_servers.asgi.chat_app:app`` works and the module
  imports without the environment set.

Fixtures: ``{"users": [{"username", "email", "avatar"?}], "rooms": [{"host", "slug",
"participants": [username, ...]}]}``; users and rooms get integer ids (1, 2, ...) in file order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import jwt
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

__all__ = ["FAULTS", "app", "create_app"]

log = logging.getLogger("chat_app")

# --- protocol constants ---------------------------------------------------------------------------

MAX_LENGTH: Final = 500  # Unicode code points (seed: "Message exceeds {max} characters.")
MAX_QUEUED_BYTES: Final = 32 * 1024 * 1024  # a client this far behind is closed (1013), dropped
YIELD_EVERY: Final = 16  # frames a sender task writes in a row before it lets others run
CLOSE_TIMEOUT: Final = 5.0  # seconds a close handshake may take before we stop waiting
SUBPROTOCOL: Final = "chat.v1"  # offered by the client before the token
COOKIE: Final = "chat_jwt"  # the second token transport
SERVER_HEADER: Final = (b"x-chat-server", b"starlette-alt")
CLOSE_TRY_AGAIN_LATER: Final = 1013
CLOSE_GOING_AWAY: Final = 1001

# The id of a message is the exact string this server issued (a lowercase uuid4); any other
# spelling (upper case, braces, no hyphens) names no message.
UUID_RE: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# Seed, "Common Error Messages": exact strings.
TOO_LONG: Final = f"Message exceeds {MAX_LENGTH} characters."
NOT_FOUND: Final = "Message not found."
DELETE_OWN: Final = "You can only delete your own messages."
EDIT_OWN: Final = "You can only edit your own messages."
# Open points of the seed: wording of our own.
E_NOT_JSON: Final = "Could not read the frame: it is not JSON."
E_NOT_OBJECT: Final = "Could not read the frame: expected a JSON object."
E_BINARY: Final = "Binary frames are not part of this protocol; send JSON as text."
E_NO_TYPE: Final = "The frame has no type; use text, update or delete."
E_BAD_TYPE: Final = "Unknown frame type; use text, update or delete."
E_BAD_MESSAGE: Final = "The message must be a non-empty string."

#: Fault switches: each breaks one thing; name -> the requirement id (harness/catalogue.toml)
#: whose check it fails. README.md lists the other requirements that fail with it.
FAULTS: dict[str, str] = {
    "no-self-echo": "SEND-002",  # the sending connection does not get its own `new` event
    "not-found-typo": "EDIT-007",  # the not-found error reads "Message not found" (no period)
    "edit-anyones": "EDIT-005",  # anyone may edit anyone's message
    "errors-to-room": "ERR-001",  # an error frame goes to the whole room, not the sender only
}


# --- data -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    email: str
    avatar: str | None


@dataclass(frozen=True, slots=True)
class Room:
    id: int
    host: str
    slug: str
    members: frozenset[int]  # user ids: the host and the participants


@dataclass(slots=True)
class Message:
    id: str
    user_id: int
    body: str
    created: str
    updated: str
    edited: bool = False


def _load_fixtures(
    fixtures: Mapping[str, Any],
) -> tuple[dict[str, User], dict[tuple[str, str], Room]]:
    """Users by username and rooms by (host, slug), with integer ids in file order."""
    users: dict[str, User] = {}
    for index, raw in enumerate(fixtures.get("users") or [], start=1):
        username, email = raw.get("username"), raw.get("email")
        if not isinstance(username, str) or not username:
            raise ValueError(f"fixtures: user #{index} has no username")
        if not isinstance(email, str) or not email:
            raise ValueError(f"fixtures: user {username!r} has no email (the token names it)")
        if username in users:
            raise ValueError(f"fixtures: user {username!r} is listed twice")
        avatar = raw.get("avatar")
        users[username] = User(index, username, email, avatar if isinstance(avatar, str) else None)
    rooms: dict[tuple[str, str], Room] = {}
    for index, raw in enumerate(fixtures.get("rooms") or [], start=1):
        host, slug = raw.get("host"), raw.get("slug")
        if host not in users:
            raise ValueError(f"fixtures: room #{index} has an unknown host {host!r}")
        if not isinstance(slug, str) or not slug:
            raise ValueError(f"fixtures: room #{index} has no slug")
        members = {users[host].id}
        for name in raw.get("participants") or []:
            if name not in users:
                raise ValueError(f"fixtures: room {slug!r} has an unknown participant {name!r}")
            members.add(users[name].id)
        rooms[(host, slug)] = Room(index, host, slug, frozenset(members))
    return users, rooms


def _now() -> str:
    """RFC 3339 with "+00:00"; microseconds (none printed when they happen to be 0)."""
    return datetime.now(UTC).isoformat()


def _encode(payload: Mapping[str, Any]) -> str:
    """JSON with every non-ASCII character escaped: frames are pure ASCII (and a lone surrogate
    a client sent round-trips as ``\\udxxx``)."""
    return json.dumps(payload, separators=(",", ":"))


# --- connections ----------------------------------------------------------------------------------


class Connection:
    """One accepted WebSocket: its outgoing queue (bounded by MAX_QUEUED_BYTES) and the task that
    writes it. Nothing ever awaits a client's socket except this connection's own sender task."""

    def __init__(self, websocket: WebSocket, user: User, room: Room, chat: Chat) -> None:
        self.websocket = websocket
        self.user = user
        self.room = room
        self.chat = chat
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.queued_bytes = 0
        self.open = True
        self.sender: asyncio.Task[None] = asyncio.create_task(self._send_loop())
        self.closer: asyncio.Task[None] | None = None

    def offer(self, text: str) -> None:
        """Queue a frame; never waits. A client more than MAX_QUEUED_BYTES behind is closed."""
        if not self.open:
            return
        size = len(text.encode("utf-8"))
        if self.queued_bytes + size > MAX_QUEUED_BYTES:
            log.warning("closing a client of %s %d bytes behind", self.room.slug, self.queued_bytes)
            self.drop(CLOSE_TRY_AGAIN_LATER, "Too far behind; reconnect")
            return
        self.queued_bytes += size
        self.queue.put_nowait(text)

    async def _send_loop(self) -> None:
        sent = 0
        try:
            while True:
                text = await self.queue.get()
                self.queued_bytes -= len(text.encode("utf-8"))
                await self.websocket.send_text(text)
                # An ASGI server's send returns without suspending while its transport takes
                # more: yield now and then, so that a long backlog never holds the event loop
                # (and a disconnect waiting in the receive loop is seen soon).
                sent += 1
                if sent % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the client went away: stop writing to it
            log.info("send to %s failed: %r", self.user.username, exc)
            self.open = False
            self.chat.detach(self)

    def drop(self, code: int, reason: str) -> None:
        """Stop serving this connection and close it with ``code``, without waiting for it."""
        if not self.open:
            return
        self.open = False
        self.chat.detach(self)
        self.sender.cancel()
        self.queue = asyncio.Queue()  # free what was waiting
        self.queued_bytes = 0
        self.closer = asyncio.create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        await asyncio.wait({self.sender}, timeout=CLOSE_TIMEOUT)  # let the cancellation land
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.websocket.close(code, reason), CLOSE_TIMEOUT)

    async def finish(self) -> None:
        """The client is gone (its receive loop ended): stop the sender, detach."""
        self.open = False
        self.chat.detach(self)
        self.sender.cancel()
        await asyncio.wait({self.sender})  # asyncio.wait never raises the task's exception
        if self.closer is not None:
            await asyncio.wait({self.closer}, timeout=2 * CLOSE_TIMEOUT)


# --- the chat -------------------------------------------------------------------------------------


@dataclass(slots=True)
class State:
    """What lives from the lifespan's start to its end: messages and open connections."""

    messages: dict[int, dict[str, Message]] = field(default_factory=dict)  # room id -> id -> msg
    connections: dict[int, set[Connection]] = field(default_factory=dict)  # room id -> conns


class Chat:
    def __init__(self, secret: str, fixtures: Mapping[str, Any], faults: frozenset[str]) -> None:
        unknown = sorted(set(faults) - set(FAULTS))
        if unknown:
            raise ValueError(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(FAULTS)}")
        if not secret:
            raise ValueError("the JWT secret is empty")
        self.secret = secret
        self.faults = faults
        self.users, self.rooms = _load_fixtures(fixtures)
        # The token names its user by the `email` claim, matched without regard to case.
        self.users_by_email: dict[str, User] = {}
        for user in self.users.values():
            if self.users_by_email.setdefault(user.email.casefold(), user) is not user:
                raise ValueError(f"fixtures: two users have the email {user.email!r}")
        self.not_found = "Message not found" if "not-found-typo" in faults else NOT_FOUND
        self._state: State | None = None

    # -- lifespan ------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        # An ASGI driver that runs no lifespan still gets a working server.
        if self._state is None:
            self._state = State()
        return self._state

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self._state = State()
        try:
            yield
        finally:
            state, self._state = self._state, None
            if state is not None:
                conns = [c for room in state.connections.values() for c in room]
                for conn in conns:
                    conn.drop(CLOSE_GOING_AWAY, "Server shutting down")
                closers = [c.closer for c in conns if c.closer is not None]
                if closers:
                    await asyncio.wait(closers, timeout=CLOSE_TIMEOUT)

    def detach(self, conn: Connection) -> None:
        if self._state is not None:
            self._state.connections.get(conn.room.id, set()).discard(conn)

    # -- admission -------------------------------------------------------------------------------

    def _user_of(self, token: str | None) -> User | None:
        if not token:
            return None
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                options={"require": ["exp"], "verify_aud": False},
            )
        except jwt.PyJWTError:
            return None
        email = claims.get("email")
        if not isinstance(email, str):
            return None
        return self.users_by_email.get(email.casefold())

    @staticmethod
    def _token_of(websocket: WebSocket) -> tuple[str | None, bool]:
        """(token, whether the client offered the chat.v1 subprotocol). A token offered as a
        subprotocol wins over the cookie."""
        offered = [str(p) for p in websocket.scope.get("subprotocols") or []]
        named = SUBPROTOCOL in offered
        others = [p for p in offered if p != SUBPROTOCOL]
        if others:
            return others[0], named
        return websocket.cookies.get(COOKIE), named

    async def _refuse(self, websocket: WebSocket, status: int) -> None:
        if "websocket.http.response" in (websocket.scope.get("extensions") or {}):
            await websocket.send_denial_response(Response(status_code=status))
        else:
            await websocket.close(code=1008)  # before accept: the ASGI server answers HTTP 403

    async def endpoint(self, websocket: WebSocket) -> None:
        await websocket.receive()  # websocket.connect
        token, named = self._token_of(websocket)
        user = self._user_of(token)
        if user is None:
            return await self._refuse(websocket, 401)
        params = websocket.path_params
        room = self.rooms.get((params["host"], params["room"]))
        if room is None:
            return await self._refuse(websocket, 404)
        if user.id not in room.members:
            return await self._refuse(websocket, 403)
        await websocket.accept(subprotocol=SUBPROTOCOL if named else None, headers=[SERVER_HEADER])
        conn = Connection(websocket, user, room, self)
        state = self.state
        state.connections.setdefault(room.id, set()).add(conn)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if not conn.open:
                    continue  # being closed (1013 or 1001): read until the client goes
                try:
                    self.handle(conn, message.get("text"), message.get("bytes"))
                except Exception:
                    log.exception("handling a frame from %s", user.username)
                    self.reply(conn, "Internal error.")
        finally:
            await conn.finish()

    async def not_routed(self, websocket: WebSocket) -> None:
        await websocket.receive()
        await self._refuse(websocket, 404)

    # -- frames ---------------------------------------------------------------------------------

    def reply(self, conn: Connection, error: str) -> None:
        text = _encode({"error": error})
        if "errors-to-room" in self.faults:
            self.broadcast(conn.room, text)
        else:
            conn.offer(text)

    def broadcast(self, room: Room, text: str, skip: Connection | None = None) -> None:
        for conn in list(self.state.connections.get(room.id, ())):
            if conn is skip:
                continue
            try:
                conn.offer(text)
            except Exception:  # one client's trouble never stops the others' events
                log.exception("queueing for %s", conn.user.username)
                conn.drop(1011, "Internal error")

    def handle(self, conn: Connection, text: str | None, data: bytes | None) -> None:
        if text is None:
            return self.reply(conn, E_BINARY)
        try:
            frame = json.loads(text)
        except (ValueError, RecursionError):
            return self.reply(conn, E_NOT_JSON)
        if not isinstance(frame, dict):
            return self.reply(conn, E_NOT_OBJECT)
        if "type" not in frame:
            return self.reply(conn, E_NO_TYPE)
        kind = frame["type"]
        if kind == "text":
            return self.send_text(conn, frame)
        if kind == "update":
            return self.update(conn, frame)
        if kind == "delete":
            return self.delete(conn, frame)
        return self.reply(conn, E_BAD_TYPE)

    @staticmethod
    def _body_error(body: Any) -> str | None:
        if not isinstance(body, str) or not body:
            return E_BAD_MESSAGE
        if len(body) > MAX_LENGTH:  # a Python str's length counts code points
            return TOO_LONG
        return None

    def _find(self, conn: Connection, frame: Mapping[str, Any]) -> Message | None:
        """The message of this connection's room that ``messageId`` names exactly, or None."""
        message_id = frame.get("messageId")
        if not isinstance(message_id, str) or not UUID_RE.match(message_id):
            return None
        return self.state.messages.get(conn.room.id, {}).get(message_id)

    def send_text(self, conn: Connection, frame: Mapping[str, Any]) -> None:
        body = frame.get("message")
        error = self._body_error(body)
        if error is not None:
            return self.reply(conn, error)
        assert isinstance(body, str)
        now = _now()
        message = Message(str(uuid.uuid4()), conn.user.id, body, now, now)
        self.state.messages.setdefault(conn.room.id, {})[message.id] = message
        event = {
            "type": "chat_message",
            "action": "new",
            "id": message.id,
            "user": conn.user.username,
            "user_id": conn.user.id,
            "body": message.body,
            "created": message.created,
            "edited": False,
            "updated": message.updated,
            "userAvatar": conn.user.avatar,
        }
        skip = conn if "no-self-echo" in self.faults else None
        self.broadcast(conn.room, _encode(event), skip=skip)

    # Update: the id first (unknown, deleted, malformed, another room's: not found), then the new
    # text, then the author.
    def update(self, conn: Connection, frame: Mapping[str, Any]) -> None:
        message = self._find(conn, frame)
        if message is None:
            return self.reply(conn, self.not_found)
        body = frame.get("message")
        error = self._body_error(body)
        if error is not None:
            return self.reply(conn, error)
        assert isinstance(body, str)
        if message.user_id != conn.user.id and "edit-anyones" not in self.faults:
            return self.reply(conn, EDIT_OWN)
        message.body, message.edited, message.updated = body, True, _now()
        event = {
            "type": "chat_message",
            "action": "update",
            "id": message.id,
            "body": message.body,
            "edited": True,
            "updated": message.updated,
        }
        self.broadcast(conn.room, _encode(event))

    def delete(self, conn: Connection, frame: Mapping[str, Any]) -> None:
        message = self._find(conn, frame)
        if message is None:
            return self.reply(conn, self.not_found)
        if message.user_id != conn.user.id:
            return self.reply(conn, DELETE_OWN)
        del self.state.messages[conn.room.id][message.id]
        self.broadcast(
            conn.room, _encode({"type": "chat_message", "action": "delete", "id": message.id})
        )


# --- the application ------------------------------------------------------------------------------


def create_app(
    *, secret: str, fixtures: dict[str, Any], faults: frozenset[str] = frozenset()
) -> Starlette:
    """The chat as a Starlette application; state in memory, per application instance."""
    chat = Chat(secret, fixtures, frozenset(faults))
    return Starlette(
        routes=[
            WebSocketRoute("/ws/chat/{host}/{room}", chat.endpoint),
            WebSocketRoute("/{path:path}", chat.not_routed),
        ],
        lifespan=chat.lifespan,
    )


def _from_environment() -> Starlette:
    secret = os.environ.get("ALT_ASGI_SECRET")
    data = os.environ.get("ALT_ASGI_DATA")
    missing = [
        name for name, value in (("ALT_ASGI_SECRET", secret), ("ALT_ASGI_DATA", data)) if not value
    ]
    if missing or secret is None or data is None:
        raise RuntimeError(
            f"chat_app: {' and '.join(missing)} not set (ALT_ASGI_SECRET: the HS256 key;"
            " ALT_ASGI_DATA: the fixtures JSON file; ALT_ASGI_FAULTS: optional, comma-separated)"
        )
    try:
        fixtures = json.loads(Path(data).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"chat_app: cannot read ALT_ASGI_DATA={data}: {exc}") from exc
    if not isinstance(fixtures, dict):
        raise RuntimeError(f"chat_app: ALT_ASGI_DATA={data} is not a JSON object")
    names = os.environ.get("ALT_ASGI_FAULTS", "")
    faults = frozenset(name.strip() for name in names.split(",") if name.strip())
    try:
        return create_app(secret=secret, fixtures=fixtures, faults=faults)
    except ValueError as exc:
        raise RuntimeError(f"chat_app: {exc}") from exc


_application: Starlette | None = None


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI3 entry point: builds the application from the environment on its first call."""
    global _application
    if _application is None:
        try:
            _application = _from_environment()
        except RuntimeError as exc:
            if scope["type"] == "lifespan":
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
            raise
    await _application(scope, receive, send)
