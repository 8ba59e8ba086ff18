"""SQLite storage: users, rooms, participants, messages.

Seed, "Connection Protocol": the consumer verifies that the room exists with the given host and
slug and that the user is a participant; messages are stored (seed sources: core/models.py), so
they survive a restart (RECON-006). Every statement is a fixed SQL string, so sqlite3's statement
cache prepares it once; the connection runs in autocommit mode with WAL and synchronous=NORMAL,
which keeps a message insert in the tens of microseconds without losing it on a process crash.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id       TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email    TEXT,
    avatar   TEXT
);
CREATE INDEX IF NOT EXISTS users_email ON users (email);
CREATE TABLE IF NOT EXISTS rooms (
    id      TEXT PRIMARY KEY,
    host_id TEXT NOT NULL REFERENCES users (id),
    slug    TEXT NOT NULL,
    UNIQUE (host_id, slug)
);
CREATE TABLE IF NOT EXISTS participants (
    room_id TEXT NOT NULL REFERENCES rooms (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
"""

_MESSAGES = """
CREATE {temp} TABLE IF NOT EXISTS messages (
    id      TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    body    TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    edited  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS {schema}messages_room ON messages (room_id, created);
"""

_USER_COLUMNS = "SELECT id, username, email, avatar FROM users WHERE "
_USER_BY: dict[str, str] = {
    "id": _USER_COLUMNS + "id = ?",
    "username": _USER_COLUMNS + "username = ?",
    "email": _USER_COLUMNS + "email = ? ORDER BY username LIMIT 1",
}

UserKey = Literal["id", "username", "email"]


@dataclass(frozen=True, slots=True)
class User:
    """An account. ``avatar`` is the path the seed's ``userAvatar`` carries, or None."""

    id: str
    username: str
    email: str | None
    avatar: str | None


@dataclass(frozen=True, slots=True)
class Room:
    """A room, named in URLs by its host's username and its slug."""

    id: str
    host_id: str
    host: str
    slug: str


@dataclass(frozen=True, slots=True)
class Message:
    """A stored message. Timestamps are RFC 3339 text, UTC, microseconds, ``Z``."""

    id: str
    room_id: str
    user_id: str
    body: str
    created: str
    updated: str
    edited: bool


class StoreError(ValueError):
    """A provisioning request names something that does not exist or already conflicts."""


