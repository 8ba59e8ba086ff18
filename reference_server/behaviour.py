"""The decisions of the reference server, one method each: the seams that fault switches override.

``Behaviour`` is the correct server. The server (``server``), the frame parser (``protocol``) and
the token verifier (``auth``) ask it at each decision point and never look at fault names; each
fault of ``reference_server.faults`` is a subclass that overrides one decision (sometimes with a
hook that feeds it). Several faults combine by multiple inheritance; an override that refines
rather than replaces calls ``super()``.

One instance serves one server for its lifetime, so a fault may keep state (ids it issued,
tokens it revoked); the correct server keeps none here. This module depends on the store and
the libraries only, so that ``config`` can resolve fault names without an import cycle.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Final, Literal, TypeVar

import jwt
from websockets.asyncio.server import ServerConnection

from reference_server.framing import send, write
from reference_server.store import Message, Room, Store, User

# Seed, "Common Error Messages": the two a fault may word differently (protocol has the rest).
TOO_LONG: Final = "Message exceeds {max} characters."
NOT_FOUND: Final = "Message not found."

Conn = TypeVar("Conn", bound=ServerConnection)
Action = Literal["new", "update", "delete"]


class Behaviour:
    """The correct reference server's decisions (catalogue behaviour, every MUST and SHOULD)."""

    # -- tokens (auth.TokenVerifier) ----------------------------------------------------------

    def token_options(self, audience: str | None = None) -> dict[str, Any]:
        """PyJWT options: ``exp`` is required and checked. The audience is not ours to check,
        unless the server has one (``ServerConfig.audience``, as an API gateway or a Django
        SimpleJWT ``AUDIENCE`` setting does): then ``aud`` is required and must name it."""
        if audience is None:
            return {"require": ["exp"], "verify_aud": False}
        return {"require": ["exp", "aud"], "verify_aud": True}

    def decode_token(
        self, token: str, key: Any, algorithm: str, audience: str | None = None
    ) -> dict[str, Any]:
        """The token's claims, or a PyJWT error. One parse: PyJWT rejects every algorithm but the
        configured one, ``none`` included, checks the signature and, with ``audience``, that
        the token is meant for this server."""
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            options=self.token_options(audience),  # type: ignore[arg-type, unused-ignore]
            audience=audience,
        )
        return claims

    # -- admission (server.ChatServer._admit) -------------------------------------------------

    def unknown_user(self, claim: str) -> User | None:
        """The account for a verified token whose claim names no user: none, the client is
        refused (AUTH-006)."""
        return None

    def may_join(self, store: Store, room: Room, user: User) -> bool:
        """Seed, "Connection Authentication": "3. The user is a participant in the room"."""
        return store.is_participant(room.id, user.id)

    def admission_refusal(self, user: User, token: str) -> str | None:
        """A reason to refuse an otherwise admissible client: none."""
        return None

    def refuses_at_handshake(self, http_refusal: bool) -> bool:
        """Refuse with an HTTP status (True) or accept and close at once (False), as configured."""
        return http_refusal

    async def refuse_open(self, conn: ServerConnection, close_code: int) -> None:
        """Protocol notes, "How a refusal looks": a close frame at once, before any event."""
        await conn.close(close_code, "Forbidden")

    def registers(self, user: User, present: Iterable[User]) -> bool:
        """Whether a new connection joins the room's group: always, the same account's other
        connections notwithstanding (BCAST-001)."""
        return True

    def history_room_ids(self, store: Store, room_id: str, enabled: bool) -> list[str]:
        """The rooms whose most recent messages a new connection gets in its history frame
        (``ServerConfig.history``, as Slack's or Rocket.Chat's socket replays the backlog on
        connect): its own room when the server sends history, else none (no frame at all)."""
        return [room_id] if enabled else []

    def history_length(self, configured: int | None) -> int:
        """How many of the most recent messages the history frame holds: the configured
        number."""
        return configured or 0

    def joined(self, conn: ServerConnection, user: User, room: Room) -> None:
        """Hook: ``conn``, admitted as ``user``, joined ``room`` (after ``registers`` decided,
        before its greeting frames)."""

    def left(self, conn: ServerConnection, user: User, room: Room) -> None:
        """Hook: ``conn`` of ``user`` to ``room`` closed (it is no longer in the room's group
        unless ``stays_registered``); called before ``disconnected``."""

    def stays_registered(self, close_code: int | None) -> bool:
        """Whether a closed connection stays in its room's group: never."""
        return False

    def disconnected(self, token: str, close_code: int | None) -> None:
        """Hook: a connection admitted with ``token`` closed with ``close_code``."""

    def write_refusal(self, user: User) -> str | None:
        """An error answering every frame of this admitted user: none, participants write."""
        return None

    # -- frames (protocol.FrameParser) ---------------------------------------------------------

    def length_limit(self, max_length: int) -> int:
        """The longest body accepted, in characters: ``max_length`` (seed: 500)."""
        return max_length

    def message_length(self, body: str) -> int:
        """Characters are Unicode code points (SEND-009), i.e. ``len()`` of a Python str."""
        return len(body)

    def too_long_error(self, max_length: int) -> str:
        """Seed, "Common Error Messages": "Message exceeds {max} characters."."""
        return TOO_LONG.format(max=max_length)

    def not_found_error(self) -> str:
        """Seed, "Common Error Messages": "Message not found."."""
        return NOT_FOUND

    def binary_close_code(self) -> int | None:
        """Close code after answering a binary frame: none, the connection stays open."""
        return None

    def malformed_close_code(self) -> int | None:
        """Close code after answering a frame that is not a JSON object: none (ROBUST-002)."""
        return None

    def frame_error(self, frame: dict[str, Any]) -> str | None:
        """An error for a well-formed frame before its type is read: none. Protocol notes: "A
        client frame's timestamp is informational for the server; a server must not require it"."""
        return None

    def unknown_type_is_text(self, kind: object) -> bool:
        """Whether a frame of unknown ``type`` is read as ``text``: no, it is an error."""
        return False

    def non_string_body(self, value: object) -> str | None:
        """The body for a ``message`` that is not a string: none, the frame is an error."""
        return None

    def accepted_body(self, body: str) -> str:
        """The body as stored and broadcast: exactly as sent (SEND-010)."""
        return body

    def message_id(self, value: str) -> str | None:
        """The canonical form of ``messageId``; None when it is not a UUID (names no message)."""
        try:
            return str(uuid.UUID(value))
        except ValueError:
            return None

    # -- messages and events (server.ChatServer) ---------------------------------------------

    def new_message_id(self, store: Store) -> str:
        """Seed, "New Message Event": ``id`` is a UUID string."""
        return str(uuid.uuid4())

    def message_created(self, message: Message, conn: ServerConnection) -> None:
        """Hook: ``conn`` created ``message``."""

    def missing_message(
        self, store: Store, message_id: str, action: Action, conn: ServerConnection
    ) -> Message | None:
        """The message an edit or delete (``action``) on ``conn`` names when the store holds
        none of that id (never created, or deleted): none, it is not found (EDIT-007, EDIT-009,
        DEL-005, DEL-006)."""
        return None

    def in_scope(self, message: Message, room: Room, action: Action) -> bool:
        """Protocol notes, "Room isolation": a frame on a connection to room A never changes a
        message of room B; such a message is not found."""
        return message.room_id == room.id

    def is_author(self, user: User, message: Message, conn: ServerConnection) -> bool:
        """Authorship is the account's, whichever connection it writes on (RECON-004)."""
        return message.user_id == user.id

    def may_edit(self, user: User, message: Message, room: Room, conn: ServerConnection) -> bool:
        """Seed: "You can only edit your own messages."."""
        return self.is_author(user, message, conn)

    def may_delete(self, user: User, message: Message, room: Room, conn: ServerConnection) -> bool:
        """Seed: "You can only delete your own messages."."""
        return self.is_author(user, message, conn)

    def event_user_id(self, user: User) -> str:
        """The new event's ``user_id``: the author's id (SEND-004)."""
        return user.id

    def created_timestamp(self, now: datetime, formatted: str) -> str:
        """The new event's ``created``: the configured RFC 3339 style (SEND-012)."""
        return formatted

    def event_body(self, body: str) -> object:
        """An event's ``body``: the body as stored, a string."""
        return body

    def update_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Seed, "Update Message Event": id, body, edited=true, updated; as built."""
        return event

    def persists_messages(self) -> bool:
        """Messages survive a restart (RECON-006)."""
        return True

    # -- fan-out and errors (server.ChatServer) -----------------------------------------------

    def event_room_id(self, message: Message, user: User, action: Action) -> str:
        """The room whose group gets the ``action`` event of ``message`` caused by ``user``'s
        frame: the message's room (Seed, "Event Types": the room group; ISO-006)."""
        return message.room_id

    def fanout_room_ids(self, store: Store, room_id: str) -> list[str]:
        """The rooms whose connections get a room's events: that room only (ISO-001)."""
        return [room_id]

    def fanout_targets(
        self, targets: list[Conn], sender: Conn | None, action: Action
    ) -> list[Conn]:
        """Seed, "Event Types": "The server broadcasts events to all connected clients in the
        room group", the sender's own connection included. ``sender`` is None on a node of a
        cluster that delivers another node's event (the sender is not one of its connections)."""
        return targets

    async def deliver(
        self, targets: list[Conn], text: str, sender: str, drop: Callable[[Conn], None]
    ) -> None:
        """Write one event to each target. ``websockets.broadcast`` writes to each transport
        without awaiting, so a slow or vanished client cannot hold the others back (RECON-001,
        RECON-002); it skips closed connections, and a reader that lags finds every event in its
        connection's write buffer when it reads again (LOAD-002). ``sender`` is the id of the
        connection whose frame caused the event (on any node); ``drop`` unregisters a dead
        connection. ``framing.write`` is ``broadcast``, or its fragmenting equivalent for a
        server that fragments (``ServerConfig.fragment``)."""
        write(targets, text)

    def error_frame(self, error: str) -> str:
        """Seed, "Error Handling": ``{"error": "Message exceeds 500 characters."}`` (encoded as
        ``protocol.encode`` does; this module sits below protocol)."""
        return json.dumps({"error": error}, ensure_ascii=False, separators=(",", ":"))

    async def send_error(self, sender: Conn, room: Iterable[Conn], text: str) -> None:
        """Seed, "Error Handling": errors answer the connection that caused them, not the room."""
        await send(sender, text)

    # -- several nodes (server.ChatServer with a broker, reference_server.broker) ------------

    def publishes_events(self) -> bool:
        """Whether a node of a cluster publishes its events through the broker, so that every
        node delivers them to its connections: yes (NODE-001; protocol notes, "Several nodes":
        "an event reaches connections on every node")."""
        return True

    def publishes_errors(self) -> bool:
        """Whether a node also publishes its error frames through the broker: no, an error
        answers the connection that caused it only, on whichever node (NODE-002)."""
        return False

    def received_room_ids(self, store: Store, room_id: str, from_this_node: bool) -> list[str]:
        """The rooms whose connections on this node get a publication of ``room_id``'s event:
        that room only, whichever node published it (NODE-003)."""
        return [room_id]
