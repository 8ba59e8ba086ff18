"""The faults that only a sequence of steps reveals (``Fault.sequence``): each one shown on the
reference server through the shortest sequence that strikes it, the correct server answering
that same sequence correctly, and the case its description keeps normal shown normal.

Absence is proven with a sentinel (protocol notes, "Prove absence with a sentinel"): a
connection's frames are handled in order and delivery on one connection is FIFO, so what did
not arrive before the sentinel's echo was never sent. Every receive is bounded (``TIMEOUT``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from refserver_support import Client, client, is_error, is_new, run

from reference_server.faults import FAULTS
from reference_server.runner import ServerThread

NOT_FOUND = {"error": "Message not found."}
SEQUENCE_FAULTS = (
    "resurrect-edited",
    "undelete-on-reconnect",
    "update-follows-reconnect",
    "twin-misses-edits",
    "replay-after-vanish",
)
Start = Callable[..., ServerThread]


def nonce(label: str = "m") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


def serve(make_server: Start, fault: str | None) -> ServerThread:
    """A demo server with ``fault`` on (None: the correct server)."""
    return make_server(faults=frozenset() if fault is None else frozenset({fault}))


def naming(message_id: str) -> Callable[[Any], bool]:
    """An error frame, or an event of the message ``message_id``."""
    return lambda f: is_error(f) or (isinstance(f, dict) and f.get("id") == message_id)


def events(frames: list[Any], action: str, message_id: str) -> list[Any]:
    return [
        f
        for f in frames
        if isinstance(f, dict) and f.get("action") == action and f.get("id") == message_id
    ]


async def answer(conn: Client, frame: dict[str, Any]) -> Any:
    """Send an edit or delete; its answer: the error, or the event of its message."""
    await conn.send(frame)
    return await conn.expect(naming(frame["messageId"]))


def edit(message_id: str, body: str | None = None) -> dict[str, Any]:
    return {"type": "update", "messageId": message_id, "message": body or nonce("edit")}


def delete(message_id: str) -> dict[str, Any]:
    return {"type": "delete", "messageId": message_id}


def test_the_sequence_faults_are_registered_as_such() -> None:
    for name in SEQUENCE_FAULTS:
        fault = FAULTS[name]
        assert fault.sequence, name
        assert fault.level == "MUST", name
    assert set(SEQUENCE_FAULTS) <= {name for name, f in FAULTS.items() if f.sequence}


# -- resurrect-edited ----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["resurrect-edited", None])
def test_an_edit_of_a_deleted_message_edited_before_brings_it_back(
    make_server: Start, fault: str | None
) -> None:
    srv = serve(make_server, fault)

    async def scenario() -> None:
        async with client(srv.url_template, "bob") as bob:
            created = await bob.say(nonce())
            mid = created["id"]
            assert (await answer(bob, edit(mid)))["action"] == "update"
            assert (await answer(bob, delete(mid)))["action"] == "delete"
            late = await answer(bob, edit(mid, "late"))
            if fault is None:
                assert late == NOT_FOUND
            else:
                assert late["action"] == "update"
                assert late["body"] == "late"

    run(scenario())


def test_resurrect_edited_leaves_never_edited_messages_and_deletes_alone(
    make_server: Start,
) -> None:
    srv = serve(make_server, "resurrect-edited")

    async def scenario() -> None:
        async with client(srv.url_template, "bob") as bob:
            mid = (await bob.say(nonce()))["id"]
            assert (await answer(bob, delete(mid)))["action"] == "delete"
            assert await answer(bob, edit(mid)) == NOT_FOUND  # never edited: still gone
            assert await answer(bob, delete(mid)) == NOT_FOUND
            edited = (await bob.say(nonce()))["id"]
            await answer(bob, edit(edited))
            assert (await answer(bob, delete(edited)))["action"] == "delete"
            assert await answer(bob, delete(edited)) == NOT_FOUND  # deletes are unaffected

    run(scenario())


# -- undelete-on-reconnect -----------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["undelete-on-reconnect", None])
def test_a_delete_is_forgotten_once_its_connection_closed(
    make_server: Start, fault: str | None
) -> None:
    srv = serve(make_server, fault)

    async def scenario() -> None:
        url = srv.url_template
        async with client(url, "alice") as alice:
            async with client(url, "bob") as first:
                mid = (await first.say(nonce()))["id"]
                assert (await answer(first, delete(mid)))["action"] == "delete"
                await alice.expect(naming(mid))
            async with client(url, "bob") as again:  # opened after the deleting one closed
                second = await answer(again, delete(mid))
                if fault is None:
                    assert second == NOT_FOUND
                else:
                    assert second == {"type": "chat_message", "action": "delete", "id": mid}
                    assert await alice.expect(naming(mid)) == second  # broadcast again

    run(scenario())


def test_undelete_on_reconnect_keeps_edits_and_the_open_connection_normal(
    make_server: Start,
) -> None:
    srv = serve(make_server, "undelete-on-reconnect")

    async def scenario() -> None:
        url = srv.url_template
        async with client(url, "bob") as first:
            mid = (await first.say(nonce()))["id"]
            await answer(first, delete(mid))
            assert await answer(first, delete(mid)) == NOT_FOUND  # its connection is open
            async with client(url, "bob") as twin:  # opened before the close
                await first.ws.close()
                assert await answer(twin, delete(mid)) == NOT_FOUND
                async with client(url, "bob") as again, client(url, "carol") as carol:
                    assert await answer(again, edit(mid)) == NOT_FOUND  # edits: unaffected
                    assert await answer(carol, delete(mid)) == NOT_FOUND  # not the author

    run(scenario())


# -- update-follows-reconnect --------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["update-follows-reconnect", None])
def test_the_update_of_a_closed_connections_message_follows_the_reconnection(
    make_server: Start, fault: str | None
) -> None:
    srv = serve(make_server, fault)

    async def scenario() -> None:
        url = srv.url_template
        async with (
            client(url, "bob", "general") as editor,
            client(url, "carol", "general") as watcher,
        ):
            async with client(url, "bob", "general") as sender:
                mid = (await sender.say(nonce()))["id"]
            # bob reconnects, to the other room: the message passes to that connection
            async with client(url, "bob", "random") as elsewhere:
                await editor.send(edit(mid, "edited"))
                [mine, theirs] = await editor.sentinel(watcher)
                [there] = await elsewhere.sentinel()
                if fault is None:
                    assert len(events(mine, "update", mid)) == 1
                    assert len(events(theirs, "update", mid)) == 1
                    assert events(there, "update", mid) == []
                else:
                    assert events(mine, "update", mid) == []
                    assert events(theirs, "update", mid) == []
                    assert [f["body"] for f in events(there, "update", mid)] == ["edited"]

    run(scenario())


def test_update_follows_reconnect_before_a_reconnection_and_for_deletes_is_normal(
    make_server: Start,
) -> None:
    srv = serve(make_server, "update-follows-reconnect")

    async def scenario() -> None:
        url = srv.url_template
        async with client(url, "bob") as editor, client(url, "carol") as watcher:
            kept = (await editor.say(nonce()))["id"]  # its connection stays open
            async with client(url, "bob") as sender:
                gone = (await sender.say(nonce()))["id"]
            async with client(url, "bob", "random") as elsewhere:
                await editor.send(edit(kept))
                await editor.send(delete(gone))
                [mine, theirs] = await editor.sentinel(watcher)
                [there] = await elsewhere.sentinel()
                for frames in (mine, theirs):
                    assert len(events(frames, "update", kept)) == 1
                    assert len(events(frames, "delete", gone)) == 1
                assert there == [there[-1]]  # its own sentinel only

    run(scenario())


def test_update_follows_reconnect_returns_once_the_account_opens_another_connection(
    make_server: Start,
) -> None:
    srv = serve(make_server, "update-follows-reconnect")

    async def scenario() -> None:
        url = srv.url_template
        async with client(url, "bob") as editor, client(url, "carol") as watcher:
            async with client(url, "bob") as sender:
                mid = (await sender.say(nonce()))["id"]
            async with client(url, "bob", "random") as elsewhere, client(url, "bob"):
                await editor.send(edit(mid))
                [mine, theirs] = await editor.sentinel(watcher)
                [there] = await elsewhere.sentinel()
                assert len(events(mine, "update", mid)) == 1
                assert len(events(theirs, "update", mid)) == 1
                assert events(there, "update", mid) == []

    run(scenario())


# -- twin-misses-edits ---------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["twin-misses-edits", None])
def test_an_accounts_second_connection_misses_its_edits(
    make_server: Start, fault: str | None
) -> None:
    srv = serve(make_server, fault)

    async def scenario() -> None:
        url = srv.url_template
        async with client(url, "bob") as first, client(url, "bob") as twin:
            mid = (await first.say(nonce()))["id"]
            await first.send(edit(mid, "edited"))
            [mine, seen] = await first.sentinel(twin)
            assert len(events(mine, "update", mid)) == 1
            assert len(events(seen, "update", mid)) == (1 if fault is None else 0)

    run(scenario())


def test_twin_misses_edits_keeps_new_and_delete_events_and_other_edits(
    make_server: Start,
) -> None:
    srv = serve(make_server, "twin-misses-edits")

    async def scenario() -> None:
        url = srv.url_template
        async with (
            client(url, "bob") as first,
            client(url, "bob") as twin,
            client(url, "carol") as carol,
        ):
            body = nonce()
            mid = (await first.say(body))["id"]
            assert is_new(await twin.expect(naming(mid)), body)
            theirs = (await carol.say(nonce()))["id"]
            await carol.send(edit(theirs, "carol's"))  # another account's edit
            [_, seen] = await carol.sentinel(twin)
            assert [f["body"] for f in events(seen, "update", theirs)] == ["carol's"]
            own = await answer(twin, edit(mid, "twin's"))  # its own edit
            assert (own["action"], own["body"]) == ("update", "twin's")
            await first.send(delete(mid))
            [mine, seen] = await first.sentinel(twin)
            assert len(events(seen, "delete", mid)) == 1
            # The first connection is no twin: it gets the twin's edit.
            assert [f["body"] for f in events(mine, "update", mid)] == ["twin's"]

    run(scenario())


# -- replay-after-vanish -------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["replay-after-vanish", None])
def test_the_edit_of_a_vanished_editor_is_replayed_with_the_next_one(
    make_server: Start, fault: str | None
) -> None:
    srv = serve(make_server, fault)

    async def scenario() -> None:
        url = srv.url_template
        async with client(url, "carol") as carol:
            async with client(url, "bob") as first:
                mid = (await first.say(nonce()))["id"]
                await first.send(edit(mid, "first"))
                await first.expect(naming(mid))
                await carol.expect(naming(mid))
                first.ws.transport.abort()  # vanishes: no close handshake
            await carol.sentinel()  # the server has seen the reset by now
            async with client(url, "bob") as again:
                await again.send(edit(mid, "second"))
                [seen, watched] = await again.sentinel(carol)
                want = 1 if fault is None else 2
                assert [f["body"] for f in events(seen, "update", mid)] == ["second"] * want
                assert [f["body"] for f in events(watched, "update", mid)] == ["second"] * want
                await again.send(edit(mid, "third"))  # once: the replay is spent
                [seen] = await again.sentinel()
                assert [f["body"] for f in events(seen, "update", mid)] == ["third"]

    run(scenario())


def test_a_clean_close_of_the_editor_replays_nothing(make_server: Start) -> None:
    srv = serve(make_server, "replay-after-vanish")

    async def scenario() -> None:
        url = srv.url_template
        async with client(url, "carol") as carol:
            async with client(url, "bob") as first:
                mid = (await first.say(nonce()))["id"]
                await first.send(edit(mid, "first"))
                await carol.expect(naming(mid))
            async with client(url, "bob") as again:
                await again.send(edit(mid, "second"))
                [seen, watched] = await again.sentinel(carol)
                assert [f["body"] for f in events(seen, "update", mid)] == ["second"]
                assert [f["body"] for f in events(watched, "update", mid)][-1:] == ["second"]
                assert [f["body"] for f in events(watched, "update", mid)].count("second") == 1

    run(scenario())