class Store:
    """One SQLite connection. Not thread-safe: use it from the thread that made it.

    ``persist_messages=False`` keeps the messages in a TEMP table, which shadows the file's table
    and vanishes with the connection (the ``no-persist`` fault).
    """

    def __init__(self, path: str = ":memory:", *, persist_messages: bool = True) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA foreign_keys = ON")
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)
        if persist_messages:
            self._db.executescript(_MESSAGES.format(temp="", schema=""))
        else:
            self._db.executescript(_MESSAGES.format(temp="TEMP", schema="temp."))

    def close(self) -> None:
        """Close the connection (a WAL checkpoint happens here)."""
        self._db.close()

    # -- users -------------------------------------------------------------------------------

    def add_user(
        self,
        username: str,
        email: str | None = None,
        avatar: str | None = None,
        user_id: str | None = None,
    ) -> User:
        """Create a user, or return the existing one of that username unchanged."""
        existing = self.user("username", username)
        if existing is not None:
            return existing
        user = User(user_id or str(uuid.uuid4()), username, email, avatar)
        self._db.execute(
            "INSERT INTO users (id, username, email, avatar) VALUES (?, ?, ?, ?)",
            (user.id, user.username, user.email, user.avatar),
        )
        return user

    def user(self, key: UserKey, value: str) -> User | None:
        """Find a user by id, username or email."""
        row = self._db.execute(_USER_BY[key], (value,)).fetchone()
        return None if row is None else User(*row)

    # -- rooms -------------------------------------------------------------------------------

    def add_room(
        self,
        host: User,
        slug: str,
        participants: Iterable[User] = (),
        room_id: str | None = None,
    ) -> Room:
        """Create a room (or reuse host/slug) and make the host and ``participants`` members."""
        room = self.room(host.username, slug)
        if room is None:
            room = Room(room_id or str(uuid.uuid4()), host.id, host.username, slug)
            self._db.execute(
                "INSERT INTO rooms (id, host_id, slug) VALUES (?, ?, ?)",
                (room.id, host.id, slug),
            )
        for user in (host, *participants):
            self.add_participant(room, user)
        return room

    def room(self, host: str, slug: str) -> Room | None:
        """The room of host username ``host`` and slug ``slug``."""
        row = self._db.execute(
            "SELECT rooms.id, rooms.host_id, users.username, rooms.slug FROM rooms"
            " JOIN users ON users.id = rooms.host_id WHERE users.username = ? AND rooms.slug = ?",
            (host, slug),
        ).fetchone()
        return None if row is None else Room(*row)

    def sibling_room_ids(self, room_id: str) -> list[str]:
        """Ids of every room of the same host, ``room_id`` included."""
        rows = self._db.execute(
            "SELECT id FROM rooms WHERE host_id = (SELECT host_id FROM rooms WHERE id = ?)",
            (room_id,),
        ).fetchall()
        return [row[0] for row in rows]

    def add_participant(self, room: Room, user: User) -> None:
        """Make ``user`` a participant of ``room`` (idempotent)."""
        self._db.execute(
            "INSERT OR IGNORE INTO participants (room_id, user_id) VALUES (?, ?)",
            (room.id, user.id),
        )

    def is_participant(self, room_id: str, user_id: str) -> bool:
        """Whether the user is a participant of the room."""
        row = self._db.execute(
            "SELECT 1 FROM participants WHERE room_id = ? AND user_id = ?", (room_id, user_id)
        ).fetchone()
        return row is not None

    def participants(self, room_id: str) -> list[str]:
        """Usernames of the room's participants, sorted."""
        rows = self._db.execute(
            "SELECT users.username FROM participants JOIN users ON users.id = participants.user_id"
            " WHERE participants.room_id = ? ORDER BY users.username",
            (room_id,),
        ).fetchall()
        return [row[0] for row in rows]

    # -- messages ----------------------------------------------------------------------------

    def add_message(self, message: Message) -> None:
        """Insert a new message."""
        self._db.execute(
            "INSERT INTO messages (id, room_id, user_id, body, created, updated, edited)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                message.id,
                message.room_id,
                message.user_id,
                message.body,
                message.created,
                message.updated,
                message.edited,
            ),
        )

    def message(self, message_id: str) -> Message | None:
        """The message of that id, or None (deleted messages are gone)."""
        row = self._db.execute(
            "SELECT id, room_id, user_id, body, created, updated, edited FROM messages"
            " WHERE id = ?",
            (message_id,),
        ).fetchone()
        if row is None:
            return None
        return Message(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]))

    def edit_message(self, message_id: str, body: str, updated: str) -> None:
        """Replace the body, set ``updated`` and the edited flag."""
        self._db.execute(
            "UPDATE messages SET body = ?, updated = ?, edited = 1 WHERE id = ?",
            (body, updated, message_id),
        )

    def delete_message(self, message_id: str) -> bool:
        """Delete a message; False if there was none."""
        cursor = self._db.execute("DELETE FROM messages WHERE id = ?", (message_id,))
        return cursor.rowcount > 0

    def messages(self, room_id: str) -> list[Message]:
        """The room's messages, oldest first."""
        rows = self._db.execute(
            "SELECT id, room_id, user_id, body, created, updated, edited FROM messages"
            " WHERE room_id = ? ORDER BY created, rowid",
            (room_id,),
        ).fetchall()
        return [Message(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in rows]

    def max_message_rowid(self) -> int:
        """The highest rowid of the messages table (0 when empty)."""
        row = self._db.execute("SELECT coalesce(max(rowid), 0) FROM messages").fetchone()
        return int(row[0])
