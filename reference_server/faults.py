"""Fault switches: each one breaks exactly one behaviour of the reference server.

A fault is a subclass of ``Behaviour`` (``reference_server.behaviour``) that overrides the one
decision it breaks, registered here with ``@fault`` next to its entry: name, description, the
catalogue requirements it must trip, their strongest level, and its collateral failures with
the reason for each. The harness's mutation matrix (``tests/mutation.py``) starts the server
with one fault at a time and checks that the suites fail exactly the requirements, plus at most
the collateral ones.

``ServerConfig.faults`` names the faults of a run; ``behaviour_for`` turns those names into one
Behaviour class, once, when the config is made.
"""

from __future__ import annotations

import asyncio
import fcntl
import html
import itertools
import json
import struct
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal
from weakref import WeakKeyDictionary

import jwt
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from reference_server.behaviour import Action, Behaviour, Conn
from reference_server.framing import send, write
from reference_server.store import Message, Room, Store, User

Level = Literal["MUST", "SHOULD"]

CLOSE_UNSUPPORTED: Final = 1003  # RFC 6455 7.4.1: "a type of data it cannot accept"
NO_TIMESTAMP: Final = "Timestamp is required."
GUEST_ERROR: Final = "Guests cannot send messages."
FANOUT_CAP: Final = 5
CHURN_LIMIT: Final = 50
DROPPED: Final = 1006  # RFC 6455 7.1.5: closed without a close frame
LOAD_WINDOW: Final = 1.0  # seconds: a connection is under load when more than
LOAD_EVENTS: Final = 50  # this many events were written to it within the window
LOAD_EVERY: Final = 10  # the load faults strike every 10th event written under load
HOLD_SECONDS: Final = 0.05  # reorder-under-load: the longest an event is held back
MAILBOX_CAPACITY: Final = 64  # drop-when-busy: events a connection takes per period, and
MAILBOX_PERIOD: Final = 0.2  # events its mailbox holds for the next period (seconds)
LAG_BYTES: Final = 64 * 1024  # skip-lagging-reader: a backlog over this lags
SIOCOUTQNSD: Final = 0x894B  # Linux: bytes of a socket's send queue not sent yet (peer's window)


@dataclass(frozen=True)
class Fault:
    """A named defect, the catalogue requirements it must trip, their strongest level, the
    Behaviour that implements it, and the other requirements it legitimately fails too
    (requirement -> why; kept short: each one the broken behaviour really breaks)."""

    name: str
    description: str
    requirements: tuple[str, ...]
    level: Level
    behaviour: type[Behaviour] = field(compare=False, repr=False)
    collateral: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    sequence: bool = field(default=False, kw_only=True, compare=False)
    """Found only by the stateful conversation suite (suites/test_conversation.py): every other
    suite passes with it on; the mutation matrix runs every suite against it and checks that
    only the conversation suite fails."""


FAULTS: dict[str, Fault] = {}
"""Every fault switch by name, in the order of this module."""


def fault(
    name: str,
    description: str,
    requirements: tuple[str, ...],
    level: Level = "MUST",
    collateral: Mapping[str, str] | None = None,
    *,
    sequence: bool = False,
) -> Callable[[type[Behaviour]], type[Behaviour]]:
    """Register the decorated Behaviour subclass as the fault ``name`` (``sequence``: see
    ``Fault.sequence``)."""

    def register(behaviour: type[Behaviour]) -> type[Behaviour]:
        if name in FAULTS:
            raise ValueError(f"fault {name} registered twice")
        FAULTS[name] = Fault(
            name,
            description,
            requirements,
            level,
            behaviour,
            dict(collateral or {}),
            sequence=sequence,
        )
        return behaviour

    return register


def behaviour_for(names: Iterable[str]) -> type[Behaviour]:
    """One Behaviour class with the named faults' overrides (KeyError for an unknown name).

    The faults combine in registry order: the first registered comes first in the MRO.
    """
    chosen = [FAULTS[name].behaviour for name in sorted(set(names), key=list(FAULTS).index)]
    if not chosen:
        return Behaviour
    if len(chosen) == 1:
        return chosen[0]
    return type("Behaviour+" + "+".join(c.__name__ for c in chosen), tuple(chosen), {})


# -- who gets a frame ---------------------------------------------------------------------------


@fault(
    "no-echo",
    "The sender's own connection does not get the events its frames cause.",
    # EDIT-003 and DEL-002 (the editor's own update and delete events) stand on SEND-002: the
    # preflight proves it failing and their tests are blocked by it (no-edit-echo fails them).
    ("SEND-002",),
)
class NoEcho(Behaviour):
    def fanout_targets(
        self, targets: list[Conn], sender: Conn | None, action: Action
    ) -> list[Conn]:
        # Filter before passing on: combined with fanout-cap, the cap counts the others only.
        others = [conn for conn in targets if conn is not sender]
        return super().fanout_targets(others, sender, action)


@fault(
    "no-edit-echo",
    "The sender's own connection gets the `new` events of its messages, but not the `update`"
    " and `delete` events of its edits and deletes.",
    ("EDIT-003", "DEL-002"),
    collateral={
        "EVT-003": "the update event's schema is checked on the editing connection",
        "EVT-004": "the delete event's schema is checked on the deleting connection",
        "ROBUST-016": "a valid edit or delete of one's own message is answered by its event, on"
        " the connection that sent it",
        "RECON-004": "the test waits for its edit's update event on the connection that sent it",
        "RECON-006": "the test waits for its edit's update event on the editing connection,"
        " after the restart",
    },
)
class NoEditEcho(Behaviour):
    def fanout_targets(
        self, targets: list[Conn], sender: Conn | None, action: Action
    ) -> list[Conn]:
        if action != "new":
            targets = [conn for conn in targets if conn is not sender]
        return super().fanout_targets(targets, sender, action)


