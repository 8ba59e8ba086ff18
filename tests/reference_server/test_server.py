"""The server over real sockets: events, errors, rules, isolation, robustness, restarts."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from refserver_support import TIMEOUT, client, is_error, is_new, refusal, room_url, run
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from reference_server.demo import demo_config, demo_user_id
from reference_server.runner import ServerThread

EMOJI = "\U0001f600"
NEW_KEYS = {"type", "action", "id", "user", "user_id", "body", "created", "edited", "updated"}


def nonce(label: str = "m") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert moment.utcoffset() is not None
    return moment


# -- connection -----------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["alice", "bob", "carol"])
@pytest.mark.parametrize("room", ["general", "random"])
def test_host_and_participants_are_accepted_to_both_rooms(
    server: ServerThread, user: str, room: str
) -> None:
    assert run(refusal(client(server.url_template, user, room))) == "open"


@pytest.mark.parametrize(
    ("user", "room", "host"),
    [
        ("dave", "general", "alice"),  # not a participant
        ("bob", "no-such-room-7f3a", "alice"),  # no such room
        ("bob", "general", "bob"),  # existing slug, wrong host
        ("bob", "general", "nobody"),  # no such host
    ],
)
def test_refused_connections_get_403(server: ServerThread, user: str, room: str, host: str) -> None:
    assert run(refusal(client(server.url_template, user, room, host))) == "http 403"


@pytest.mark.parametrize(
    "path", ["/", "/ws/chat/alice", "/ws/chat/alice/", "/ws/chat/alice/general/x", "/chat/a/b"]
)
def test_unknown_paths_get_404(server: ServerThread, path: str) -> None:
    url = f"ws://127.0.0.1:{server.port}{path}"
    assert run(refusal(connect(url, proxy=None, open_timeout=TIMEOUT))) == "http 404"


@pytest.mark.parametrize(
    ("setting", "served", "refused"),
    [("both", ["", "/"], []), ("with", ["/"], [""]), ("without", [""], ["/"])],
)
def test_trailing_slash_setting_decides_which_forms_are_served(
    make_server: Callable[..., ServerThread], setting: str, served: list[str], refused: list[str]
) -> None:
    srv = make_server(trailing_slash=setting)
    for suffix in served:
        assert run(refusal(client(srv.url_template, suffix=suffix))) == "open"
    for suffix in refused:
        assert run(refusal(client(srv.url_template, suffix=suffix))) == "http 404"


# -- sending --------------------------------------------------------------------------------------


def test_new_event_reaches_everyone_with_the_documented_fields(server: ServerThread) -> None:
    async def scenario() -> None:
        url = server.url_template
        async with client(url, "bob") as bob, client(url, "alice") as alice:
            body = nonce("hello")
            event = await bob.say(body, timestamp="2024-01-01T12:00:00.000Z")
            assert await alice.expect(lambda f: is_new(f, body)) == event
            assert NEW_KEYS | {"userAvatar"} == set(event)
            assert event["type"] == "chat_message"
            assert (event["user"], event["user_id"]) == ("bob", demo_user_id("bob"))
            assert event["edited"] is False
            assert event["userAvatar"] == "avatars/bob.jpg"
            uuid.UUID(event["id"])
            assert event["created"].endswith("Z")
            assert parse_time(event["created"]) == parse_time(event["updated"])

    run(scenario())


def test_user_without_avatar_gets_null(server: ServerThread) -> None:
    async def scenario() -> None:
        async with client(server.url_template, "carol") as carol:
            event = await carol.say(nonce())
            assert event["userAvatar"] is None

    run(scenario())


def test_every_connection_of_the_same_account_gets_events(server: ServerThread) -> None:
    async def scenario() -> None:
        url = server.url_template
        async with client(url, "bob") as one, client(url, "bob") as two:
            body = nonce()
            event = await one.say(body)
            assert await two.expect(lambda f: is_new(f, body)) == event

    run(scenario())


def test_unicode_bodies_and_the_limit_in_code_points(server: ServerThread) -> None:
    async def scenario() -> None:
        async with client(server.url_template, "bob") as bob:
            for body in [
                EMOJI * 500,
                "a" * 500,
                "  Привет <b>&amp;</b> e\u0301 \u05e9\u05dc\u05d5\u05dd  ",
            ]:
                assert (await bob.say(body))["body"] == body
            await bob.send({"type": "text", "message": EMOJI * 501})
            assert await bob.error() == {"error": "Message exceeds 500 characters."}

    run(scenario())


def test_ids_are_unique_and_events_keep_the_senders_order(server: ServerThread) -> None:
    async def scenario() -> None:
        url = server.url_template
        async with client(url, "bob") as bob, client(url, "carol") as carol:
            bodies = [nonce(str(i)) for i in range(20)]
            for body in bodies:
                await bob.send({"type": "text", "message": body})
            seen = await carol.until(lambda f: is_new(f, bodies[-1]))
            mine = [f for f in seen if isinstance(f, dict) and f.get("body") in bodies]
            assert [f["body"] for f in mine] == bodies
            assert len({f["id"] for f in mine}) == len(bodies)

    run(scenario())


# -- editing and deleting -------------------------------------------------------------------------


def test_author_edits_and_everyone_sees_the_update(server: ServerThread) -> None:
    async def scenario() -> None:
        url = server.url_template
        async with client(url, "bob") as bob, client(url, "alice") as alice:
            created = await bob.say(nonce())
            for body in ("first edit", "second edit"):
                await bob.send({"type": "update", "messageId": created["id"], "message": body})
                update = await bob.expect(lambda f: f.get("action") == "update")
                assert await alice.expect(lambda f: f.get("action") == "update") == update
                assert set(update) == {"type", "action", "id", "body", "edited", "updated"}
                assert (update["id"], update["body"], update["edited"]) == (
                    created["id"],
                    body,
                    True,
                )
                assert parse_time(update["updated"]) >= parse_time(created["created"])

    run(scenario())


def test_author_deletes_and_everyone_sees_the_delete(server: ServerThread) -> None:
    async def scenario() -> None:
        url = server.url_template
        async with client(url, "bob") as bob, client(url, "alice") as alice:
            created = await bob.say(nonce())
            await bob.send({"type": "delete", "messageId": created["id"]})
            expected = {"type": "chat_message", "action": "delete", "id": created["id"]}
            assert await bob.expect(lambda f: f.get("action") == "delete") == expected
            assert await alice.expect(lambda f: f.get("action") == "delete") == expected
            for frame in (
                {"type": "delete", "messageId": created["id"]},
                {"type": "update", "messageId": created["id"], "message": "zombie"},
            ):
                await bob.send(frame)
                assert await bob.error() == {"error": "Message not found."}

    run(scenario())


@pytest.mark.parametrize("who", ["carol", "alice"])
def test_only_the_author_may_edit_or_delete(server: ServerThread, who: str) -> None:
    """Seed: "Only message author can delete" / "can edit"; the host included (EDIT-006)."""

    async def scenario() -> None:
        url = server.url_template
        async with client(url, "bob") as bob, client(url, who) as other:
            created = await bob.say(nonce())
            await other.send({"type": "update", "messageId": created["id"], "message": "x"})
            assert await other.error() == {"error": "You can only edit your own messages."}
            await other.send({"type": "delete", "messageId": created["id"]})
            assert await other.error() == {"error": "You can only delete your own messages."}
            await bob.send({"type": "update", "messageId": created["id"], "message": "still"})
            update = await bob.expect(lambda f: f.get("action") == "update")
            assert update["body"] == "still"

    run(scenario())


def test_edit_limit_is_the_same_as_for_new_messages(server: ServerThread) -> None:
    async def scenario() -> None:
        async with client(server.url_template, "bob") as bob:
            created = await bob.say(nonce())
            await bob.send({"type": "update", "messageId": created["id"], "message": "b" * 501})
            assert await bob.error() == {"error": "Message exceeds 500 characters."}
            await bob.send({"type": "update", "messageId": created["id"], "message": "b" * 500})
            assert (await bob.expect(lambda f: f.get("action") == "update"))["body"] == "b" * 500

    run(scenario())


@pytest.mark.parametrize(
    "message_id", ["9b2f0c52-5f0e-4a55-9d3e-0d7f7f3c2a11", "not-a-uuid", "17", 17, None]
)
def test_unknown_message_ids_are_not_found(server: ServerThread, message_id: Any) -> None:
    async def scenario() -> None:
        async with client(server.url_template, "bob") as bob:
            for kind in ("update", "delete"):
                await bob.send({"type": kind, "messageId": message_id, "message": "x"})
                assert await bob.error() == {"error": "Message not found."}

    run(scenario())


# -- errors and isolation -------------------------------------------------------------------------


def test_errors_go_to_the_offending_connection_only(server: ServerThread) -> None:
    async def scenario() -> None:
        url = server.url_template
        async with (
            client(url, "bob") as bob,
            client(url, "bob") as bob2,
            client(url, "alice") as alice,
        ):
            await bob.send({"type": "text", "message": "x" * 501})
            assert is_error(await bob.recv())
            before = await bob.sentinel(bob2, alice)
            assert not any(is_error(f) for seen in before[1:] for f in seen)

    run(scenario())


def test_rooms_are_isolated(server: ServerThread) -> None:
    async def scenario() -> None:
        url = server.url_template
        async with client(url, "bob", "general") as general, client(url, "bob", "random") as other:
            created = await general.say(nonce("general"))
            await other.send({"type": "update", "messageId": created["id"], "message": "hijack"})
            assert await other.error() == {"error": "Message not found."}
            await other.send({"type": "delete", "messageId": created["id"]})
            assert await other.error() == {"error": "Message not found."}
            # Nothing of room "general" reached room "random", and the message is intact.
            [seen_other] = await other.sentinel()
            assert all(f.get("body") != created["body"] for f in seen_other[:-1])
            assert not any(f.get("action") in ("update", "delete") for f in seen_other)
            await general.send({"type": "update", "messageId": created["id"], "message": "ok"})
            assert (await general.expect(lambda f: f.get("action") == "update"))["body"] == "ok"

    run(scenario())


# -- robustness -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("not json", "Invalid JSON."),
        ("[1, 2]", "Frame must be a JSON object."),
        ("42", "Frame must be a JSON object."),
        (b"\x00binary", "Binary frames are not supported."),
        ({"type": "shout", "message": "x"}, "Unknown message type."),
        ({"type": "text"}, "Message must be a string."),
        ({"type": "text", "message": {"a": 1}}, "Message must be a string."),
        ({"type": "text", "message": ""}, "Message must not be empty."),
        ({"type": "update", "messageId": "x"}, "Message not found."),
    ],
)
def test_bad_frames_get_an_error_and_leave_everyone_connected(
    server: ServerThread, frame: Any, error: str
) -> None:
    async def scenario() -> None:
        url = server.url_template
        async with client(url, "bob") as bob, client(url, "carol") as carol:
            await bob.send(frame)
            assert await bob.error() == {"error": error}
            seen_bob, seen_carol = await bob.sentinel(carol)
            assert len(seen_bob) == 1
            assert all(f.get("action") == "new" for f in seen_carol)

    run(scenario())


def test_frame_without_type_is_sent_as_text(server: ServerThread) -> None:
    async def scenario() -> None:
        async with client(server.url_template, "bob") as bob:
            body = nonce()
            await bob.send({"message": body})
            await bob.expect(lambda f: is_new(f, body))

    run(scenario())


def test_oversized_frame_closes_that_connection_with_1009(
    make_server: Callable[..., ServerThread],
) -> None:
    srv = make_server(max_frame_bytes=4096)

    async def scenario() -> None:
        url = srv.url_template
        async with client(url, "bob") as bob, client(url, "carol") as carol:
            await bob.send({"type": "text", "message": "x" * 5000})
            with pytest.raises(ConnectionClosed) as closed:
                await bob.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1009
            await carol.say(nonce())

    run(scenario())


def test_closed_connections_are_dropped_from_the_room(server: ServerThread) -> None:
    async def scenario() -> None:
        url = server.url_template
        async with client(url, "carol") as carol:
            async with client(url, "bob") as bob:
                await bob.say(nonce())
            bob.ws.transport.abort()
            # A client that vanishes without a close handshake does not stop the others.
            async with client(url, "alice") as alice:
                alice.ws.transport.abort()
            await carol.say(nonce())

    run(scenario())
    assert server.errors == []


def test_many_connections_of_one_room_all_receive(server: ServerThread) -> None:
    async def scenario() -> None:
        url = server.url_template
        async with AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(client(url, "carol", "random")) for _ in range(12)
            ]
            body = nonce()
            event = await clients[0].say(body)
            got = await asyncio.gather(*(c.expect(lambda f: is_new(f, body)) for c in clients[1:]))
            assert all(frame == event for frame in got)

    run(scenario())


def test_reconnecting_at_once_receives_the_next_events(server: ServerThread) -> None:
    async def scenario() -> None:
        url = server.url_template
        for _ in range(30):
            async with client(url, "bob"):
                pass
        async with client(url, "bob") as bob:
            await bob.say(nonce())

    run(scenario())


# -- persistence ----------------------------------------------------------------------------------


def test_messages_survive_a_restart(tmp_path: Path) -> None:
    srv = ServerThread(demo_config(database=str(tmp_path / "chat.sqlite3"))).start()
    try:
        created = run(_say(srv.url_template, "persist me"))
        port = srv.port
        srv.restart()
        assert srv.port == port

        async def edit() -> dict[str, Any]:
            async with client(srv.url_template, "bob") as bob:
                await bob.send({"type": "update", "messageId": created["id"], "message": "edited"})
                frame: dict[str, Any] = await bob.recv()
                return frame

        update = run(edit())
        assert (update["action"], update["id"], update["body"]) == (
            "update",
            created["id"],
            "edited",
        )
    finally:
        srv.stop()
    srv.raise_errors()


def test_memory_database_starts_empty_after_a_restart() -> None:
    srv = ServerThread(demo_config(database=":memory:")).start()
    try:
        created = run(_say(srv.url_template, "gone"))
        srv.restart()

        async def delete() -> Any:
            async with client(srv.url_template, "bob") as bob:
                await bob.send({"type": "delete", "messageId": created["id"]})
                return await bob.recv()

        assert run(delete()) == {"error": "Message not found."}
    finally:
        srv.stop()


async def _say(url_template: str, body: str) -> dict[str, Any]:
    async with client(url_template, "bob") as bob:
        return await bob.say(body)


# -- the runner -----------------------------------------------------------------------------------


def test_server_thread_reports_a_failure_to_start() -> None:
    with ServerThread(demo_config(database=":memory:")) as first:
        second = ServerThread(demo_config(database=":memory:", port=first.port))
        with pytest.raises(RuntimeError, match="failed to start"):
            second.start()


def test_server_thread_refuses_connections_after_stop() -> None:
    srv = ServerThread(demo_config(database=":memory:")).start()
    url = room_url(srv.url_template)
    srv.stop()

    async def attempt() -> None:
        async with connect(url, proxy=None, open_timeout=TIMEOUT):
            pass

    with pytest.raises((OSError, InvalidStatus)):
        run(attempt())


def test_frames_are_json_objects_everywhere(server: ServerThread) -> None:
    async def scenario() -> None:
        async with client(server.url_template, "bob") as bob:
            await bob.send("nope")
            raw = await bob.ws.recv()
            assert isinstance(json.loads(raw), dict)

    run(scenario())
