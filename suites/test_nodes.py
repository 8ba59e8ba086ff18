"""Across nodes (protocol notes: Several nodes): a deployment behind a load balancer behaves as
one server. The target names its nodes one by one (``nodes = [...]``); each test puts its
connections on chosen nodes. Without two nodes, every test here is not tested, and the
requirements do not count towards the verdict (catalogue ``needs = "nodes"``).

Absence is proven with sentinels sent by the connection (so the node) that sent the frame under
test: one node's events reach the others in the order it handled them, so anything the frame
caused on another node arrives there before the sentinel.
"""

from __future__ import annotations

import pytest

from harness.core.catalogue import NEEDS
from harness.core.failures import NotTested
from harness.core.frames import is_error, mentions
from harness.server.chat import Chat, Conn

requirement = pytest.mark.requirement

ROLES = ("member", "member2", "host")
GHOST = "00000000-0000-4000-8000-000000000000"


def _nodes(chat: Chat) -> int:
    """How many nodes the target names; not tested without two."""
    count = len(chat.target.nodes)
    if count < 2:
        raise NotTested(NEEDS["nodes"])
    return count


async def _one_per_node(chat: Chat, room: str = "main", label: str = "node") -> list[Conn]:
    return [
        await chat.connect(ROLES[i % len(ROLES)], room, node=i, label=f"{label}{i + 1}")
        for i in range(_nodes(chat))
    ]


@requirement("NODE-001")
async def test_event_reaches_every_node(chat: Chat) -> None:
    conns = await _one_per_node(chat)
    for sender in conns:
        body = chat.nonce(f"from-node{sender.node + 1}")
        await sender.send_text(body)
        for other in conns:
            if other is not sender:
                await other.expect_event("new", body=body, requirement="NODE-001")
        await sender.expect_event("new", body=body, requirement="SEND-002")


@requirement("NODE-002")
async def test_error_stays_with_its_sender_across_nodes(chat: Chat) -> None:
    conns = await _one_per_node(chat)
    culprit, others = conns[0], conns[1:]
    await culprit.send_delete(GHOST)
    await culprit.expect_error(None, requirement="ERR-001")
    body = chat.nonce("sentinel")
    await culprit.send_text(body)
    for watcher in others:
        await watcher.expect_nothing_before(
            body,
            is_error,
            requirement="NODE-002",
            what="error frame of a connection on another node",
            arrival_requirement="NODE-001",
        )


@requirement("NODE-003")
async def test_rooms_stay_apart_across_nodes(chat: Chat) -> None:
    count = _nodes(chat)
    chat.slug("other")
    sender = await chat.connect("member", "main", node=0, label="main-node1")
    neighbour = await chat.connect("member2", "other", node=0, label="other-node1")
    watchers = [
        await chat.connect(ROLES[i % len(ROLES)], "other", node=i, label=f"other-node{i + 1}")
        for i in range(1, count)
    ]
    body = chat.nonce("private")
    await chat.post(sender, body)
    sentinel = chat.nonce("sentinel")
    await neighbour.send_text(sentinel)
    for watcher in (neighbour, *watchers):
        await watcher.expect_nothing_before(
            sentinel,
            mentions(body),
            requirement="NODE-003",
            what="event of the other room",
            arrival_requirement="NODE-001" if watcher.node else "SEND-002",
        )