@fault(
    "errors-broadcast",
    "Error frames go to every connection of the room instead of the sender only.",
    ("ERR-001", "ERR-002"),
)
class ErrorsBroadcast(Behaviour):
    async def send_error(self, sender: Conn, room: Iterable[Conn], text: str) -> None:
        write(room, text)


# -- authorship ----------------------------------------------------------------------------------


@fault("edit-others", "Anyone can edit any message of the room.", ("EDIT-005", "EDIT-006"))
class EditOthers(Behaviour):
    def may_edit(self, user: User, message: Message, room: Room, conn: ServerConnection) -> bool:
        return True


@fault("delete-others", "Anyone can delete any message of the room.", ("DEL-003", "DEL-004"))
class DeleteOthers(Behaviour):
    def may_delete(self, user: User, message: Message, room: Room, conn: ServerConnection) -> bool:
        return True


@fault("host-can-edit", "The room host may edit other users' messages.", ("EDIT-006",))
class HostCanEdit(Behaviour):
    def may_edit(self, user: User, message: Message, room: Room, conn: ServerConnection) -> bool:
        return user.id == room.host_id or super().may_edit(user, message, room, conn)


@fault("host-can-delete", "The room host may delete other users' messages.", ("DEL-004",))
class HostCanDelete(Behaviour):
    def may_delete(self, user: User, message: Message, room: Room, conn: ServerConnection) -> bool:
        return user.id == room.host_id or super().may_delete(user, message, room, conn)


# -- the length limit and error texts ------------------------------------------------------------


@fault(
    "limit-low",
    "The length limit is max_length - 1: a message of exactly the limit is refused.",
    ("SEND-007", "SEND-009", "EDIT-008"),
)
class LimitLow(Behaviour):
    def length_limit(self, max_length: int) -> int:
        return super().length_limit(max_length) - 1


@fault(
    "limit-high",
    "The length limit is max_length + 1: a message one over the limit is accepted.",
    ("SEND-008", "SEND-009", "EDIT-008"),
)
class LimitHigh(Behaviour):
    def length_limit(self, max_length: int) -> int:
        return super().length_limit(max_length) + 1


@fault(
    "limit-utf16",
    "Length is counted in UTF-16 code units: 500 astral characters count as 1000.",
    ("SEND-009",),
)
class LimitUtf16(Behaviour):
    def message_length(self, body: str) -> int:
        return len(body.encode("utf-16-le")) // 2


@fault(
    "not-found-typo",
    'The not-found error reads "Message not found" (no period).',
    ("EDIT-007", "EDIT-009", "DEL-005", "DEL-006", "ISO-003", "ISO-005", "ROBUST-013"),
    collateral={
        "ROBUST-016": "the property-based check fails it too when it draws an edit or delete of"
        " an unknown id without extra fields (frames with extra fields may get any error text)",
    },
)
class NotFoundTypo(Behaviour):
    def not_found_error(self) -> str:
        return "Message not found"


@fault(
    "length-error-text",
    'The length error reads "Message exceeds 500 chars.".',
    ("SEND-008", "ERR-004", "EDIT-008"),
)
class LengthErrorText(Behaviour):
    def too_long_error(self, max_length: int) -> str:
        return f"Message exceeds {max_length} chars."


# -- events --------------------------------------------------------------------------------------


@fault("edited-stays-false", "The update event carries edited: false.", ("EDIT-002", "EVT-003"))
class EditedStaysFalse(Behaviour):
    def update_event(self, event: dict[str, Any]) -> dict[str, Any]:
        return {**super().update_event(event), "edited": False}


@fault("updated-missing", "The update event has no updated field.", ("EDIT-004", "EVT-003"))
class UpdatedMissing(Behaviour):
    def update_event(self, event: dict[str, Any]) -> dict[str, Any]:
        event = dict(super().update_event(event))
        event.pop("updated", None)
        return event


@fault("id-not-uuid", 'Message ids are integers written as strings ("17").', ("EVT-002",))
class IdNotUuid(Behaviour):
    """Ids count on from the highest message rowid at the first message; any ASCII messageId
    names a message."""

    _ids: Iterator[int] | None = None

    def new_message_id(self, store: Store) -> str:
        if self._ids is None:
            self._ids = itertools.count(store.max_message_rowid() + 1)
        return str(next(self._ids))

    def message_id(self, value: str) -> str | None:
        return value if value.isascii() else None


# -- authentication and admission ----------------------------------------------------------------


@fault(
    "admit-outsider",
    "Users who are not participants of the room are accepted.",
    ("ROOM-004", "AUTH-008"),
)
class AdmitOutsider(Behaviour):
    def may_join(self, store: Store, room: Room, user: User) -> bool:
        return True


@fault("accept-expired", "The token's exp claim is not checked.", ("AUTH-003", "AUTH-008"))
class AcceptExpired(Behaviour):
    def token_options(self, audience: str | None = None) -> dict[str, Any]:
        return {**super().token_options(audience), "verify_exp": False}


