"""The PostgreSQL store: the same answers as the SQLite one, a server and a cluster on it.

Runs against a real PostgreSQL started for the session (``postgres_server_url``); skipped, with
the reason, only where PostgreSQL is not installed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from refserver_support import TIMEOUT, client, run

from reference_server.cli import main
from reference_server.demo import demo_config, demo_room_id
from reference_server.runner import ClusterProcess, ServerThread, free_port
from reference_server.store import (
    DatabaseError,
    Message,
    PostgresStore,
    Store,
    is_postgres_url,
    open_store,
)

STAMP = "2024-01-01T12:00:00.000000Z"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store of each kind: what one answers, the other answers too."""
    database = str(tmp_path / "s.sqlite3")
    if request.param == "postgresql":
        database = request.getfixturevalue("postgres_url")
    opened = open_store(database)
    yield opened
    opened.close()


def _message(store: Store, room_id: str, user_id: str, mid: str, created: str = STAMP) -> Message:
    message = Message(mid, room_id, user_id, "hi", created, created, False)
    store.add_message(message)
    return message


def test_open_store_picks_postgresql_for_its_urls(postgres_url: str) -> None:
    assert is_postgres_url(postgres_url)
    assert is_postgres_url(postgres_url.replace("postgresql://", "postgres://"))
    assert not is_postgres_url("chat.sqlite3")
    opened = open_store(postgres_url.replace("postgresql://", "postgres://"))
    assert isinstance(opened, PostgresStore)
    opened.close()


def test_users_rooms_and_participants(store: Store) -> None:
    erin = store.add_user("erin", "erin@example.test", "avatars/erin.png")
    assert store.add_user("erin", "other@example.test") == erin
    assert store.user("id", erin.id) == store.user("email", "erin@example.test") == erin
    assert store.user("username", "nobody") is None
    frank, gina = store.add_user("frank"), store.add_user("gina")
    lobby = store.add_room(erin, "lobby", [frank])
    assert store.add_room(erin, "lobby", [frank]) == lobby  # idempotent, participants too
    side = store.add_room(erin, "side")
    assert store.room("erin", "lobby") == lobby
    assert store.room("frank", "lobby") is None
    assert store.participants(lobby.id) == ["erin", "frank"]
    assert store.is_participant(lobby.id, frank.id)
    assert not store.is_participant(lobby.id, gina.id)
    assert sorted(store.sibling_room_ids(lobby.id)) == sorted([lobby.id, side.id])


def test_messages_are_added_ordered_edited_and_deleted(store: Store) -> None:
    user = store.add_user("erin")
    room = store.add_room(user, "lobby")
    assert store.max_message_rowid() == 0
    second = _message(store, room.id, user.id, "m2", "2024-01-01T12:00:01.000000Z")
    first = _message(store, room.id, user.id, "m1")
    twin = _message(store, room.id, user.id, "m3", "2024-01-01T12:00:01.000000Z")
    assert store.messages(room.id) == [first, second, twin]  # by created, then insertion
    assert store.max_message_rowid() == 3
    store.edit_message("m1", "changed", STAMP)
    assert store.message("m1") == Message("m1", room.id, user.id, "changed", STAMP, STAMP, True)
    assert store.delete_message("m1")
    assert not store.delete_message("m1")
    assert store.message("m1") is None


def test_messages_kept_in_memory_only_are_this_connections(postgres_url: str) -> None:
    """``no-persist`` on PostgreSQL: a TEMP table that shadows the permanent one."""
    durable = open_store(postgres_url)
    user = durable.add_user("erin")
    room = durable.add_room(user, "lobby")
    passing = open_store(postgres_url, persist_messages=False)
    _message(passing, room.id, user.id, "m1")
    assert passing.message("m1") is not None
    assert durable.message("m1") is None
    passing.close()
    again = open_store(postgres_url, persist_messages=False)
    assert again.message("m1") is None
    assert again.user("username", "erin") == user  # users and rooms persist
    again.close()
    durable.close()


def test_an_unreachable_postgresql_is_one_line_without_its_password() -> None:
    with pytest.raises(DatabaseError) as info:
        open_store(f"postgresql://edu:hunter2@127.0.0.1:{free_port()}/chat")
    message = str(info.value)
    assert message.startswith("cannot connect to PostgreSQL at 127.0.0.1:")
    assert "/chat" in message
    assert "hunter2" not in message
    assert "\n" not in message


def test_serve_on_postgresql_keeps_messages_across_a_restart(postgres_url: str) -> None:
    async def send(url: str) -> str:
        async with client(url, "bob") as bob:
            created = await bob.say("kept in postgres")
            return str(created["id"])

    async def delete(url: str, message_id: str) -> object:
        async with client(url, "bob") as bob:
            await bob.send({"type": "delete", "messageId": message_id})
            return await bob.recv()

    with ServerThread(demo_config(database=postgres_url)) as srv:
        message_id = run(send(srv.url_template))
        srv.restart()
        frame = run(delete(srv.url_template, message_id))
    assert frame == {"type": "chat_message", "action": "delete", "id": message_id}


def test_provision_writes_to_postgresql(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["provision", "--db", postgres_url, "--user", "erin", "--user", "frank"]
    assert main([*argv, "--room", "erin/lobby:frank"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rooms"]["erin/lobby"]["participants"] == ["erin", "frank"]
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (2,)


def test_a_cluster_shares_one_postgresql_database(postgres_url: str, redis_url: str) -> None:
    """The parent seeds the demo data once; a message sent on node 1 is deleted through
    node 2."""

    async def scenario(urls: list[str]) -> None:
        async with client(urls[0], "bob") as first, client(urls[1], "bob") as second:
            created = await first.say("on node 1")
            await second.send({"type": "delete", "messageId": created["id"]})
            await first.expect(lambda f: f.get("action") == "delete" and f["id"] == created["id"])

    with ClusterProcess(["--demo", "--db", postgres_url], nodes=2, broker=redis_url) as cluster:
        run(scenario(cluster.urls), timeout=10 * TIMEOUT)
    assert cluster.returncode == 0
    seeded = open_store(postgres_url)
    room = seeded.room("alice", "general")
    seeded.close()
    assert room is not None
    assert room.id == demo_room_id("general")
