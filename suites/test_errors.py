"""Errors (seed: Error Handling, Common Error Messages, Client-Side Error Handling)."""

from __future__ import annotations

import pytest

from harness import spec
from harness.core.frames import is_error
from harness.server.chat import Chat

requirement = pytest.mark.requirement

GHOST = "00000000-0000-4000-8000-000000000000"


@requirement("ERR-001")
async def test_error_is_not_broadcast(chat: Chat) -> None:
    culprit = await chat.connect("member")
    other = await chat.connect("member2")
    host = await chat.connect("host")
    await culprit.send_delete(GHOST)
    await culprit.expect_error(None, requirement="ERR-001")
    await chat.sentinel(other, [other, host], "ERR-001", is_error, "error frame")


@requirement("ERR-002")
async def test_error_does_not_reach_the_senders_other_connection(chat: Chat) -> None:
    culprit = await chat.connect("member")
    twin = await chat.connect("member", label="member-twin")
    await culprit.send_delete(GHOST)
    await culprit.expect_error(None, requirement="ERR-002")
    await chat.sentinel(twin, [twin], "ERR-002", is_error, "error frame")


@requirement("ERR-003")
async def test_connection_is_served_after_an_error(chat: Chat) -> None:
    conn = await chat.connect("member")
    await conn.send_update(GHOST, chat.nonce("ghost"))
    await conn.expect_error(None, requirement="ERR-003")
    await conn.is_served("ERR-003")


@requirement("ERR-004")
async def test_length_error_names_the_configured_limit(chat: Chat) -> None:
    conn = await chat.connect("member")
    limit = chat.target.max_length
    await conn.send_text("w" * (limit + 25))
    await conn.expect_error(spec.too_long(limit), requirement="ERR-004")