@fault("accept-alg-none", "Unsigned tokens (alg: none) are accepted.", ("AUTH-005", "AUTH-008"))
class AcceptAlgNone(Behaviour):
    """An unsigned token is decoded without a signature check; its ``exp`` (and, when the server
    has one, its audience) is still checked."""

    def decode_token(
        self, token: str, key: Any, algorithm: str, audience: str | None = None
    ) -> dict[str, Any]:
        if jwt.get_unverified_header(token).get("alg") != "none":
            return super().decode_token(token, key, algorithm, audience)
        options = {
            **super().token_options(audience),
            "verify_signature": False,
            "verify_exp": True,
        }
        claims: dict[str, Any] = jwt.decode(
            token,
            options=options,  # type: ignore[arg-type, unused-ignore]
            audience=audience,
        )
        return claims


@fault(
    "skip-signature",
    "The token's signature is not verified (the algorithm still must match).",
    ("AUTH-004", "AUTH-007", "AUTH-008"),
)
class SkipSignature(Behaviour):
    def token_options(self, audience: str | None = None) -> dict[str, Any]:
        # PyJWT turns every claim check off with the signature check: keep exp's and aud's as
        # they were.
        options = super().token_options(audience)
        return {
            **options,
            "verify_signature": False,
            "verify_exp": options.get("verify_exp", True),
            "verify_aud": options.get("verify_aud", False),
        }

    def decode_token(
        self, token: str, key: Any, algorithm: str, audience: str | None = None
    ) -> dict[str, Any]:
        alg = jwt.get_unverified_header(token).get("alg")
        if alg != algorithm:  # without the signature check PyJWT would not look at it
            raise jwt.InvalidAlgorithmError(alg)
        return super().decode_token(token, key, algorithm, audience)


GUEST: Final = User("guest", "guest", None, None)
"""The account of every client the unknown-user-accepted fault lets in."""


@fault(
    "unknown-user-accepted",
    "A valid token naming an unknown user is accepted as a guest who may read the room.",
    ("AUTH-006", "AUTH-008"),
)
class UnknownUserAccepted(Behaviour):
    def unknown_user(self, claim: str) -> User | None:
        return GUEST

    def may_join(self, store: Store, room: Room, user: User) -> bool:
        return user is GUEST or super().may_join(store, room, user)

    def write_refusal(self, user: User) -> str | None:
        return GUEST_ERROR if user is GUEST else super().write_refusal(user)


# -- isolation -----------------------------------------------------------------------------------


@fault(
    "leak-to-other-room",
    "Events also go to the connections of the host's other rooms.",
    ("ISO-001", "ISO-006"),
)
class LeakToOtherRoom(Behaviour):
    def fanout_room_ids(self, store: Store, room_id: str) -> list[str]:
        siblings = [other for other in store.sibling_room_ids(room_id) if other != room_id]
        return [*super().fanout_room_ids(store, room_id), *siblings]


HISTORY_DEFAULT: Final = 20
"""history-leaks-other-room: the messages its history frame holds when the server sends none."""


@fault(
    "history-leaks-other-room",
    "Every new connection first gets a history frame (the 20 most recent messages when the"
    " server is not configured to send history) whose query filters on the room's host, not"
    " the room: it holds the most recent messages of the host's other rooms too.",
    ("ISO-001",),
)
class HistoryLeaksOtherRoom(Behaviour):
    """The backlog query of a chat app that selects ``WHERE host = ?`` (or joins on the host's
    rooms) where it meant ``WHERE room = ?``, and that replays it on every connect."""

    def history_room_ids(self, store: Store, room_id: str, enabled: bool) -> list[str]:
        rooms = super().history_room_ids(store, room_id, True)
        return [*rooms, *(other for other in store.sibling_room_ids(room_id) if other not in rooms)]

    def history_length(self, configured: int | None) -> int:
        return super().history_length(configured) or HISTORY_DEFAULT


@fault(
    "rooms-by-slug",
    "The room group is keyed by the slug alone (`chat_{room}`, one word from the seed's"
    " `chat_{username}_{room}`): the events of a room reach the connections of every host's"
    " room of that slug.",
    ("ISO-007",),
)
class RoomsBySlug(Behaviour):
    """A Django Channels consumer whose ``room_group_name`` forgot the host: two hosts that
    both call a room "general" share one group. On a cluster every node delivers each of those
    rooms' publications to its own connections of the room, so the mix spans the nodes too."""

    def fanout_room_ids(self, store: Store, room_id: str) -> list[str]:
        rooms = super().fanout_room_ids(store, room_id)
        return [
            *rooms,
            *(other for other in store.same_slug_room_ids(room_id) if other not in rooms),
        ]


@fault(
    "cross-room-edit",
    "An edit by id reaches a message of another room and is broadcast there.",
    ("ISO-002", "ISO-003"),
    collateral={
        "ISO-007": "the other host's room of the same slug is another room too: an edit naming"
        " its message from the main room reaches it",
    },
)
class CrossRoomEdit(Behaviour):
    def in_scope(self, message: Message, room: Room, action: Action) -> bool:
        return action == "update" or super().in_scope(message, room, action)


@fault(
    "cross-room-delete",
    "A delete by id removes a message of another room and is broadcast there.",
    ("ISO-004", "ISO-005"),
    collateral={
        "ISO-007": "the other host's room of the same slug is another room too: a delete naming"
        " its message from the main room removes it",
    },
)
class CrossRoomDelete(Behaviour):
    def in_scope(self, message: Message, room: Room, action: Action) -> bool:
        return action == "delete" or super().in_scope(message, room, action)


# -- delivery ------------------------------------------------------------------------------------


@fault(
    "delete-not-broadcast", "The delete event goes to the sender's connection only.", ("DEL-002",)
)
class DeleteNotBroadcast(Behaviour):
    def fanout_targets(
        self, targets: list[Conn], sender: Conn | None, action: Action
    ) -> list[Conn]:
        if action == "delete":
            return [] if sender is None else [sender]
        return super().fanout_targets(targets, sender, action)


