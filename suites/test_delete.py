"""Deleting messages (seed: Delete Message Format, Delete Message Event, Common Error Messages)."""

from __future__ import annotations

import pytest

from harness import spec
from harness.core.frames import event_matching
from harness.server.chat import Chat

requirement = pytest.mark.requirement


@requirement("DEL-001", "DEL-002")
async def test_author_delete_is_broadcast(chat: Chat) -> None:
    author = await chat.connect("member")
    other = await chat.connect("member2")
    host = await chat.connect("host")
    original = await chat.post(author, observers=[other, host], echo=False)
    await author.send_delete(original["id"])
    await author.expect_event("delete", id=original["id"], requirement="DEL-002")
    await other.expect_event("delete", id=original["id"], requirement="DEL-002")
    await host.expect_event("delete", id=original["id"], requirement="DEL-002")


async def _refused_delete(chat: Chat, deleter_role: str, requirement_id: str) -> None:
    author = await chat.connect("member")
    deleter = await chat.connect(deleter_role)
    original = await chat.post(author, observers=[deleter], echo=False)
    deleted = event_matching("delete", id=original["id"])
    await deleter.send_delete(original["id"])
    await deleter.expect_error(
        spec.ERRORS.delete_own, requirement=requirement_id, forbidden=deleted
    )
    await chat.sentinel(deleter, [author], requirement_id, deleted, "delete event")
    # The message survives: its author can still edit it.
    body = chat.nonce("survived")
    await author.send_update(original["id"], body)
    await deleter.expect_event("update", id=original["id"], body=body, requirement=requirement_id)


@requirement("DEL-003")
async def test_delete_of_another_users_message_is_refused(chat: Chat) -> None:
    await _refused_delete(chat, "member2", "DEL-003")


@requirement("DEL-004")
async def test_host_cannot_delete_a_participants_message(chat: Chat) -> None:
    await _refused_delete(chat, "host", "DEL-004")


@requirement("DEL-005")
async def test_delete_of_unknown_message_is_not_found(chat: Chat) -> None:
    conn = await chat.connect("member")
    await conn.send_delete("00000000-0000-4000-8000-000000000000")
    await conn.expect_error(spec.ERRORS.not_found, requirement="DEL-005")


@requirement("DEL-006")
async def test_second_delete_is_not_found(chat: Chat) -> None:
    author, other = await chat.connect("member"), await chat.connect("member2")
    original = await chat.post(author, observers=[other], echo=False)
    await author.send_delete(original["id"])
    await other.expect_event("delete", id=original["id"], requirement="DEL-002")
    await author.expect_event("delete", id=original["id"], requirement="DEL-002")
    await author.send_delete(original["id"])
    await author.expect_error(
        spec.ERRORS.not_found,
        requirement="DEL-006",
        forbidden=event_matching("delete", id=original["id"]),
    )
