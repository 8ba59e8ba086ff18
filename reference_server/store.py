"""Storage: users, rooms, participants, messages, in SQLite or PostgreSQL.

Seed, "Connection Protocol": the consumer verifies that the room exists with the given host and
slug and that the user is a participant; messages are stored (seed sources: core/models.py), so
they survive a restart (RECON-006). Every statement is a fixed SQL string, so sqlite3's statement
cache prepares it once; the connection runs in autocommit mode with WAL and synchronous=NORMAL,
which keeps a message insert in the tens of microseconds without losing it on a process crash.

Several nodes of a cluster share one database (protocol notes, "Several nodes"): a SQLite file
(WAL lets readers and one writer work side by side; a writer of another process that holds the
lock is waited for, up to ``BUSY_TIMEOUT_MS``), or PostgreSQL (``open_store`` picks
``PostgresStore`` for a ``postgresql://`` URL). Both answer the same methods.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import psycopg

BUSY_TIMEOUT_MS: Final = 5000
"""How long a SQLite write waits for another process's write lock before it fails."""
POSTGRES_SCHEMES: Final = ("postgresql", "postgres")
_SCHEMA_LOCK: Final = 0x65647573  # PostgreSQL advisory lock: one node creates the schema at once

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
){without_rowid};
"""

_MESSAGES = """
CREATE {temp} TABLE IF NOT EXISTS messages (
    {seq}
    id      TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    body    TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    edited  {boolean} NOT NULL DEFAULT {false}
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

    @property
    def path(self) -> str:
        """How URLs and logs name it: ``host/slug``."""
        return f"{self.host}/{self.slug}"


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


class DatabaseError(RuntimeError):
    """The database cannot be opened or reached; the message is one line, without password."""


class Store:
    """One SQLite connection. Not thread-safe: use it from the thread that made it.

    ``persist_messages=False`` keeps the messages in a TEMP table, which shadows the file's table
    and vanishes with the connection (the ``no-persist`` fault). The methods below speak SQL
    through ``_rows``, ``_one`` and ``_write`` with ``?`` placeholders, so ``PostgresStore``
    shares them.
    """

    _SEQ: ClassVar[str] = "rowid"
    """The column that numbers messages in insertion order."""

    def __init__(self, path: str = ":memory:", *, persist_messages: bool = True) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
            # First: every statement after it (WAL's switch included) waits for other processes.
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA foreign_keys = ON")
            if path not in (":memory:", ""):
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA.format(without_rowid=" WITHOUT ROWID"))
            temp, schema = ("", "") if persist_messages else ("TEMP", "temp.")
            self._db.executescript(
                _MESSAGES.format(temp=temp, schema=schema, seq="", boolean="INTEGER", false="0")
            )
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open the SQLite database {path}: {exc}") from None

    def close(self) -> None:
        """Close the connection (a WAL checkpoint happens here)."""
        self._db.close()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._db.execute(sql, params).fetchone()
        return row

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        return self._db.execute(sql, params).rowcount

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
        self._write(
            "INSERT INTO users (id, username, email, avatar) VALUES (?, ?, ?, ?)",
            (user.id, user.username, user.email, user.avatar),
        )
        return user

    def user(self, key: UserKey, value: str) -> User | None:
        """Find a user by id, username or email."""
        row = self._one(_USER_BY[key], (value,))
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
            self._write(
                "INSERT INTO rooms (id, host_id, slug) VALUES (?, ?, ?)", (room.id, host.id, slug)
            )
        for user in (host, *participants):
            self.add_participant(room, user)
        return room

    def room(self, host: str, slug: str) -> Room | None:
        """The room of host username ``host`` and slug ``slug``."""
        row = self._one(
            "SELECT rooms.id, rooms.host_id, users.username, rooms.slug FROM rooms"
            " JOIN users ON users.id = rooms.host_id WHERE users.username = ? AND rooms.slug = ?",
            (host, slug),
        )
        return None if row is None else Room(*row)

    def sibling_room_ids(self, room_id: str) -> list[str]:
        """Ids of every room of the same host, ``room_id`` included."""
        rows = self._rows(
            "SELECT id FROM rooms WHERE host_id = (SELECT host_id FROM rooms WHERE id = ?)",
            (room_id,),
        )
        return [row[0] for row in rows]

    def same_slug_room_ids(self, room_id: str) -> list[str]:
        """Ids of every room with the same slug as ``room_id``, whatever its host, ``room_id``
        included (rooms are unique by host and slug, so two hosts may share a slug)."""
        rows = self._rows(
            "SELECT id FROM rooms WHERE slug = (SELECT slug FROM rooms WHERE id = ?) ORDER BY id",
            (room_id,),
        )
        return [row[0] for row in rows]

    def add_participant(self, room: Room, user: User) -> None:
        """Make ``user`` a participant of ``room`` (idempotent)."""
        self._write(
            "INSERT INTO participants (room_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (room.id, user.id),
        )

    def is_participant(self, room_id: str, user_id: str) -> bool:
        """Whether the user is a participant of the room."""
        row = self._one(
            "SELECT 1 FROM participants WHERE room_id = ? AND user_id = ?", (room_id, user_id)
        )
        return row is not None

    def participants(self, room_id: str) -> list[str]:
        """Usernames of the room's participants, sorted."""
        rows = self._rows(
            "SELECT users.username FROM participants JOIN users ON users.id = participants.user_id"
            " WHERE participants.room_id = ? ORDER BY users.username",
            (room_id,),
        )
        return [row[0] for row in rows]

    # -- messages ----------------------------------------------------------------------------

    def add_message(self, message: Message) -> None:
        """Insert a new message."""
        self._write(
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
        row = self._one(
            "SELECT id, room_id, user_id, body, created, updated, edited FROM messages"
            " WHERE id = ?",
            (message_id,),
        )
        if row is None:
            return None
        return Message(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]))

    def edit_message(self, message_id: str, body: str, updated: str) -> None:
        """Replace the body, set ``updated`` and the edited flag."""
        self._write(
            "UPDATE messages SET body = ?, updated = ?, edited = ? WHERE id = ?",
            (body, updated, True, message_id),
        )

    def delete_message(self, message_id: str) -> bool:
        """Delete a message; False if there was none."""
        return self._write("DELETE FROM messages WHERE id = ?", (message_id,)) > 0

    def messages(self, room_id: str) -> list[Message]:
        """The room's messages, oldest first."""
        rows = self._rows(
            "SELECT id, room_id, user_id, body, created, updated, edited FROM messages"
            f" WHERE room_id = ? ORDER BY created, {self._SEQ}",
            (room_id,),
        )
        return [Message(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in rows]

    def recent_messages(self, room_id: str, limit: int) -> list[Message]:
        """The room's ``limit`` most recent messages, oldest first (deleted ones are gone)."""
        rows = self._rows(
            "SELECT id, room_id, user_id, body, created, updated, edited FROM messages"
            f" WHERE room_id = ? ORDER BY created DESC, {self._SEQ} DESC LIMIT ?",
            (room_id, limit),
        )
        return [Message(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in reversed(rows)]

    def max_message_rowid(self) -> int:
        """The highest number of the messages in insertion order (0 when there are none)."""
        row = self._one(f"SELECT coalesce(max({self._SEQ}), 0) FROM messages")
        return 0 if row is None else int(row[0])


class PostgresStore(Store):
    """One PostgreSQL connection (psycopg, autocommit), with the methods of ``Store``.

    ``url`` is a libpq URL, ``postgresql://USER:PASSWORD@HOST:PORT/DBNAME``. Messages are
    numbered by a ``bigserial`` column; ``persist_messages=False`` keeps them in a TEMP table,
    which shadows the permanent one for this connection only, as in SQLite.
    """

    _SEQ: ClassVar[str] = "seq"

    def __init__(self, url: str, *, persist_messages: bool = True) -> None:
        import psycopg  # here: only a PostgreSQL store pays for the import

        self.path = url
        self._sql: dict[str, str] = {}
        try:
            self._pg: psycopg.Connection[tuple[Any, ...]] = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise DatabaseError(
                f"cannot connect to PostgreSQL at {_where(url)}: {_first_line(exc)}"
            ) from None
        temp = "" if persist_messages else "TEMP"
        with self._pg.transaction():  # nodes starting together: one creates the tables
            self._pg.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            self._pg.execute(_SCHEMA.format(without_rowid=""))
            self._pg.execute(
                _MESSAGES.format(
                    temp=temp, schema="", seq="seq BIGSERIAL,", boolean="BOOLEAN", false="FALSE"
                )
            )

    def close(self) -> None:
        """Close the connection."""
        self._pg.close()

    def _statement(self, sql: str) -> str:
        """``sql`` with psycopg's ``%s`` placeholders for ``?``, converted once."""
        converted = self._sql.get(sql)
        if converted is None:
            converted = self._sql[sql] = sql.replace("?", "%s")
        return converted

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._pg.execute(self._statement(sql), params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        return self._pg.execute(self._statement(sql), params).fetchone()

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._pg.execute(self._statement(sql), params).rowcount


def is_postgres_url(database: str) -> bool:
    """Whether ``database`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return urlsplit(database).scheme in POSTGRES_SCHEMES


def open_store(database: str, *, persist_messages: bool = True) -> Store:
    """The store of ``database``: a PostgreSQL URL, or a SQLite file (``:memory:``: none)."""
    if is_postgres_url(database):
        return PostgresStore(database, persist_messages=persist_messages)
    return Store(database, persist_messages=persist_messages)


def _where(url: str) -> str:
    """HOST:PORT/DBNAME of a PostgreSQL URL, without user or password."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.hostname or 'localhost'}:{port or 5432}{parts.path or '/'}"


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message."""
    return next(
        (line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__
    )