@fault(
    "one-connection-per-user",
    "A second connection of an account to a room receives no events.",
    ("BCAST-001",),
    collateral={
        "BCAST-003": "ten connections of a room need repeated accounts (there are three), and the"
        " fault starves every second connection of an account",
    },
)
class OneConnectionPerUser(Behaviour):
    def registers(self, user: User, present: Iterable[User]) -> bool:
        return user not in present and super().registers(user, present)


@fault(
    "fanout-stops-on-dead",
    "Fan-out awaits each send in join order; a client that vanished without a close"
    " handshake stays registered until a send to it fails, which stops that fan-out, and a"
    " client that stops reading blocks it.",
    ("RECON-001", "RECON-002"),
    collateral={
        "RECON-004": "the test drops a connection, then expects its edit to reach the new one;"
        " the fan-out stops at the dropped connection first",
        "RECON-005": "half the cycles drop without a close handshake; the fan-out stops there",
        "RECON-003": "the test drops a connection, then expects the next event on the new one;"
        " the fan-out stops at the dropped connection first",
        "SEND-003": "connections dropped by earlier tests stay listed until a write to them fails,"
        " so the next fan-out in that room stops at them",
        "SEND-002": "likewise: the fan-out stops at a dropped connection before the sender's echo",
    },
)
class FanoutStopsOnDead(Behaviour):
    def stays_registered(self, close_code: int | None) -> bool:
        return close_code == DROPPED or super().stays_registered(close_code)

    async def deliver(
        self, targets: list[Conn], text: str, sender: str, drop: Callable[[Conn], None]
    ) -> None:
        """Await each send in join order, no timeout; stop at the first failure, dropping the
        dead connection only then."""
        for conn in targets:
            try:
                await send(conn, text)
            except ConnectionClosed:
                drop(conn)
                return


# -- refusals, frames and events ---------------------------------------------------------------


@fault(
    "close-on-malformed",
    "A frame that is not JSON, or not a JSON object, closes the connection with 1003.",
    ("ROBUST-002", "ROBUST-004", "ROBUST-018"),
    "SHOULD",
)
class CloseOnMalformed(Behaviour):
    def malformed_close_code(self) -> int | None:
        return CLOSE_UNSUPPORTED


@fault(
    "accept-then-silence",
    "Refused clients are accepted and left open, receiving nothing.",
    (
        "AUTH-009",
        "AUTH-001",
        "AUTH-002",
        "AUTH-003",
        "AUTH-004",
        "AUTH-005",
        "AUTH-006",
        "AUTH-007",
        "ROOM-001",
        "ROOM-002",
        "ROOM-003",
        "ROOM-004",
    ),
)
class AcceptThenSilence(Behaviour):
    def refuses_at_handshake(self, http_refusal: bool) -> bool:
        return False

    async def refuse_open(self, conn: ServerConnection, close_code: int) -> None:
        """Read and ignore every frame until the client goes."""
        try:
            async for _ in conn:
                pass
        except ConnectionClosed:
            pass


@fault("require-timestamp", "A frame without timestamp is answered with an error.", ("CONN-003",))
class RequireTimestamp(Behaviour):
    def frame_error(self, frame: dict[str, Any]) -> str | None:
        if "timestamp" not in frame:
            return NO_TIMESTAMP
        return super().frame_error(frame)


@fault(
    "escape-body",
    "The body is HTML-escaped before it is stored and broadcast (& < > become entities).",
    ("SEND-010",),
)
class EscapeBody(Behaviour):
    def accepted_body(self, body: str) -> str:
        return html.escape(super().accepted_body(body), quote=False)


@fault(
    "unknown-type-broadcast",
    "A frame of unknown type is treated as a text frame and broadcast.",
    ("ROBUST-007", "ROBUST-017"),
)
class UnknownTypeBroadcast(Behaviour):
    def unknown_type_is_text(self, kind: object) -> bool:
        return True


class JsonText(str):
    """A non-string ``message`` as its JSON text (how the nonstring-body fault stores it), which
    remembers the value it was made from (which that fault broadcasts)."""

    value: object

    def __new__(cls, value: object) -> JsonText:
        text = super().__new__(cls, json.dumps(value, ensure_ascii=False, separators=(",", ":")))
        text.value = value
        return text


@fault(
    "nonstring-body",
    "A non-string message is broadcast with that JSON value as body.",
    ("ROBUST-010", "ROBUST-017", "EVT-002"),
    collateral={
        "ROBUST-011": "the frame is served, not answered with an error (a null or missing"
        " message's event names nothing of the test: not judged, so the sentinel comes first)",
    },
)
class NonstringBody(Behaviour):
    def non_string_body(self, value: object) -> str | None:
        return JsonText(value)

    def event_body(self, body: str) -> object:
        return body.value if isinstance(body, JsonText) else super().event_body(body)


@fault(
    "binary-close",
    "A binary frame closes the connection (1003).",
    ("ROBUST-006", "ROBUST-018"),
    "SHOULD",
)
class BinaryClose(Behaviour):
    def binary_close_code(self) -> int | None:
        return CLOSE_UNSUPPORTED


@fault("error-not-json", 'Error frames are plain text "Error: ..." instead of JSON.', ("EVT-001",))
class ErrorNotJson(Behaviour):
    def error_frame(self, error: str) -> str:
        return f"Error: {error}"


@fault("created-no-tz", "The new event's created has no time zone.", ("SEND-012", "EVT-002"))
class CreatedNoTz(Behaviour):
    def created_timestamp(self, now: datetime, formatted: str) -> str:
        return now.strftime("%Y-%m-%dT%H:%M:%S.%f")


