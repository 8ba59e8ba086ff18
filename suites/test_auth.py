"""Authentication (seed: Connection Authentication, 1. user is authenticated via JWT token).

Every refusal passes in either style (protocol notes, "How a refusal looks"): an HTTP error at
the handshake, or an accepted handshake closed at once before any room event. A room event on a
refused connection is never acceptable; a sentinel message proves its absence.
"""

from __future__ import annotations

import time

import pytest

from harness.core.failures import ConformanceFailure
from harness.server.chat import Chat, Refusal

requirement = pytest.mark.requirement


@requirement("AUTH-001")
async def test_missing_token_is_refused(chat: Chat) -> None:
    await chat.expect_refused(
        None, room=chat.slug("main"), sentinel_room="main", requirement="AUTH-001"
    )


@requirement("AUTH-002")
@pytest.mark.parametrize(
    "token",
    ["not-a-jwt", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.bm90LWpzb24.c2lnbmF0dXJl"],
    ids=["garbage", "three-dots", "payload-not-json"],
)
async def test_malformed_token_is_refused(chat: Chat, token: str) -> None:
    await chat.expect_refused(
        token, room=chat.slug("main"), sentinel_room="main", requirement="AUTH-002"
    )


@requirement("AUTH-003")
async def test_expired_token_is_refused(chat: Chat) -> None:
    token = chat.minter.expired(chat.account("member"))
    await chat.expect_refused(
        token, room=chat.slug("main"), sentinel_room="main", requirement="AUTH-003"
    )


@requirement("AUTH-004")
async def test_token_signed_with_wrong_key_is_refused(chat: Chat) -> None:
    token = chat.minter.wrong_key(chat.account("member"))
    await chat.expect_refused(
        token, room=chat.slug("main"), sentinel_room="main", requirement="AUTH-004"
    )


@requirement("AUTH-005")
async def test_unsigned_token_is_refused(chat: Chat) -> None:
    token = chat.minter.alg_none(chat.account("member"))
    await chat.expect_refused(
        token, room=chat.slug("main"), sentinel_room="main", requirement="AUTH-005"
    )


@requirement("AUTH-006")
async def test_token_of_unknown_user_is_refused(chat: Chat) -> None:
    token = chat.minter.unknown_user()
    await chat.expect_refused(
        token, room=chat.slug("main"), sentinel_room="main", requirement="AUTH-006"
    )


@requirement("AUTH-007")
async def test_tampered_token_is_refused(chat: Chat) -> None:
    token = chat.minter.tampered(chat.account("outsider"), impostor=chat.account("member2"))
    await chat.expect_refused(
        token, room=chat.slug("main"), sentinel_room="main", requirement="AUTH-007"
    )


@requirement("AUTH-008")
async def test_refused_client_receives_no_event(chat: Chat) -> None:
    # The outsider is authenticated but not a participant: the likeliest refusal to leak events.
    # Whether the refusal happens at all is ROOM-004's; this requirement fails only when a
    # room event reaches the connection.
    await chat.expect_refused(
        chat.token("outsider"), room=chat.slug("main"), sentinel_room="main", requirement="ROOM-004"
    )


@requirement("AUTH-009", "AUTH-010")
async def test_refusal_is_prompt_and_in_the_pinned_style(chat: Chat) -> None:
    refusal = await chat.expect_refused(
        None,
        room=chat.slug("main"),
        sentinel_room="main",
        requirement="AUTH-009",
    )
    assert refusal.style in ("http", "close")


@requirement("AUTH-011")
async def test_token_expiring_while_connected(chat: Chat) -> None:
    account = chat.account("member")
    chat.gate_check("SEND-002")  # the check after the expiry is the connection's own event
    now = time.time()
    seconds = 2 if now % 1 > 0.7 else 1  # expires 0.3 to 1.3 s from now
    token = chat.minter.short_lived(account, seconds)
    expires_in = int(now) + seconds - now
    outcome = await chat.attempt(
        token, room=chat.slug("main"), label="short-lived", account=account
    )
    if isinstance(outcome, Refusal):
        chat.observe("AUTH-011", f"a token {expires_in:.1f} s from expiry was refused")
        return
    # Bounded wait for the server to act on the expiry: a close is something we can await.
    closed = await outcome.wait_closed(expires_in + 0.3)
    if closed is not None:
        chat.observe("AUTH-011", f"the server closed the connection at token expiry ({closed[0]})")
        return
    body = chat.nonce("after-expiry")
    await outcome.send_text(body)
    try:
        await outcome.expect_event("new", body=body, requirement="AUTH-011")
    except ConformanceFailure as exc:
        chat.observe("AUTH-011", f"after expiry the connection is no longer served ({exc.actual})")
    else:
        chat.observe("AUTH-011", "the connection stays open and served after its token expired")
