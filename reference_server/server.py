"""The chat server: handshake checks, frame handling, fan-out.

Seed, "Connection Protocol": the endpoint is ``/ws/chat/{username}/{room}/`` where ``username`` is
the room host's username and ``room`` the room slug; the consumer checks the JWT, that the room
exists for that host and slug, and that the user is a participant, then joins the room's group.
Seed, "Event Types": "The server broadcasts events to all connected clients in the room group".
With ``ServerConfig.broker`` the server is one node of a cluster and the room group spans the
nodes: events go through the broker (``reference_server.broker``) to every node's connections.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Final, Literal
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from reference_server.auth import AuthError, Credentials, TokenVerifier, find_credentials
from reference_server.behaviour import Action, Behaviour
from reference_server.broker import BrokerError, Publication, RedisBroker, broker_address
from reference_server.config import ServerConfig, server_tls_context
from reference_server.demo import seed_demo
from reference_server.framing import FRAGMENTS, FramedConnection, send, write
from reference_server.logs import log
from reference_server.protocol import (
    DELETE_OWN,
    EDIT_OWN,
    INTERNAL,
    STORAGE_FORMAT,
    Delete,
    Edit,
    FrameParser,
    Reject,
    SendText,
    encode,
    format_timestamp,
    parse_stored,
)
from reference_server.store import Message, Room, Store, User, open_store

logger = logging.getLogger("reference_server")

PATH_PREFIX = "/ws/chat/"
#: websockets' keepalive interval and timeout, the heartbeat's when one of them is unset.
DEFAULT_PING_SECONDS = 20.0
STOP_GRACE_SECONDS = 2.0
RATE_WINDOW: Final = 1.0
"""Seconds of the sliding window ``ServerConfig.rate_limit`` counts accepted frames in."""
IDLE_REASON: Final = "idle"
"""The close reason of a connection closed by ``ServerConfig.idle_timeout`` (code 1001)."""

RefusalCause = Literal["auth", "participant", "room"]
"""Why a client was refused: its token (none, bad, naming no user), its account (not a
participant, or refused otherwise), or the room (none of that host and slug). The order of
``ServerConfig.refusal_close_codes``."""
REFUSAL_CAUSES: Final[tuple[RefusalCause, ...]] = ("auth", "participant", "room")


@dataclass(frozen=True, slots=True)
class Session:
    """An admitted connection: who, where, how its token came, and the token."""

    user: User
    room: Room
    transport: str
    token: str = ""


@dataclass(frozen=True, slots=True)
class Refused:
    """A refused client: the reason (safe to log) and its cause."""

    reason: str
    cause: RefusalCause


class ChatConnection(FramedConnection):
    """A server connection that carries the outcome of its handshake checks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session: Session | None = None
        self.refusal_cause: RefusalCause | None = None
        """Why the client was refused, when it was accepted only to be closed at once."""
        self.subprotocol_choice: str | None = None
        self.key = str(self.id)
        """Names the connection in broker publications, across nodes."""