@fault(
    "userid-per-message",
    "The new event's user_id is a fresh uuid for every message.",
    ("SEND-004",),
)
class UseridPerMessage(Behaviour):
    def event_user_id(self, user: User) -> str:
        return str(uuid.uuid4())


@fault("fanout-cap", "Only the first 5 connections of a room get its events.", ("BCAST-003",))
class FanoutCap(Behaviour):
    def fanout_targets(
        self, targets: list[Conn], sender: Conn | None, action: Action
    ) -> list[Conn]:
        return super().fanout_targets(targets, sender, action)[:FANOUT_CAP]


# -- reconnection and restarts -------------------------------------------------------------------


@fault(
    "reconnect-refused",
    "A token whose connection dropped without a close handshake is refused afterwards.",
    ("RECON-003",),
    collateral={
        "RECON-005": "half the cycles drop without a close handshake, and the fault then refuses"
        " the token they share",
    },
)
class ReconnectRefused(Behaviour):
    def __init__(self) -> None:
        super().__init__()
        self._revoked: set[str] = set()

    def disconnected(self, token: str, close_code: int | None) -> None:
        if close_code == DROPPED:
            self._revoked.add(token)
        super().disconnected(token, close_code)

    def admission_refusal(self, user: User, token: str) -> str | None:
        if token in self._revoked:
            return "token of a dropped connection"
        return super().admission_refusal(user, token)


@fault(
    "owner-by-connection",
    "Authorship is checked by the connection that created a message, not by its user: an"
    " author who reconnected (or whose server restarted) can no longer edit or delete.",
    ("RECON-004", "RECON-006"),
)
class OwnerByConnection(Behaviour):
    def __init__(self) -> None:
        super().__init__()
        self._creators: dict[str, int] = {}

    def message_created(self, message: Message, conn: ServerConnection) -> None:
        self._creators[message.id] = id(conn)
        super().message_created(message, conn)

    def is_author(self, user: User, message: Message, conn: ServerConnection) -> bool:
        return self._creators.get(message.id) == id(conn) and super().is_author(user, message, conn)


@fault(
    "churn-leak",
    "The server stops accepting an account after 50 connections in its lifetime.",
    ("RECON-005",),
    collateral={
        "CONN-001": "the churn test runs first (it runs alone); the account it cycled is refused"
        " in every test after it",
    },
)
class ChurnLeak(Behaviour):
    def __init__(self) -> None:
        super().__init__()
        self._lifetime: Counter[str] = Counter()

    def admission_refusal(self, user: User, token: str) -> str | None:
        refusal = super().admission_refusal(user, token)
        if refusal is not None:
            return refusal
        if self._lifetime[user.id] >= CHURN_LIMIT:
            return "too many connections"
        self._lifetime[user.id] += 1
        return None


@fault("no-persist", "Messages are kept in memory only and lost on restart.", ("RECON-006",))
class NoPersist(Behaviour):
    def persists_messages(self) -> bool:
        return False


# -- delivery under load (protocol notes, "Deployed reality: latency, load, several nodes") -------


class LoadMeter:
    """Per connection, a sliding count of the events written to it within the last LOAD_WINDOW
    seconds: more than LOAD_EVENTS is "under load". Connections are held weakly."""

    def __init__(self) -> None:
        self._times: WeakKeyDictionary[ServerConnection, deque[float]] = WeakKeyDictionary()
        self._under_load: WeakKeyDictionary[ServerConnection, int] = WeakKeyDictionary()

    def strikes(self, conn: ServerConnection) -> bool:
        """Count one event written to ``conn``: whether it is the LOAD_EVERY-th written to it
        under load."""
        now = time.monotonic()
        times = self._times.get(conn)
        if times is None:
            times = self._times[conn] = deque()
        times.append(now)
        while times[0] <= now - LOAD_WINDOW:
            times.popleft()
        if len(times) <= LOAD_EVENTS:
            return False
        count = self._under_load[conn] = self._under_load.get(conn, 0) + 1
        return count % LOAD_EVERY == 0


@dataclass
class _Mailbox:
    """One connection's mailbox (drop-when-busy): events waiting for the next period, when the
    current period began, how many events were written in it, and the task draining it."""

    waiting: deque[tuple[str, str]] = field(default_factory=deque)
    period_start: float = float("-inf")
    written: int = 0
    drain: asyncio.Task[None] | None = None


