"""Connection and handshake (seed: Connection Protocol)."""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time

import pytest

from harness.server.chat import Chat, Refusal

requirement = pytest.mark.requirement


@requirement("CONN-001", "CONN-002")
async def test_participant_is_accepted_and_stays_open(chat: Chat) -> None:
    conn = await chat.connect("member", requirement="CONN-001")
    await chat.post(conn)
    await chat.post(conn, echo_requirement="CONN-002")
    await chat.post(conn, echo_requirement="CONN-002")


@requirement("CONN-003")
async def test_text_without_timestamp_is_accepted(chat: Chat) -> None:
    conn = await chat.connect("member")
    body = chat.nonce("no-ts")
    await conn.send_text(body, timestamp=False)
    await conn.expect_event("new", body=body, requirement="CONN-003")


@requirement("CONN-004")
async def test_frames_with_timestamps_are_accepted(chat: Chat) -> None:
    conn = await chat.connect("member")
    event = await chat.post(conn, echo_requirement="CONN-004")
    edited = chat.nonce("edited")
    await conn.send_update(event["id"], edited)
    await conn.expect_event("update", id=event["id"], body=edited, requirement="CONN-004")
    await conn.send_delete(event["id"])
    await conn.expect_event("delete", id=event["id"], requirement="CONN-004")


@requirement("CONN-005")
async def test_other_trailing_slash_form(chat: Chat) -> None:
    url = chat.target.url

    def flip(endpoint: str) -> str:
        return endpoint[:-1] if endpoint.endswith("/") else endpoint + "/"

    form = "without" if url.endswith("/") else "with"
    original = chat.target
    nodes = tuple(map(flip, original.nodes))
    chat.target = dataclasses.replace(original, url=flip(url), nodes=nodes)
    try:
        outcome = await chat.attempt(
            chat.token("member"), room=chat.slug("main"), label="other-form"
        )
    finally:
        chat.target = original
    if isinstance(outcome, Refusal):
        chat.observe(
            "CONN-005", f"the path {form} a trailing slash is refused: {outcome.describe()}"
        )
    else:
        chat.observe("CONN-005", f"the path {form} a trailing slash is accepted too")


@requirement("CONN-006")
@pytest.mark.exclusive  # a latency measured beside other traffic would say little
async def test_handshake_latency(chat: Chat) -> None:
    token = chat.token("member")
    slug = chat.slug("main")
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        outcome = await chat.attempt(token, room=slug, label="timed")
        times.append((time.perf_counter() - t0) * 1000)
        assert not isinstance(outcome, Refusal), outcome.describe()
        await outcome.close()
    chat.observe(
        "CONN-006",
        f"handshake median {statistics.median(times):.1f} ms, max {max(times):.1f} ms over 10",
    )


@requirement("CONN-007")
async def test_concurrent_connections_are_accepted(chat: Chat) -> None:
    roles = ["host", "member", "member2", "member", "host"]
    conns = await asyncio.gather(*(chat.connect(r, requirement="CONN-007") for r in roles))
    event = await chat.post(conns[0], observers=conns[1:], fanout_requirement="CONN-007")
    assert event["body"]
