"""Store: users, rooms, participants, messages, persistence."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from reference_server.demo import DEMO_USERS, demo_room_id, demo_user_id, seed_demo
from reference_server.store import BUSY_TIMEOUT_MS, DatabaseError, Message, Store


def _message(store: Store, room_id: str, user_id: str, mid: str, body: str = "hi") -> Message:
    stamp = "2024-01-01T12:00:00.000000Z"
    message = Message(mid, room_id, user_id, body, stamp, stamp, False)
    store.add_message(message)
    return message


def test_user_is_found_by_id_username_and_email() -> None:
    store = Store()
    user = store.add_user("erin", "erin@example.test", "avatars/erin.png")
    assert store.user("id", user.id) == user
    assert store.user("username", "erin") == user
    assert store.user("email", "erin@example.test") == user
    assert store.user("username", "nobody") is None
    assert user.avatar == "avatars/erin.png"


def test_adding_an_existing_username_returns_the_existing_user() -> None:
    store = Store()
    first = store.add_user("erin", "a@example.test")
    again = store.add_user("erin", "b@example.test")
    assert again == first


def test_usernames_are_unique_in_the_schema() -> None:
    store = Store()
    store.add_user("erin")
    with pytest.raises(sqlite3.IntegrityError):
        store._db.execute("INSERT INTO users (id, username) VALUES ('x', 'erin')")


def test_room_is_found_by_host_username_and_slug_only() -> None:
    store = Store()
    host = store.add_user("erin")
    other = store.add_user("frank")
    room = store.add_room(host, "lobby")
    assert store.room("erin", "lobby") == room
    assert store.room("frank", "lobby") is None
    assert store.add_room(other, "lobby").id != room.id  # same slug, other host: another room
    assert store.add_room(host, "lobby").id == room.id  # host + slug is unique


def test_host_and_listed_users_are_participants() -> None:
    store = Store()
    host, member, outsider = (store.add_user(n) for n in ("erin", "frank", "gina"))
    room = store.add_room(host, "lobby", [member])
    assert store.is_participant(room.id, host.id)
    assert store.is_participant(room.id, member.id)
    assert not store.is_participant(room.id, outsider.id)
    assert store.participants(room.id) == ["erin", "frank"]


def test_sibling_rooms_are_the_rooms_of_the_same_host() -> None:
    store = Store()
    erin, frank = store.add_user("erin"), store.add_user("frank")
    a, b = store.add_room(erin, "a"), store.add_room(erin, "b")
    store.add_room(frank, "c")
    assert sorted(store.sibling_room_ids(a.id)) == sorted([a.id, b.id])


def test_message_can_be_added_edited_and_deleted() -> None:
    store = Store()
    user = store.add_user("erin")
    room = store.add_room(user, "lobby")
    message = _message(store, room.id, user.id, "m1")
    assert store.message("m1") == message
    store.edit_message("m1", "changed", "2024-01-01T12:01:00.000000Z")
    edited = store.message("m1")
    assert edited is not None
    assert (edited.body, edited.edited, edited.updated) == (
        "changed",
        True,
        "2024-01-01T12:01:00.000000Z",
    )
    assert store.messages(room.id) == [edited]
    assert store.delete_message("m1")
    assert store.message("m1") is None
    assert not store.delete_message("m1")


def test_max_message_rowid_grows_with_messages() -> None:
    store = Store()
    user = store.add_user("erin")
    room = store.add_room(user, "lobby")
    assert store.max_message_rowid() == 0
    _message(store, room.id, user.id, "m1")
    _message(store, room.id, user.id, "m2")
    assert store.max_message_rowid() == 2


def test_messages_survive_reopening_the_file(tmp_path: Path) -> None:
    path = str(tmp_path / "chat.sqlite3")
    store = Store(path)
    user = store.add_user("erin")
    room = store.add_room(user, "lobby")
    message = _message(store, room.id, user.id, "m1", "kept")
    store.close()
    reopened = Store(path)
    assert reopened.message("m1") == message
    reopened.close()


def test_messages_kept_in_memory_only_are_lost_on_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "chat.sqlite3")
    store = Store(path, persist_messages=False)
    user = store.add_user("erin")
    room = store.add_room(user, "lobby")
    _message(store, room.id, user.id, "m1")
    assert store.message("m1") is not None
    store.close()
    reopened = Store(path, persist_messages=False)
    assert reopened.message("m1") is None
    assert reopened.user("username", "erin") is not None  # users and rooms still persist
    reopened.close()


def test_demo_seed_is_idempotent_and_uses_fixed_ids() -> None:
    store = Store()
    seed_demo(store)
    seed_demo(store)
    for name in DEMO_USERS:
        user = store.user("username", name)
        assert user is not None
        assert user.id == demo_user_id(name)
    general = store.room("alice", "general")
    assert general is not None
    assert general.id == demo_room_id("general")
    assert store.participants(general.id) == ["alice", "bob", "carol"]
    assert store.room("alice", "random") is not None


# -- one file, several processes (the nodes of a cluster) -----------------------------------------

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import sys
from reference_server.store import BUSY_TIMEOUT_MS, DatabaseError, Message, Store

path, who = sys.argv[1], sys.argv[2]
store = Store(path)
stamp = "2024-01-01T12:00:00.000000Z"
for i in range(150):
    mid = f"{who}-{i}"
    store.add_message(Message(mid, "room", who, "b", stamp, stamp, False))
    if i % 3 == 0:
        store.edit_message(mid, "edited", stamp)
    if i % 5 == 0:
        assert store.delete_message(mid)
store.close()
"""


def test_writers_in_several_processes_share_one_file(tmp_path: Path) -> None:
    """Four processes open a new file at once (tables, WAL) and write side by side: a writer
    that finds the lock taken waits for it (busy_timeout) instead of failing."""
    path = str(tmp_path / "shared.sqlite3")
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, path, f"w{k}"],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(4)
    ]
    try:
        for writer in writers:
            _, err = writer.communicate(timeout=60)
            assert writer.returncode == 0, err
    finally:
        for writer in writers:
            if writer.returncode is None:
                writer.kill()
                writer.wait()
    store = Store(path)
    messages = store.messages("room")
    store.close()
    assert len(messages) == 4 * 120
    assert sum(m.edited for m in messages) == 4 * 40  # i % 3 == 0 and i % 5 != 0


def test_a_write_waits_for_another_connections_lock(tmp_path: Path) -> None:
    path = str(tmp_path / "locked.sqlite3")
    store = Store(path)
    assert store._db.execute("PRAGMA busy_timeout").fetchone() == (BUSY_TIMEOUT_MS,)
    other = sqlite3.connect(path, isolation_level=None, timeout=0, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock, as another node's write would
    release = threading.Timer(0.3, other.execute, ["COMMIT"])
    release.start()
    try:
        user = store.add_user("erin")  # waits for the commit, then writes
    finally:
        release.join()
        other.close()
    assert store.user("id", user.id) == user
    store.close()


def test_a_database_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError) as info:
        Store(str(tmp_path / "no-such-dir" / "x.sqlite3"))
    assert "\n" not in str(info.value)
    assert "no-such-dir" in str(info.value)