@fault(
    "drop-when-busy",
    "Django Channels' channel layer: each connection takes at most 64 events per 200 ms, and a"
    " mailbox of 64 holds the next ones (a task per connection drains it in order every 200"
    " ms); an event for a full mailbox is dropped without a word, though the message is stored"
    " and the connection stays open.",
    ("LOAD-001",),
    collateral={
        "LOAD-002": "the lag test's events reach the room faster than 64 per 200 ms, so the"
        " mailboxes drop some of them silently, the lagging reader's included",
        "RECON-002": "its flood reaches the watcher faster than 64 events per 200 ms: the"
        " watcher's mailbox drops some of them",
    },
)
class DropWhenBusy(Behaviour):
    """A connection that gets fewer than 64 events per 200 ms (one that is not under load)
    never waits: its events are written at once, as by the correct server."""

    def __init__(self) -> None:
        super().__init__()
        self._mailboxes: WeakKeyDictionary[ServerConnection, _Mailbox] = WeakKeyDictionary()

    async def deliver(
        self, targets: list[Conn], text: str, sender: str, drop: Callable[[Conn], None]
    ) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        at_once: list[Conn] = []
        for conn in targets:
            box = self._mailboxes.get(conn)
            if box is None:
                box = self._mailboxes[conn] = _Mailbox()
            if now - box.period_start >= MAILBOX_PERIOD and not box.waiting:
                box.period_start, box.written = now, 0
            if not box.waiting and box.written < MAILBOX_CAPACITY:
                box.written += 1
                at_once.append(conn)
            elif len(box.waiting) < MAILBOX_CAPACITY:
                box.waiting.append((text, sender))
                if box.drain is None:
                    box.drain = asyncio.create_task(self._drain(conn, box, drop))
            # else: Channels' group_send drops on ChannelFull, and nobody hears of it
        await super().deliver(at_once, text, sender, drop)

    async def _drain(self, conn: Conn, box: _Mailbox, drop: Callable[[Conn], None]) -> None:
        """Every MAILBOX_PERIOD, write up to MAILBOX_CAPACITY waiting events, in order."""
        loop = asyncio.get_running_loop()
        try:
            while box.waiting:
                await asyncio.sleep(box.period_start + MAILBOX_PERIOD - loop.time())
                box.period_start, box.written = loop.time(), 0
                while box.waiting and box.written < MAILBOX_CAPACITY:
                    text, sender = box.waiting.popleft()
                    box.written += 1
                    await super().deliver([conn], text, sender, drop)
        finally:
            box.drain = None


@fault(
    "duplicate-under-load",
    "Under load (more than 50 events written to a connection within a second), every 10th"
    " event written to that connection is written twice.",
    ("LOAD-001",),
)
class DuplicateUnderLoad(Behaviour):
    def __init__(self) -> None:
        super().__init__()
        self._load = LoadMeter()

    async def deliver(
        self, targets: list[Conn], text: str, sender: str, drop: Callable[[Conn], None]
    ) -> None:
        await super().deliver(targets, text, sender, drop)
        again = [conn for conn in targets if self._load.strikes(conn)]
        if again:
            await super().deliver(again, text, sender, drop)


@dataclass
class _Held:
    """An event held back from one connection: its text, its sender, the timer releasing it."""

    text: str
    sender: str
    timer: asyncio.TimerHandle


@fault(
    "reorder-under-load",
    "Under load (more than 50 events written to a connection within a second), every 10th"
    " event written to that connection is held back and written right after the next event of"
    " the same sender to it (or after 50 ms if none comes): one sender's order breaks.",
    ("LOAD-003",),
    "SHOULD",
    collateral={
        "ROBUST-016": "the property test writes more than 50 events a second to its connection,"
        " so an event held back may arrive after the sentinel sent after it",
    },
)
class ReorderUnderLoad(Behaviour):
    """At most one event is held per connection; nothing is lost or written twice."""

    def __init__(self) -> None:
        super().__init__()
        self._load = LoadMeter()
        self._held: dict[ServerConnection, _Held] = {}

    async def deliver(
        self, targets: list[Conn], text: str, sender: str, drop: Callable[[Conn], None]
    ) -> None:
        loop = asyncio.get_running_loop()
        now: list[Conn] = []
        for conn in targets:
            if self._load.strikes(conn) and conn not in self._held:
                timer = loop.call_later(HOLD_SECONDS, self._release, conn)
                self._held[conn] = _Held(text, sender, timer)
            else:
                now.append(conn)
        await super().deliver(now, text, sender, drop)
        for conn in now:
            held = self._held.get(conn)
            if held is not None and held.sender == sender:
                held.timer.cancel()
                self._release(conn)

    def _release(self, conn: ServerConnection) -> None:
        held = self._held.pop(conn, None)
        if held is not None:
            write([conn], held.text)


def backlog(conn: ServerConnection) -> int:
    """Bytes written to ``conn`` that wait for its reader: the transport's write buffer and, on
    Linux, the socket's send queue that the peer's receive window does not let out yet
    (SIOCOUTQNSD). The kernel grows a socket's send buffer to megabytes (net.ipv4.tcp_wmem), so
    a reader that stops reading fills that queue long before the transport's buffer holds
    anything; a reader that reads keeps its window open and that queue empty."""
    pending = conn.transport.get_write_buffer_size()
    sock = conn.transport.get_extra_info("socket")
    fd = -1 if sock is None else sock.fileno()  # -1 once closed
    if sys.platform == "linux" and fd >= 0:
        with suppress(OSError):
            (unsent,) = struct.unpack("i", fcntl.ioctl(fd, SIOCOUTQNSD, b"\0" * 4))
            pending += unsent
    return pending


@fault(
    "skip-lagging-reader",
    "An event for a connection with more than 64 KiB written and not yet taken by its reader (a"
    " reader that lags) is skipped silently; the connection stays open and gets the events"
    " again once its reader has caught up.",
    ("LOAD-002",),
    collateral={
        "RECON-002": "the flood (about 2.5 MB to each connection) outruns the watcher's reading,"
        " so its receive window closes and its events are skipped like a paused reader's",
        "LOAD-001": "a connection of the burst that reads more slowly than the server writes (a"
        " sender, on a busy machine) falls 64 KiB behind and is skipped too",
    },
)
class SkipLaggingReader(Behaviour):
    async def deliver(
        self, targets: list[Conn], text: str, sender: str, drop: Callable[[Conn], None]
    ) -> None:
        keep = [conn for conn in targets if backlog(conn) <= LAG_BYTES]
        await super().deliver(keep, text, sender, drop)


# -- several nodes (a cluster on a broker; alone, these change nothing) --------------------------


