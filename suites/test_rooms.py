"""Room validation (seed: Connection Authentication, 2. the room exists with host and slug;
3. the user is a participant)."""

from __future__ import annotations

import pytest

from harness.server.chat import Chat

requirement = pytest.mark.requirement


@requirement("ROOM-001")
async def test_missing_room_is_refused(chat: Chat) -> None:
    await chat.expect_refused(
        chat.token("member"), room=chat.slug("missing"), requirement="ROOM-001"
    )


@requirement("ROOM-002")
async def test_room_slug_under_another_host_is_refused(chat: Chat) -> None:
    member = chat.account("member")
    await chat.expect_refused(
        chat.token("member"), room=chat.slug("main"), host=member.username, requirement="ROOM-002"
    )


@requirement("ROOM-003")
async def test_unknown_host_is_refused(chat: Chat) -> None:
    await chat.expect_refused(
        chat.token("member"),
        room=chat.slug("main"),
        host=chat.nonce("nohost"),
        requirement="ROOM-003",
    )


@requirement("ROOM-004")
async def test_outsider_is_refused(chat: Chat) -> None:
    await chat.expect_refused(
        chat.token("outsider"), room=chat.slug("main"), sentinel_room="main", requirement="ROOM-004"
    )


@requirement("ROOM-005")
async def test_host_is_accepted_to_own_room(chat: Chat) -> None:
    host = await chat.connect("host", requirement="ROOM-005")
    await chat.post(host, echo_requirement="ROOM-005")


@requirement("ROOM-006")
async def test_participant_is_accepted_to_both_rooms(chat: Chat) -> None:
    main = await chat.connect("member", "main", requirement="ROOM-006")
    other = await chat.connect("member", "other", requirement="ROOM-006")
    await chat.post(main, echo_requirement="ROOM-006")
    await chat.post(other, echo_requirement="ROOM-006")
