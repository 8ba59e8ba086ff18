"""Editing messages (seed: Update Message Format, Update Message Event, Common Error Messages)."""

from __future__ import annotations

import pytest

from harness import spec
from harness.core.failures import ConformanceFailure
from harness.core.frames import check_equal, check_not_earlier, event_matching
from harness.server.chat import Chat

requirement = pytest.mark.requirement


@requirement("EDIT-001", "EDIT-002", "EDIT-003", "EDIT-004")
async def test_author_edit_is_broadcast(chat: Chat) -> None:
    author = await chat.connect("member")
    other = await chat.connect("member2")
    original = await chat.post(author, observers=[other], echo=False)
    body = chat.nonce("edited")
    await author.send_update(original["id"], body)
    mine = await author.expect_event("update", id=original["id"], requirement="EDIT-003")
    theirs = await other.expect_event("update", id=original["id"], requirement="EDIT-003")
    for event in (mine, theirs):
        check_equal("EDIT-001", "body", body, event.get("body"))
        if event.get("edited") is not True:
            raise ConformanceFailure(
                "EDIT-002", "edited = true", f"edited = {event.get('edited')!r}"
            )
        check_not_earlier("EDIT-004", original["created"], event.get("updated"))


async def _refused_edit(chat: Chat, editor_role: str, requirement_id: str) -> None:
    author = await chat.connect("member")
    editor = await chat.connect(editor_role)
    original = await chat.post(author, observers=[editor], echo=False)
    body = chat.nonce("hijack")
    await editor.send_update(original["id"], body)
    changed = event_matching("update", id=original["id"])
    await editor.expect_error(spec.ERRORS.edit_own, requirement=requirement_id, forbidden=changed)
    # Nothing changed: no update event reached the author before a later sentinel.
    await chat.sentinel(editor, [author], requirement_id, changed, "update event")


@requirement("EDIT-005")
async def test_edit_of_another_users_message_is_refused(chat: Chat) -> None:
    await _refused_edit(chat, "member2", "EDIT-005")


@requirement("EDIT-006")
async def test_host_cannot_edit_a_participants_message(chat: Chat) -> None:
    await _refused_edit(chat, "host", "EDIT-006")


@requirement("EDIT-007")
async def test_edit_of_unknown_message_is_not_found(chat: Chat) -> None:
    conn = await chat.connect("member")
    await conn.send_update("00000000-0000-4000-8000-000000000000", chat.nonce("ghost"))
    await conn.expect_error(spec.ERRORS.not_found, requirement="EDIT-007")


@requirement("EDIT-008")
async def test_edit_length_limit(chat: Chat) -> None:
    limit = chat.target.max_length
    author, other = await chat.connect("member"), await chat.connect("member2")
    original = await chat.post(author, observers=[other], echo=False)
    head = chat.nonce("long") + " "
    too_long = head + "y" * (limit + 1 - len(head))
    await author.send_update(original["id"], too_long)
    await author.expect_error(
        spec.too_long(limit),
        requirement="EDIT-008",
        forbidden=event_matching("update", id=original["id"]),
    )
    exact = head + "z" * (limit - len(head))
    await author.send_update(original["id"], exact)
    await other.expect_event("update", id=original["id"], body=exact, requirement="EDIT-008")


@requirement("EDIT-009")
async def test_edit_of_deleted_message_is_not_found(chat: Chat) -> None:
    author, other = await chat.connect("member"), await chat.connect("member2")
    original = await chat.post(author, observers=[other], echo=False)
    await author.send_delete(original["id"])
    await other.expect_event("delete", id=original["id"], requirement="DEL-002")
    await author.send_update(original["id"], chat.nonce("late"))
    await author.expect_error(
        spec.ERRORS.not_found,
        requirement="EDIT-009",
        forbidden=event_matching("update", id=original["id"]),
    )


@requirement("EDIT-010")
async def test_message_can_be_edited_twice(chat: Chat) -> None:
    author = await chat.connect("member")
    other = await chat.connect("host")
    original = await chat.post(author, observers=[other], echo=False)
    for label in ("first", "second"):
        body = chat.nonce(label)
        await author.send_update(original["id"], body)
        await other.expect_event("update", id=original["id"], body=body, requirement="EDIT-010")