@fault(
    "fanout-one-node",
    "A node delivers the events of the frames it handles to its own connections only (a"
    " worker with its own in-memory channel layer): it publishes nothing to the broker.",
    ("NODE-001",),
    collateral={
        "SEND-003": "the harness spreads a test's connections over the nodes, so the room's"
        " other connections miss events whenever they sit on another node than the sender",
        "BCAST-001": "the account's second connection sits on the other node and misses the"
        " events of frames handled by the first node",
        "LOAD-001": "the burst's connections sit on both nodes: each misses the events of the"
        " senders on the other node",
        "LOAD-002": "the lag test's connections sit on both nodes: the lagging reader misses"
        " the events of frames handled by the other node",
    },
)
class FanoutOneNode(Behaviour):
    def publishes_events(self) -> bool:
        return False


@fault(
    "errors-cross-nodes",
    "Error frames are also published to the broker, and the other nodes deliver them to all"
    " their connections of the room (the sender's node answers the sender only).",
    ("NODE-002",),
    collateral={
        "ERR-001": "the harness spreads a test's connections over the nodes: the room's other"
        " connection on another node gets the sender's error",
        "ERR-002": "likewise, the same account's other connection on another node gets the error",
    },
)
class ErrorsCrossNodes(Behaviour):
    def publishes_errors(self) -> bool:
        return True


@fault(
    "rooms-mixed-across-nodes",
    "A node delivers another node's events to its connections of every room of the same host"
    " (a channel named after the host, not the room); its own events go to their room only.",
    ("NODE-003",),
    collateral={
        "ISO-001": "the harness spreads a test's connections over the nodes: the other room's"
        " connection on another node gets the first room's events",
    },
)
class RoomsMixedAcrossNodes(Behaviour):
    def received_room_ids(self, store: Store, room_id: str, from_this_node: bool) -> list[str]:
        rooms = super().received_room_ids(store, room_id, from_this_node)
        if from_this_node:
            return rooms
        return [*rooms, *(other for other in store.sibling_room_ids(room_id) if other not in rooms)]


# -- found only by sequences ---------------------------------------------------------------------
#
# Each strikes only after a sequence of steps (an edit then a delete, a close then a reconnect):
# no single exchange of the other suites sets it up. See ``Fault.sequence``.


@fault(
    "resurrect-edited",
    "An edit of a deleted message that had been edited before its delete is served: its"
    " `update` event is broadcast (the message comes back) instead of `Message not found.`;"
    " a deleted message never edited is still not found.",
    ("EDIT-009",),
    sequence=True,
)
class ResurrectEdited(Behaviour):
    """The edit path looks messages up in a cache of the ones it edited, which a delete does
    not invalidate. Deletes and the store are unaffected: the message stays deleted there."""

    def __init__(self) -> None:
        super().__init__()
        self._edited: dict[str, Message] = {}

    def may_edit(self, user: User, message: Message, room: Room, conn: ServerConnection) -> bool:
        allowed = super().may_edit(user, message, room, conn)
        if allowed:  # the edit is served: the cache keeps the message
            self._edited[message.id] = message
        return allowed

    def missing_message(
        self, store: Store, message_id: str, action: Action, conn: ServerConnection
    ) -> Message | None:
        if action == "update" and message_id in self._edited:
            return self._edited[message_id]
        return super().missing_message(store, message_id, action, conn)


@fault(
    "undelete-on-reconnect",
    "A delete is forgotten once the connection that made it closed: a later delete of that"
    " message by its author, on a connection opened after that close, is served again (a"
    " second `delete` event) instead of `Message not found.`; edits of it are still not found.",
    ("DEL-006",),
    sequence=True,
)
class UndeleteOnReconnect(Behaviour):
    """Deletes are remembered per connection (a tombstone in the deleting connection's state),
    and only the delete path consults them."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = itertools.count()
        self._opened: dict[ServerConnection, tuple[int, str]] = {}  # open: (when, user id)
        self._tombstones: dict[ServerConnection, dict[str, Message]] = {}
        self._forgotten: dict[str, tuple[Message, int]] = {}  # id -> (message, when closed)

    def joined(self, conn: ServerConnection, user: User, room: Room) -> None:
        self._opened[conn] = (next(self._clock), user.id)
        super().joined(conn, user, room)

    def left(self, conn: ServerConnection, user: User, room: Room) -> None:
        self._opened.pop(conn, None)
        closed = next(self._clock)
        for message in self._tombstones.pop(conn, {}).values():
            self._forgotten[message.id] = (message, closed)
        super().left(conn, user, room)

    def may_delete(self, user: User, message: Message, room: Room, conn: ServerConnection) -> bool:
        allowed = super().may_delete(user, message, room, conn)
        if allowed:  # the delete is served: this connection holds its tombstone
            self._forgotten.pop(message.id, None)
            self._tombstones.setdefault(conn, {})[message.id] = message
        return allowed

    def missing_message(
        self, store: Store, message_id: str, action: Action, conn: ServerConnection
    ) -> Message | None:
        forgotten = self._forgotten.get(message_id)
        opened = self._opened.get(conn)
        if action == "delete" and forgotten is not None and opened is not None:
            message, closed = forgotten
            when, user_id = opened
            if when > closed and user_id == message.user_id:
                return message
        return super().missing_message(store, message_id, action, conn)


@fault(
    "update-follows-reconnect",
    "The messages of a connection that closed move with its account's next connection (a"
    " reconnection, to whichever room): until the account opens another one, the `update`"
    " events of its edits of those messages go to the room it reconnected to instead of the"
    " message's room.",
    ("ISO-006",),
    collateral={
        "EDIT-003": "the update event goes to the other room, so the message's own room misses it",
    },
    sequence=True,
)
class UpdateFollowsReconnect(Behaviour):
    """A session-affine server: a message belongs to the connection that sent it; when that
    connection closes, its messages pass to the account's next connection, and the edit path
    publishes to the room of the connection a message belongs to. The room is the reconnection's
    only while that is the account's newest connection. Before any reconnection, and for new
    and delete events, the message's room gets its events."""

    def __init__(self) -> None:
        super().__init__()
        self._sent: dict[ServerConnection, list[str]] = {}  # open connection -> its messages
        self._orphans: dict[str, list[str]] = {}  # account -> messages of its closed ones
        self._home: dict[str, tuple[ServerConnection, str]] = {}  # message -> (conn, room)
        self._newest: dict[str, ServerConnection] = {}  # account -> its newest connection

    def message_created(self, message: Message, conn: ServerConnection) -> None:
        self._sent.setdefault(conn, []).append(message.id)
        super().message_created(message, conn)

    def joined(self, conn: ServerConnection, user: User, room: Room) -> None:
        for message_id in self._orphans.pop(user.id, []):
            self._home[message_id] = (conn, room.id)
        self._newest[user.id] = conn
        super().joined(conn, user, room)

    def left(self, conn: ServerConnection, user: User, room: Room) -> None:
        self._orphans.setdefault(user.id, []).extend(self._sent.pop(conn, []))
        super().left(conn, user, room)

    def event_room_id(self, message: Message, user: User, action: Action) -> str:
        room_id = super().event_room_id(message, user, action)
        home = self._home.get(message.id)
        if action == "update" and home is not None and self._newest.get(user.id) is home[0]:
            return home[1]
        return room_id