class ChatServer:
    """One listening server over one Store. Use ``serve(config)`` to run it.

    ``behaviour`` (default: a new instance of the config's) makes every decision a fault switch
    may change; this class asks it and never looks at fault names.
    """

    def __init__(
        self, config: ServerConfig, store: Store, behaviour: Behaviour | None = None
    ) -> None:
        self.config = config
        self.store = store
        self.behaviour = behaviour = behaviour or config.behaviour()
        self.errors: list[BaseException] = []
        """Unexpected exceptions raised while serving (each is also logged)."""
        self.rooms: dict[str, dict[ChatConnection, None]] = {}
        """Room id -> its open connections, in the order they joined."""
        self.node = (
            config.node_name or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        )
        """This server's name in logs and broker publications."""
        self.failure: BrokerError | None = None
        """Why the server cannot go on serving (its broker was lost), once ``failed`` is set."""
        self.failed = asyncio.Event()
        """Set when the server can serve no more: whoever runs it should stop it."""
        self._connections: dict[str, ChatConnection] = {}
        """Admitted open connections by key: the senders of this node's publications."""
        self._broker: RedisBroker | None = None
        self._parser = FrameParser(config, behaviour)
        self._verifier = TokenVerifier(config, behaviour)
        self._server: Server | None = None
        self._latency_rng = random.Random(config.latency_seed)
        self._stopping = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on config.host / config.port (0: any free port). A node of a cluster first
        subscribes to its broker, so that it misses no event of the other nodes (BrokerError
        when the broker cannot be reached)."""
        if self.config.broker is not None:
            broker = RedisBroker(self.config.broker, self._on_publication, self._broker_lost)
            await broker.start()
            self._broker = broker
        # Unset, websockets' own keepalive (20 s each), exactly as before these settings. Set,
        # the server's own heartbeat (_heartbeat), as aiohttp's: websockets' keepalive waits
        # for a ping to be written before it starts the pong's clock, so a reader that stops
        # reading behind a full buffer is never timed out.
        heartbeat: dict[str, Any] = {}
        if self.heartbeat is not None:
            heartbeat["ping_interval"] = None
        try:
            self._server = await ws_serve(
                self._handle,
                self.config.host,
                self.config.port,
                process_request=self._process_request,
                select_subprotocol=self._select_subprotocol,
                create_connection=ChatConnection,
                compression="deflate" if self.config.compression else None,
                max_size=self.config.max_frame_bytes,
                ssl=server_tls_context(self.config),
                **heartbeat,
            )
        except BaseException:
            await self._stop_broker()
            raise
        broker_url = self.config.broker
        extra = (
            {} if broker_url is None else {"node": self.node, "broker": broker_address(broker_url)}
        )
        log(logger, logging.INFO, "listening", url=self.url_template, **extra)

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Close every connection (1001) and stop listening; connections whose client does not
        complete the closing handshake within ``grace`` seconds are aborted."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # frames still queued are handled without their delay
        server.close()
        try:
            async with asyncio.timeout(grace):
                await server.wait_closed()
        except TimeoutError:
            for connection in server.all_connections:
                connection.transport.abort()
            await server.wait_closed()
        await self._stop_broker()
        log(logger, logging.INFO, "stopped")

    async def _stop_broker(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.stop()

    def _broker_lost(self, exc: BaseException) -> None:
        """The subscription failed: this node can deliver nothing more, so it must stop."""
        self.errors.append(exc)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.failure = BrokerError(f"node {self.node} lost its broker: {reason}")
        self.failed.set()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None:
            raise RuntimeError("server is not listening")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url_template(self) -> str:
        """``ws://HOST:PORT/ws/chat/{host}/{room}`` (``wss://`` with TLS), always without the
        trailing slash (append one when ``trailing_slash`` is "with")."""
        host = self.config.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        scheme = "wss" if self.config.tls_cert else "ws"
        return f"{scheme}://{host}:{self.port}/ws/chat/{{host}}/{{room}}"

    # -- handshake ---------------------------------------------------------------------------

    def _match(self, path: str) -> tuple[str, str] | None:
        """(host, slug) of an endpoint path, or None for any other path (404).

        Protocol notes, "Trailing slash": the seed writes the path with a slash, the client code
        without; ``trailing_slash`` says which forms are served.
        """
        if not path.startswith(PATH_PREFIX):
            return None
        rest = path[len(PATH_PREFIX) :]
        slash = rest.endswith("/")
        if slash:
            rest = rest[:-1]
        host, sep, slug = rest.partition("/")
        if not sep or not host or not slug or "/" in slug:
            return None
        allowed = self.config.trailing_slash
        if (slash and allowed == "without") or (not slash and allowed == "with"):
            return None
        return unquote(host), unquote(slug)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        conn: ChatConnection = connection  # type: ignore[assignment]  # create_connection
        conn.fragments = FRAGMENTS if self.config.fragment else 1
        path, _, query = request.path.partition("?")
        target = self._match(path)
        if target is None:
            return conn.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        host, slug = target
        for name, value in self.config.require_headers:
            if request.headers.get(name) != value:
                return conn.respond(HTTPStatus.UNAUTHORIZED, f"{name} missing or wrong\n")
        credentials = find_credentials(self.config, request.headers, query)
        if credentials is not None:
            conn.subprotocol_choice = credentials.subprotocol
        try:
            outcome = self._admit(host, slug, credentials)
        except Exception as exc:  # a library surprise refuses the client; it never answers 500
            self.errors.append(exc)
            logger.exception("handshake check failed", extra={"fields": {}})
            outcome = Refused("handshake check failed", "auth")
        if isinstance(outcome, Session):
            conn.session = outcome
            return None
        log(logger, logging.INFO, "refused", room=f"{host}/{slug}", reason=outcome.reason)
        conn.refusal_cause = outcome.cause
        if not self.behaviour.refuses_at_handshake(self.config.refusal == "http"):
            return None  # accepted without a session: the handler refuses it at once
        return conn.respond(HTTPStatus(self.config.refusal_status), "Forbidden\n")

    def _admit(self, host: str, slug: str, credentials: Credentials | None) -> Session | Refused:
        """A Session, or why the client is refused (the reason is safe to log).

        Seed, "Connection Authentication": "1. User is authenticated via JWT token 2. The target
        room exists with the specified host and slug 3. The user is a participant in the room".
        """
        if credentials is None:
            return Refused("no token", "auth")
        try:
            claim = self._verifier.verify(credentials.token)
        except AuthError as exc:
            return Refused(str(exc), "auth")
        behaviour = self.behaviour
        user = self.store.user(self.config.user_claim_kind, claim) or behaviour.unknown_user(claim)
        if user is None:
            return Refused("unknown user", "auth")
        room = self.store.room(host, slug)
        if room is None:
            return Refused("no such room", "room")
        if not behaviour.may_join(self.store, room, user):
            return Refused("not a participant", "participant")
        refusal = behaviour.admission_refusal(user, credentials.token)
        if refusal is not None:  # an account refused although it takes part: forbidden too
            return Refused(refusal, "participant")
        return Session(user, room, credentials.transport, credentials.token)

    def refusal_close_code(self, cause: RefusalCause | None) -> int:
        """The close code of a refusal by close: ``refusal_close_codes``' code of its cause
        (HTTP-minded servers close with 4401 / 4403 / 4404), else ``refusal_close_code``."""
        codes = self.config.refusal_close_codes
        if codes is None or cause is None:
            return self.config.refusal_close_code
        return codes[REFUSAL_CAUSES.index(cause)]

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Iterable[Subprotocol]
    ) -> Subprotocol | None:
        """Select the token's subprotocol (or the configured name); None when none is offered,
        so that clients sending the token another way are not answered 400."""
        if "subprotocol" not in self.config.transports:
            return None
        conn: ChatConnection = connection  # type: ignore[assignment]
        offered = list(offered)
        choice = conn.subprotocol_choice
        if choice is not None and choice in offered:
            return Subprotocol(choice)
        name = self.config.subprotocol_name
        if name is not None and name in offered:
            return Subprotocol(name)
        return None

    # -- connection --------------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        conn: ChatConnection = connection  # type: ignore[assignment]
        session = conn.session
        if session is None:
            await self.behaviour.refuse_open(conn, self.refusal_close_code(conn.refusal_cause))
            return
        self._connections[conn.key] = conn
        self._join(conn, session)  # no await before: nothing comes before its greeting frames
        idle = self.config.idle_timeout
        watch = (
            None
            if idle is None
            else asyncio.create_task(self._close_when_idle(conn, session.room, idle))
        )
        beat = (
            None
            if self.heartbeat is None
            else asyncio.create_task(self._heartbeat(conn, session.room))
        )
        limit = self.config.rate_limit
        accepted: deque[float] = deque()
        try:
            # One frame at a time: frame N+1 waits until frame N's delay and handling (its
            # fan-out included) are done. websockets answers pings and closes in its own reading
            # task, so neither waits for this loop (as long as fewer than max_queue frames wait).
            async for data in conn:
                if limit is not None and not self._within_rate(accepted, limit):
                    await self._reply_error(conn, session.room, self.config.rate_limit_error)
                    continue
                await self._processing_delay()
                try:
                    await self._on_frame(conn, session, data)
                except ConnectionClosed:
                    raise
                except Exception as exc:  # no frame may take the server down
                    self.errors.append(exc)
                    logger.exception("frame handling failed", extra={"fields": {}})
                    await send(conn, self.behaviour.error_frame(INTERNAL))
        except ConnectionClosed:
            pass
        finally:
            if watch is not None:
                watch.cancel()
            if beat is not None:
                beat.cancel()
            self._leave(conn, session)

    @staticmethod
    def _within_rate(accepted: deque[float], limit: int) -> bool:
        """Whether one more frame fits ``rate_limit``: fewer than ``limit`` frames accepted
        within the last RATE_WINDOW seconds (a sliding window; refused frames do not count).
        Counts the frame when it fits."""
        now = asyncio.get_running_loop().time()
        while accepted and accepted[0] <= now - RATE_WINDOW:
            accepted.popleft()
        if len(accepted) >= limit:
            return False
        accepted.append(now)
        return True

    @property
    def heartbeat(self) -> tuple[float, float] | None:
        """(interval, timeout) of the server's own heartbeat, when ``ping_interval`` or
        ``ping_timeout`` is set (the other one defaults to websockets' 20 s); None: unset."""
        interval, timeout = self.config.ping_interval, self.config.ping_timeout
        if interval is None and timeout is None:
            return None
        return (interval or DEFAULT_PING_SECONDS, timeout or DEFAULT_PING_SECONDS)

    async def _heartbeat(self, conn: ChatConnection, room: Room) -> None:
        """aiohttp's ``heartbeat=``: a ping every interval; a client whose pong has not come
        within the timeout of the ping, written or still queued behind data the client does not
        read, is ended without a close frame (it would queue behind the same data)."""
        assert self.heartbeat is not None
        interval, timeout = self.heartbeat
        while True:
            await asyncio.sleep(interval)
            try:
                async with asyncio.timeout(timeout):
                    pong = await conn.ping()
                    await pong
            except TimeoutError:
                log(logger, logging.INFO, "heartbeat timeout", room=room.path, seconds=timeout)
                conn.transport.abort()
                return
            except ConnectionClosed:
                return

    async def _close_when_idle(self, conn: ChatConnection, room: Room, timeout: float) -> None:
        """Close ``conn`` (1001, "idle") once no data frame went either way for ``timeout``
        seconds, as a load balancer's idle timeout does; one sleeping task per connection,
        woken only when the deadline of its last data frame comes (cancelled when it closes)."""
        loop = asyncio.get_running_loop()
        while True:
            quiet = loop.time() - conn.last_data
            if quiet >= timeout:
                log(logger, logging.INFO, "idle", room=room.path, seconds=round(quiet, 3))
                await conn.close(CloseCode.GOING_AWAY, IDLE_REASON)
                return
            await asyncio.sleep(timeout - quiet)

    def _forget(self, conn: ChatConnection, room_id: str) -> None:
        members = self.rooms.get(room_id)
        if members is not None:
            members.pop(conn, None)
            if not members:
                del self.rooms[room_id]

    def _join(self, conn: ChatConnection, session: Session) -> None:
        members = self.rooms.setdefault(session.room.id, {})
        user = session.user
        present = (c.session.user for c in members if c.session is not None)
        if self.behaviour.registers(user, present):
            members[conn] = None
        self.behaviour.joined(conn, user, session.room)
        self._greet(conn, session)
        log(
            logger,
            logging.INFO,
            "connected",
            user=user.username,
            room=session.room.path,
            transport=session.transport,
        )

    def _group(self, room_id: str) -> list[ChatConnection]:
        """The open connections of a room's group: of every room its events go to."""
        return [
            conn
            for rid in self.behaviour.fanout_room_ids(self.store, room_id)
            for conn in self.rooms.get(rid, ())
        ]

    def _greet(self, conn: ChatConnection, session: Session) -> None:
        """The frames a new connection gets before any event, written at once (the caller has
        not awaited since the connection joined its group, so no event can come first): the
        history frame (``ServerConfig.history``), then the presence frame
        (``ServerConfig.presence``), whose join the group's other connections get."""
        history = self._history_frame(session.room)
        if history is not None:
            write([conn], history)
        if self.config.presence:
            name = session.user.username
            group = self._group(session.room.id)
            users = {c.session.user.username for c in group if c.session is not None}
            write([conn], encode({"type": "presence", "users": sorted(users | {name})}))
            joined = {"type": "presence", "action": "join", "user": name}
            write([other for other in group if other is not conn], encode(joined))

    def _history_frame(self, room: Room) -> str | None:
        """``{"type": "history", "messages": [...]}``: the most recent messages of the rooms
        the behaviour names (by default the room's ``history`` most recent, when it is set),
        oldest first, each shaped as its ``new`` event with its current body; None: no frame."""
        behaviour = self.behaviour
        enabled = self.config.history is not None
        room_ids = behaviour.history_room_ids(self.store, room.id, enabled)
        if not room_ids:
            return None
        count = behaviour.history_length(self.config.history)
        messages = [m for rid in room_ids for m in self.store.recent_messages(rid, count)]
        messages.sort(key=lambda message: message.created)  # stable: each room's order stays
        messages = messages[max(0, len(messages) - count) :] if count > 0 else []
        authors: dict[str, User | None] = {}
        events = []
        for message in messages:
            if message.user_id not in authors:
                authors[message.user_id] = self.store.user("id", message.user_id)
            author = authors[message.user_id]
            if author is not None:
                events.append(self._stored_event(message, author))
        return encode({"type": "history", "messages": events})

    def _stored_event(self, message: Message, author: User) -> dict[str, Any]:
        """A stored message as its ``new`` event, with its current body, edited and updated."""
        style = self.config.timestamp_style
        created = parse_stored(message.created)
        return self._new_event(
            message,
            author,
            created,
            format_timestamp(created, style),
            format_timestamp(parse_stored(message.updated), style),
        )

    def _new_event(
        self, message: Message, user: User, now: datetime, stamp: str, updated: str
    ) -> dict[str, Any]:
        """Seed, "New Message Event": id, user, user_id, body, created, edited, updated,
        userAvatar (``stamp`` is ``now`` in the configured style)."""
        behaviour = self.behaviour
        return {
            "type": "chat_message",
            "action": "new",
            "id": message.id,
            "user": user.username,
            "user_id": behaviour.event_user_id(user),
            "body": behaviour.event_body(message.body),
            "created": behaviour.created_timestamp(now, stamp),
            "edited": message.edited,
            "updated": updated,
            "userAvatar": user.avatar,
        }

    def _leave(self, conn: ChatConnection, session: Session) -> None:
        self._connections.pop(conn.key, None)
        if not self.behaviour.stays_registered(conn.close_code):
            self._forget(conn, session.room.id)
        if self.config.presence:
            others = [other for other in self._group(session.room.id) if other is not conn]
            left = {"type": "presence", "action": "leave", "user": session.user.username}
            write(others, encode(left))
        self.behaviour.left(conn, session.user, session.room)
        self.behaviour.disconnected(session.token, conn.close_code)
        log(
            logger,
            logging.INFO,
            "disconnected",
            user=session.user.username,
            room=session.room.path,
            code=conn.close_code,
        )

    # -- frames ------------------------------------------------------------------------------

    def latency_draw(self) -> float:
        """The next frame's processing delay in seconds, drawn uniformly in the configured
        ``latency_ms`` (from the server's own, optionally seeded, generator); 0 without one."""
        latency = self.config.latency_ms
        if latency is None:
            return 0.0
        return self._latency_rng.uniform(*latency) / 1000

    async def _processing_delay(self) -> None:
        """Wait the processing delay of one client data frame (``serve --latency``); cut short
        once the server stops, so that stopping never waits for a queue of delayed frames."""
        if self.config.latency_ms is None:
            return
        seconds = self.latency_draw()
        if self._stopping.is_set():
            return
        with suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def _on_frame(self, conn: ChatConnection, session: Session, data: str | bytes) -> None:
        command = self._parser.parse(data)
        if isinstance(command, Reject):
            await self._reply_error(conn, session.room, command.error, command.close_code)
            return
        user = session.user
        refusal = self.behaviour.write_refusal(user)
        if refusal is not None:
            await self._reply_error(conn, session.room, refusal)
        elif isinstance(command, SendText):
            await self._send_text(conn, session.room, user, command)
        elif isinstance(command, Edit):
            await self._edit(conn, session.room, user, command)
        elif isinstance(command, Delete):
            await self._delete(conn, session.room, user, command)

    async def _send_text(self, conn: ChatConnection, room: Room, user: User, cmd: SendText) -> None:
        """Seed, "New Message Event": id, user, user_id, body, created, edited=false, updated,
        userAvatar."""
        now = datetime.now(UTC)
        style = self.config.timestamp_style
        stamp = format_timestamp(now, style)
        stored = stamp if style == "z-micro" else now.strftime(STORAGE_FORMAT)
        behaviour = self.behaviour
        message = Message(
            behaviour.new_message_id(self.store), room.id, user.id, cmd.body, stored, stored, False
        )
        self.store.add_message(message)
        behaviour.message_created(message, conn)
        event = self._new_event(message, user, now, stamp, stamp)
        room_id = behaviour.event_room_id(message, user, "new")
        await self._fan_out(room_id, encode(event), conn, "new")

    def _find(
        self, conn: ChatConnection, room: Room, message_id: str, action: Action
    ) -> Message | None:
        """The message, if it exists in this room. Protocol notes, "Room isolation": a frame on
        a connection to room A never changes a message of room B."""
        behaviour = self.behaviour
        message = self.store.message(message_id)
        if message is None:
            message = behaviour.missing_message(self.store, message_id, action, conn)
        if message is None or not behaviour.in_scope(message, room, action):
            return None
        return message

    async def _edit(self, conn: ChatConnection, room: Room, user: User, cmd: Edit) -> None:
        """Seed, "Update Message Event": id, body, edited=true, updated; only the author edits
        ("You can only edit your own messages.")."""
        message = self._find(conn, room, cmd.message_id, "update")
        if message is None:
            await self._reply_error(conn, room, self._parser.not_found)
            return
        if not self.behaviour.may_edit(user, message, room, conn):
            await self._reply_error(conn, room, EDIT_OWN)
            return
        now = datetime.now(UTC)
        self.store.edit_message(message.id, cmd.body, now.strftime(STORAGE_FORMAT))
        event: dict[str, Any] = {
            "type": "chat_message",
            "action": "update",
            "id": message.id,
            "body": self.behaviour.event_body(cmd.body),
            "edited": True,
            "updated": format_timestamp(now, self.config.timestamp_style),
        }
        event = self.behaviour.update_event(event)
        room_id = self.behaviour.event_room_id(message, user, "update")
        await self._fan_out(room_id, encode(event), conn, "update")

    async def _delete(self, conn: ChatConnection, room: Room, user: User, cmd: Delete) -> None:
        """Seed, "Delete Message Event": id; only the author deletes ("You can only delete your
        own messages.")."""
        message = self._find(conn, room, cmd.message_id, "delete")
        if message is None:
            await self._reply_error(conn, room, self._parser.not_found)
            return
        if not self.behaviour.may_delete(user, message, room, conn):
            await self._reply_error(conn, room, DELETE_OWN)
            return
        self.store.delete_message(message.id)
        text = encode({"type": "chat_message", "action": "delete", "id": message.id})
        room_id = self.behaviour.event_room_id(message, user, "delete")
        await self._fan_out(room_id, text, conn, "delete")

    async def _reply_error(
        self, conn: ChatConnection, room: Room, error: str, close_code: int | None = None
    ) -> None:
        """Seed, "Error Handling": errors answer the connection that caused them, not the room;
        on every node (NODE-002), so they never go through a broker."""
        behaviour = self.behaviour
        text = behaviour.error_frame(error)
        await behaviour.send_error(conn, self.rooms.get(room.id, ()), text)
        if self._broker is not None and behaviour.publishes_errors():
            await self._broker.publish(Publication(room.id, text, "error", self.node, conn.key))
        if close_code is not None:
            await conn.close(close_code, error)

    # -- fan-out -----------------------------------------------------------------------------

    async def _fan_out(
        self, room_id: str, text: str, sender: ChatConnection, action: Action
    ) -> None:
        """Write one encoded event to every connection of the room, the sender's included.

        Seed, "Event Types": "The server broadcasts events to all connected clients in the room
        group". ``Behaviour.deliver`` writes without awaiting any one client (RECON-001/002).
        A node of a cluster publishes the event instead (awaited, so that the sender's next
        frame is handled after it), and every node delivers it when its subscription gets it
        (``_on_publication``).
        """
        behaviour = self.behaviour
        broker = self._broker
        if broker is not None and behaviour.publishes_events():
            for rid in behaviour.fanout_room_ids(self.store, room_id):
                await broker.publish(Publication(rid, text, action, self.node, sender.key))
            return
        targets = [
            conn
            for rid in behaviour.fanout_room_ids(self.store, room_id)
            for conn in self.rooms.get(rid, ())
        ]
        targets = behaviour.fanout_targets(targets, sender, action)
        await behaviour.deliver(targets, text, sender.key, self._dropped)

    async def _on_publication(self, publication: Publication) -> None:
        """Deliver a publication of any node (this one included) to this node's connections of
        its room. Only the node that published an event knows its sender's connection."""
        try:
            await self._deliver_publication(publication)
        except Exception as exc:  # no publication may stop the node's subscription
            self.errors.append(exc)
            logger.exception("delivery failed", extra={"fields": {"node": self.node}})

    async def _deliver_publication(self, publication: Publication) -> None:
        behaviour = self.behaviour
        own = publication.origin == self.node
        action = publication.action
        if action == "error":
            if own:
                return  # answered on the sender's connection already
            targets = list(self.rooms.get(publication.room_id, ()))
        else:
            targets = [
                conn
                for rid in behaviour.received_room_ids(self.store, publication.room_id, own)
                for conn in self.rooms.get(rid, ())
            ]
            sender = self._connections.get(publication.sender) if own else None
            targets = behaviour.fanout_targets(targets, sender, action)
        await behaviour.deliver(targets, publication.text, publication.sender, self._dropped)

    def _dropped(self, conn: ChatConnection) -> None:
        """A write to ``conn`` found it closed: unregister it."""
        log(logger, logging.WARNING, "fan-out stopped at a closed connection")
        if conn.session is not None:
            self._forget(conn, conn.session.room.id)


@asynccontextmanager
async def serve(config: ServerConfig) -> AsyncIterator[ChatServer]:
    """Run a server for the duration of an ``async with`` block::

    async with serve(ServerConfig(database=":memory:")) as server:
        print(server.url_template)
    """
    behaviour = config.behaviour()
    store = open_store(config.database, persist_messages=behaviour.persists_messages())
    try:
        if config.demo:
            seed_demo(store)
        server = ChatServer(config, store, behaviour)
        await server.start()
        try:
            yield server
        finally:
            await server.stop()
    finally:
        store.close()


__all__ = ["ChatConnection", "ChatServer", "Session", "serve"]
