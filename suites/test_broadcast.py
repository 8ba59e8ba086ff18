"""Broadcast (seed: Event Types: the server broadcasts events to all connected clients in the
room group)."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest

from harness.core.failures import ConformanceFailure
from harness.core.frames import check_equal
from harness.server.chat import Chat

requirement = pytest.mark.requirement


@requirement("BCAST-001")
async def test_second_connection_of_an_account_receives_events(chat: Chat) -> None:
    first = await chat.connect("member")
    second = await chat.connect("member", label="member-twin")
    other = await chat.connect("member2")
    theirs = await chat.post(other)
    await first.expect_event("new", id=theirs["id"], requirement="BCAST-001")
    await second.expect_event("new", id=theirs["id"], requirement="BCAST-001")
    mine = await chat.post(first)
    await second.expect_event("new", id=mine["id"], requirement="BCAST-001")


@requirement("BCAST-002")
async def test_every_connection_sees_the_same_event(chat: Chat) -> None:
    conns = await chat.connect_many([("member", "main"), ("member2", "main"), ("host", "main")])
    body = chat.nonce("same")
    await conns[0].send_text(body)
    events = [await c.expect_event("new", body=body, requirement="BCAST-002") for c in conns]
    for event in events[1:]:
        check_equal("BCAST-002", "id", events[0]["id"], event["id"])
        check_equal("BCAST-002", "body", events[0]["body"], event["body"])


@requirement("BCAST-003", "BCAST-005")
async def test_fan_out_to_ten_connections(chat: Chat) -> None:
    roles = ["host", "member", "member2"] * 4
    conns = list(await asyncio.gather(*(chat.connect(r) for r in roles[:10])))
    latencies = []
    for _ in range(3):
        body = chat.nonce("fan")
        t0 = time.perf_counter()
        await conns[0].send_text(body)
        await asyncio.gather(
            *(c.expect_event("new", body=body, requirement="BCAST-003") for c in conns)
        )
        latencies.append((time.perf_counter() - t0) * 1000)
    chat.observe(
        "BCAST-005",
        f"send to delivery on all 10 connections: median {statistics.median(latencies):.1f} ms",
    )


@requirement("BCAST-004")
async def test_events_of_one_sender_keep_their_order(chat: Chat) -> None:
    sender = await chat.connect("member")
    other = await chat.connect("member2")
    bodies = [chat.nonce(f"n{i}") for i in range(8)]
    for body in bodies:
        await sender.send_text(body)
    seen: list[str] = []
    for _ in bodies:
        event = await other.wait_for(
            lambda f: isinstance(f, dict) and f.get("action") == "new" and f.get("body") in bodies,
            requirement="BCAST-004",
            expected="the sender's eight messages",
            basic=other.stands_on(sender),
        )
        seen.append(event["body"])
    if seen != bodies:
        raise ConformanceFailure("BCAST-004", f"order {bodies}", f"order {seen}")
