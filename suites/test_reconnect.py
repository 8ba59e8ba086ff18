"""Reconnection, the server's side (seed: Reconnection Logic; protocol notes: a client that
vanishes without a close handshake)."""

from __future__ import annotations

import asyncio

import pytest

from harness.client import Chat, Conn, Refusal
from harness.core import spec
from harness.core.failures import ConformanceFailure, NotTested
from harness.core.frames import is_event

requirement = pytest.mark.requirement

#: RECON-002's flood: about 2.5 MB to each connection of the room, through this many senders.
FLOOD_FRAMES = 1200
SENDERS = 16


@requirement("RECON-002")
@pytest.mark.exclusive  # floods the room: every connection of every other test would carry it
async def test_half_open_client_does_not_stop_the_fan_out(chat: Chat) -> None:
    # Half-open clients (handshake done, never reading again, a tiny receive window) join
    # before and after the watcher. The room then carries enough traffic (about 2.5 MB, four
    # bytes a character) to fill their socket buffers: a server that writes to connections
    # one at a time and waits for each would block there.
    chat.needs("network")  # a half-open TCP peer
    #
    # The flood goes through SENDERS connections at once: a server that handles each
    # connection's frames one at a time, slowly (a database across a network), handles the
    # connections side by side, so the same bytes arrive in a sixteenth of the time. The seed states
    # no throughput: a server too slow for the test's bound even so is "not tested" with its pace
    # (harness.runner.too_slow), never failed.
    await chat.half_open("member2")
    watcher = await chat.connect("host")
    await chat.half_open("member2")
    senders = [await chat.connect(("member", "host")[i % 2]) for i in range(SENDERS)]
    limit = min(chat.target.max_length, spec.MAX_LENGTH)  # a bigger target limit: same traffic
    bodies = []
    for _ in range(FLOOD_FRAMES):
        head = chat.nonce("flood") + " "
        bodies.append(head + "\U0001f30a" * (limit - len(head)))

    async def send(sender: Conn, share: list[str]) -> None:
        for body in share:
            await sender.send_text(body)

    try:
        await asyncio.gather(*(send(s, bodies[i::SENDERS]) for i, s in enumerate(senders)))
        # Every event reaches the watcher, in whatever order the server interleaved the senders
        # (the order of one sender's events is BCAST-004's).
        waiting = set(bodies)
        while waiting:
            event = await watcher.wait_for(
                lambda f: is_event(f, "new") and f.get("body") in waiting,
                requirement="RECON-002",
                expected=f"the {len(bodies)} flood events, {len(waiting)} still to come",
                basic=watcher.stands_on(*senders),
            )
            waiting.discard(event["body"])
    finally:
        # The senders read none of the flood: a closing handshake would first read all of it
        # (about 2.5 MB each). Nothing more is judged on them, passed or failed: they vanish.
        for sender in senders:
            sender.abort()


@requirement("RECON-001")
# After RECON-002 (whose verdict a room stalled by these ghosts would hide): it leaves dead
# connections in the room, which stall later fan-outs of a server that fails it.
@pytest.mark.exclusive
async def test_vanished_client_does_not_stop_the_fan_out(chat: Chat) -> None:
    # Vanished clients join both before and after the watcher, so a server that stops at the
    # first failed write stops before reaching the watcher, whichever order it writes in.
    first_ghost = await chat.connect("member2", label="ghost")
    watcher = await chat.connect("host")
    last_ghost = await chat.connect("member2", label="ghost")
    sender = await chat.connect("member")
    first_ghost.abort()
    last_ghost.abort()
    for _ in range(3):
        await chat.post(sender, observers=[watcher], echo=False, fanout_requirement="RECON-001")


@requirement("RECON-003")
@pytest.mark.parametrize("how", ["clean-close", "tcp-reset"])
async def test_same_token_reconnects_and_receives_events(chat: Chat, how: str) -> None:
    account = chat.account("member")
    token = chat.token("member")
    slug = chat.slug("main")
    first = await chat.attempt(token, room=slug, label="member", account=account)
    if isinstance(first, Refusal):
        raise ConformanceFailure("CONN-001", "member accepted", first.describe())
    poster = await chat.connect("member2")
    await chat.post(poster, observers=[first])
    if how == "clean-close":
        await first.close()
    else:
        first.abort()
    again = await chat.attempt(token, room=slug, label="member-again", account=account)
    if isinstance(again, Refusal):
        raise ConformanceFailure(
            "RECON-003", "the same token accepted again at once", again.describe()
        )
    await chat.post(poster, observers=[again], fanout_requirement="RECON-003")


@requirement("RECON-004")
async def test_messages_outlive_the_connection(chat: Chat) -> None:
    account = chat.account("member")
    token = chat.token("member")
    slug = chat.slug("main")
    first = await chat.attempt(token, room=slug, label="member", account=account)
    assert not isinstance(first, Refusal), first.describe()
    edit_me = await chat.post(first)
    delete_me = await chat.post(first)
    first.abort()
    again = await chat.attempt(token, room=slug, label="member-again", account=account)
    if isinstance(again, Refusal):
        raise ConformanceFailure(
            "RECON-003", "the same token accepted again at once", again.describe()
        )
    body = chat.nonce("after-drop")
    await again.send_update(edit_me["id"], body)
    await again.expect_event("update", id=edit_me["id"], body=body, requirement="RECON-004")
    await again.send_delete(delete_me["id"])
    await again.expect_event("delete", id=delete_me["id"], requirement="RECON-004")


@requirement("RECON-005")
@pytest.mark.exclusive  # counts on the server's connections: nothing else may open any
@pytest.mark.test_timeout(120)
async def test_rapid_reconnect_cycles_leave_the_server_serving(chat: Chat) -> None:
    account = chat.account("member2")
    token = chat.token("member2")
    slug = chat.slug("main")
    for cycle in range(100):
        conn = await chat.attempt(token, room=slug, label="cycle", account=account)
        if isinstance(conn, Refusal):
            raise ConformanceFailure(
                "RECON-005", "every cycle accepted", f"cycle {cycle + 1} refused: {conn.describe()}"
            )
        if cycle % 2:
            await conn.close()
        else:
            conn.abort()
        chat.conns.remove(conn)
    chat.transcript.log("harness", "==", "100 connect/disconnect cycles done")
    conns = await asyncio.gather(
        *(chat.connect(r, requirement="RECON-005") for r in ("member", "member2", "host"))
    )
    await chat.post(
        conns[0], observers=conns[1:], echo_requirement="RECON-005", fanout_requirement="RECON-005"
    )


@requirement("RECON-006")
@pytest.mark.exclusive  # restarts the server
async def test_messages_survive_a_restart(chat: Chat) -> None:
    chat.needs("network")  # a server process to restart
    if not chat.target.can_restart:
        raise NotTested("needs restart.command in the target file")
    author = await chat.connect("member")
    message = await chat.post(author)
    await chat.close_all()
    await asyncio.to_thread(chat.target.restart)
    again = await chat.connect("member", requirement="RECON-006")
    body = chat.nonce("after-restart")
    await again.send_update(message["id"], body)
    await again.expect_event("update", id=message["id"], body=body, requirement="RECON-006")