@fault(
    "twin-misses-edits",
    "A connection opened while another connection of the same account is open in the same"
    " room gets no `update` events of the edits that account sends on its other connections;"
    " `new` and `delete` events, its own edits' and other accounts' reach it.",
    ("BCAST-001",),
    collateral={"EDIT-003": "the update event misses a connection of the room"},
    sequence=True,
)
class TwinMissesEdits(Behaviour):
    """A server that assumes an account's client already shows the account's own edits, and
    skips its later connections in a room (its twins there) for them."""

    def __init__(self) -> None:
        super().__init__()
        self._accounts: dict[ServerConnection, str] = {}  # open connection -> its account
        self._open: dict[tuple[str, str], set[ServerConnection]] = {}  # (user, room) -> open
        self._twins: set[ServerConnection] = set()

    def joined(self, conn: ServerConnection, user: User, room: Room) -> None:
        self._accounts[conn] = user.id
        present = self._open.setdefault((user.id, room.id), set())
        if present:
            self._twins.add(conn)
        present.add(conn)
        super().joined(conn, user, room)

    def left(self, conn: ServerConnection, user: User, room: Room) -> None:
        self._accounts.pop(conn, None)
        key = (user.id, room.id)
        present = self._open.get(key, set())
        present.discard(conn)
        if not present:
            self._open.pop(key, None)
        self._twins.discard(conn)
        super().left(conn, user, room)

    def fanout_targets(
        self, targets: list[Conn], sender: Conn | None, action: Action
    ) -> list[Conn]:
        editor = None if sender is None else self._accounts.get(sender)
        if action == "update" and editor is not None:
            targets = [
                conn
                for conn in targets
                if conn is sender or conn not in self._twins or self._accounts.get(conn) != editor
            ]
        return super().fanout_targets(targets, sender, action)


@fault(
    "replay-after-vanish",
    "When the connection that last edited a message vanishes (closed without a close"
    " handshake), the message's next `update` event is written twice, back to back, to every"
    " connection of the room.",
    ("CONV-001",),
    sequence=True,
)
class ReplayAfterVanish(Behaviour):
    """A server that resends an edit it believes unacknowledged: the edits of a client that
    vanished are replayed once with the next change to the message. The state is the
    message's own, so it never reaches a message another test (or sequence) touches."""

    def __init__(self) -> None:
        super().__init__()
        self._editor: dict[str, ServerConnection] = {}  # message -> its last editor
        self._resend: set[str] = set()  # messages whose next update is written twice

    def may_edit(self, user: User, message: Message, room: Room, conn: ServerConnection) -> bool:
        allowed = super().may_edit(user, message, room, conn)
        if allowed:
            self._editor[message.id] = conn
        return allowed

    def left(self, conn: ServerConnection, user: User, room: Room) -> None:
        if conn.protocol.close_rcvd is None:  # vanished: no close frame from the client
            edited = [mid for mid, editor in self._editor.items() if editor is conn]
            self._resend.update(edited)
        for mid in [mid for mid, editor in self._editor.items() if editor is conn]:
            del self._editor[mid]
        super().left(conn, user, room)

    async def deliver(
        self, targets: list[Conn], text: str, sender: str, drop: Callable[[Conn], None]
    ) -> None:
        await super().deliver(targets, text, sender, drop)
        if not self._resend:
            return
        event = json.loads(text)
        if not isinstance(event, dict) or event.get("action") != "update":
            return
        message_id = str(event.get("id"))
        if message_id in self._resend:
            self._resend.discard(message_id)
            await super().deliver(targets, text, sender, drop)


def fault_table() -> str:
    """The registry as a plain-text table: name, level, requirements, description."""
    rows = [("name", "level", "requirements", "description")]
    rows += [(f.name, f.level, ",".join(f.requirements), f.description) for f in FAULTS.values()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    )
