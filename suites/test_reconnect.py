"""Reconnection, the server's side (seed: Reconnection Logic; protocol notes: a client that
vanishes without a close handshake)."""

from __future__ import annotations

import asyncio

import pytest

from harness import commands, spec
from harness.core.delivery import Sent, closed_text
from harness.core.failures import ConformanceFailure, NotTested
from harness.server.chat import Chat, Conn, Refusal
from harness.server.flood import (
    Burst,
    Collector,
    bounded,
    drains,
    early,
    prove,
    quiet,
    room_for_the_tag,
    send_all,
    senders_for,
    settle_drains,
    shortfall,
    sized_note,
    stands_on_the_basics,
)

requirement = pytest.mark.requirement

#: RECON-002's flood: about 2.5 MB to each connection of the room, through this many senders
#: at least, or more against a server whose pace would make each sender's share outlast
#: ``load.time_budget`` (:func:`~harness.server.flood.senders_for`), at most MAX_SENDERS.
FLOOD_FRAMES = 1200
SENDERS = 4
MAX_SENDERS = 48
#: Four UTF-8 bytes a character: few frames carry many bytes.
WAVE = "\U0001f30a"


@requirement("RECON-002")
@pytest.mark.exclusive  # floods the room: every connection of every other test would carry it
@pytest.mark.test_timeout(60, per_receive=12)
async def test_half_open_client_does_not_stop_the_fan_out(chat: Chat) -> None:
    # Half-open clients (handshake done, never reading again, a tiny receive window) join
    # before and after the watcher. The room then carries enough traffic (about 2.5 MB) to
    # fill their socket buffers: a server that writes to connections one at a time and waits
    # for each would block there.
    chat.needs("network")  # a half-open TCP peer
    #
    # The flood goes through SENDERS connections at once: a server that handles each
    # connection's frames one at a time, slowly (a database across a network), handles the
    # connections side by side, so the same bytes arrive in a sixteenth of the time. The seed
    # states no throughput: a server too slow for the test's bound even so is "not tested" with
    # its pace (harness.server.calls.too_slow), never failed.
    limit = min(chat.target.max_length, spec.MAX_LENGTH)  # a bigger target limit: same traffic
    room_for_the_tag(limit)
    stands_on_the_basics(chat)
    await chat.half_open("member2")
    watcher = await chat.connect("host")
    await chat.half_open("member2")
    count = senders_for(chat, FLOOD_FRAMES, SENDERS, MAX_SENDERS)
    if count > SENDERS:
        chat.observe("RECON-002", sized_note(chat, f"the flood went through {count} senders"))
    senders = [await chat.connect(("member", "host")[i % 2]) for i in range(count)]
    try:
        missed = await _flood(chat, watcher, senders, "flood")
        if missed is None:
            return
        # The control: the same flood once the half-open clients are gone. A server that loses
        # it too loses events under this load whatever the half-open clients do (LOAD-001
        # judges that); only one that delivers it in full proves them the cause.
        for ghost in chat.half_opens:
            ghost.close()
        chat.transcript.log("harness", "==", "the control: the same flood, no half-open client")
        again = await _flood(chat, watcher, senders, "control")
        if again is not None:
            raise NotTested(
                "the server loses events under this flood without a half-open client too: the "
                f"watcher missed {again} with none in the room, after {missed} with two; see "
                "LOAD-001"
            )
        raise ConformanceFailure(
            "RECON-002",
            f"each of the {FLOOD_FRAMES:,} flood events on {watcher.name}, with two half-open "
            "clients in the room",
            f"{watcher.name} missed {missed}; the same flood with the half-open clients gone "
            "(the control) reached it in full",
        )
    finally:
        # The senders read none of what they were sent but their own echoes and errors: a
        # closing handshake would first read the rest. Nothing more is judged on them.
        for sender in senders:
            sender.abort()


async def _flood(chat: Chat, watcher: Conn, senders: list[Conn], label: str) -> str | None:
    """FLOOD_FRAMES messages through ``senders`` at once (each under the server's rate limit);
    None when ``watcher`` received every one the server accepted (every one not refused with
    an error), else what it missed, in words. Not tested when the server ended the watcher
    (an open refusal of load) or refused most of the flood."""
    limit = min(chat.target.max_length, spec.MAX_LENGTH)
    burst = Burst(chat.nonce(label), limit, fill=WAVE)
    share = -(-FLOOD_FRAMES // len(senders))
    seen = Collector(chat, watcher, burst)
    seen.wanted = {(i, q) for i in range(len(senders)) for q in range(share)}
    counters = drains(chat, senders, burst)
    reading = [asyncio.ensure_future(seen.run())]
    # In the control every connection reads: a sender that did not would be a slow reader
    # itself, and a server that waits for slow readers would lose the control for it.
    draining = early(chat, counters, always=label == "control")
    sent: list[Sent] = []
    try:
        await asyncio.gather(
            *(send_all(chat, conn, burst, i, sent, share) for i, conn in enumerate(senders))
        )
        await quiet(chat, [seen])
        ended = await prove(chat, [seen], sent, senders, burst, counters, draining)
        if ended is not None:
            chat.observe("RECON-002", f"{label}: {ended}")
    finally:
        seen.stop()
        for task in reading:
            task.cancel()
        await asyncio.gather(*reading, return_exceptions=True)
    await settle_drains(chat, counters, sent, draining, seen.record)  # which were refused?
    bounded([seen])
    if seen.record.closed is not None:
        raise NotTested(
            f"the server ended the watcher during the flood ({closed_text(seen.record.closed)}):"
            " an open refusal of load, which leaves nothing to judge"
        )
    refused = sum(len(d.errors) for d in counters)
    if refused > len(sent) // 2:
        first = next(d.errors[0] for d in counters if d.errors)
        raise NotTested(
            f"the server refused {refused:,} of the {len(sent):,} flood frames openly (the "
            f"first: {first!r}): too little traffic is left to fill a half-open client's buffers"
        )
    missing = shortfall(sent, seen.record, counters)
    if not missing:
        return None
    lost = sum(missing.values())
    accepted = len(sent) - refused
    return f"{lost:,} of the {accepted:,} events the server accepted without an error"


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
    await asyncio.to_thread(commands.restart, chat.target)
    again = await chat.connect("member", requirement="RECON-006")
    body = chat.nonce("after-restart")
    await again.send_update(message["id"], body)
    await again.expect_event("update", id=message["id"], body=body, requirement="RECON-006")
