"""Room isolation (protocol notes: a frame sent on a connection to room A must never change a
message of room B, nor make an event appear in room B, nor deliver room B's content to room A)."""

from __future__ import annotations

import pytest

from harness import spec
from harness.core.frames import event_matching, is_event, mentions
from harness.server.chat import Chat, Conn

requirement = pytest.mark.requirement


@requirement("ISO-001")
async def test_message_stays_in_its_room(chat: Chat) -> None:
    here = await chat.connect("member", "main")
    there = await chat.connect("member2", "other")
    there_host = await chat.connect("host", "other")
    body = chat.nonce("private")
    await chat.post(here, body)
    # A connection that opens after the message: what a server sends on connect (a history
    # frame, say) must not carry it either. Every frame is searched for the other room's
    # content (harness.core.isolation), whatever its type.
    late = await chat.connect("member", "other", label="late")
    await chat.sentinel(
        there_host,
        [there, there_host, late],
        "ISO-001",
        mentions(body),
        "event from the other room",
    )


async def _setup_cross(chat: Chat) -> tuple[Conn, Conn, Conn, dict[str, object]]:
    """A message in room `other`, and a connection of its author to room `main`."""
    author_there = await chat.connect("member", "other")
    watcher_there = await chat.connect("member2", "other")
    author_here = await chat.connect("member", "main")
    message = await chat.post(author_there, observers=[watcher_there])
    return author_here, author_there, watcher_there, message


@requirement("ISO-002")
async def test_cross_room_edit_changes_nothing(chat: Chat) -> None:
    here, there, watcher, message = await _setup_cross(chat)
    watcher_here = await chat.connect("member2", "main")
    body = chat.nonce("cross-edit")
    await here.send_update(message["id"], body)
    mid = str(message["id"])

    def touched(f: object) -> bool:
        return (is_event(f, "update") and f.get("id") == mid) or mentions(body)(f)  # type: ignore[union-attr]

    await chat.settle(here, [watcher_here], "ISO-002", touched, "update event")
    await chat.sentinel(
        there, [there, watcher], "ISO-002", touched, "event for the cross-room edit"
    )


@requirement("ISO-003")
async def test_cross_room_edit_is_not_found(chat: Chat) -> None:
    here, _, _, message = await _setup_cross(chat)
    await here.send_update(message["id"], chat.nonce("cross-edit"))
    await here.expect_error(spec.ERRORS.not_found, requirement="ISO-003")


@requirement("ISO-004")
async def test_cross_room_delete_removes_nothing(chat: Chat) -> None:
    here, there, watcher, message = await _setup_cross(chat)
    watcher_here = await chat.connect("member2", "main")
    await here.send_delete(message["id"])
    touched = event_matching("delete", id=str(message["id"]))
    await chat.settle(here, [watcher_here], "ISO-004", touched, "delete event")
    await chat.sentinel(
        there, [there, watcher], "ISO-004", touched, "event for the cross-room delete"
    )
    # The message survives in its own room: its author edits it there.
    body = chat.nonce("still-here")
    await there.send_update(message["id"], body)
    await watcher.expect_event("update", id=str(message["id"]), body=body, requirement="ISO-004")


@requirement("ISO-005")
async def test_cross_room_delete_is_not_found(chat: Chat) -> None:
    here, _, _, message = await _setup_cross(chat)
    await here.send_delete(message["id"])
    await here.expect_error(spec.ERRORS.not_found, requirement="ISO-005")


@requirement("ISO-006")
async def test_edits_and_deletes_stay_in_their_room(chat: Chat) -> None:
    await _edited_and_deleted_elsewhere(chat, "other", "ISO-006", "event from the other room")


async def _edited_and_deleted_elsewhere(chat: Chat, room: str, requirement: str, what: str) -> None:
    """A message of ``room`` edited and deleted there: no event of it in the main room."""
    watcher_here = await chat.connect("member2", "main")
    poster_here = await chat.connect("host", "main")
    author_there = await chat.connect("member", room)
    message = await chat.post(author_there)
    mid = str(message["id"])
    await author_there.send_update(mid, chat.nonce("edit-there"))
    await author_there.expect_event("update", id=mid, requirement="EDIT-003")
    await author_there.send_delete(mid)
    await author_there.expect_event("delete", id=mid, requirement="DEL-002")
    await chat.sentinel(poster_here, [watcher_here], requirement, mentions(mid), what)


# --- rooms of two hosts that share a slug (ISO-007; needs rooms.twin_host) ------------------


@requirement("ISO-007")
async def test_rooms_of_two_hosts_with_one_slug_keep_their_messages(chat: Chat) -> None:
    # A group keyed by the slug alone mixes them. Both ways, and for a connection that opens
    # after the other room's message (a history frame on connect).
    here = await chat.connect("member", "main")
    twin = await chat.connect("member2", "twin")
    body = chat.nonce("private")
    await chat.post(here, body)
    twin_body = chat.nonce("twin-private")
    await chat.post(twin, twin_body)
    late_here = await chat.connect("member2", "main", label="late")
    late_twin = await chat.connect("member", "twin", label="late")
    await chat.sentinel(
        twin, [twin, late_twin], "ISO-007", mentions(body), "event of the other host's room"
    )
    await chat.sentinel(
        here, [here, late_here], "ISO-007", mentions(twin_body), "event of the other host's room"
    )


@requirement("ISO-007")
async def test_rooms_of_two_hosts_with_one_slug_keep_their_edits_and_deletes(chat: Chat) -> None:
    await _edited_and_deleted_elsewhere(chat, "twin", "ISO-007", "event of the other host's room")


@requirement("ISO-007")
async def test_an_edit_or_delete_naming_the_other_hosts_message_changes_nothing(
    chat: Chat,
) -> None:
    author_twin = await chat.connect("member", "twin")
    watcher_twin = await chat.connect("member2", "twin")
    author_here = await chat.connect("member", "main")
    watcher_here = await chat.connect("member2", "main")
    message = await chat.post(author_twin, observers=[watcher_twin])
    mid = str(message["id"])
    body = chat.nonce("cross-edit")
    await author_here.send_update(mid, body)
    await author_here.send_delete(mid)

    def touched(f: object) -> bool:
        return (is_event(f) and f.get("id") == mid) or mentions(body)(f)  # type: ignore[union-attr]

    await chat.settle(author_here, [watcher_here], "ISO-007", touched, "event for it")
    await chat.sentinel(
        author_twin, [author_twin, watcher_twin], "ISO-007", touched, "event for the edit"
    )
    # The message is still there, unchanged, in its own room: its author edits it there.
    again = chat.nonce("still-here")
    await author_twin.send_update(mid, again)
    await watcher_twin.expect_event("update", id=mid, body=again, requirement="ISO-007")
