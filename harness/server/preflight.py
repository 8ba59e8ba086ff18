"""The preflight before the suites, and the probe after a timeout (:mod:`harness.core.gate`).

Both talk to the target through a :class:`~harness.server.chat.Chat` of their own; what they find
goes into the run's :class:`~harness.core.gate.Gate`, which judges without I/O.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from harness.core.failures import ConformanceFailure, HarnessError
from harness.core.frames import event_matching, is_error, is_event
from harness.core.gate import Finding, Gate
from harness.core.session import Refusal
from harness.server.chat import Chat, Conn
from harness.target import Target
from harness.wire import apphost, raw

PREFLIGHT = "the preflight, before the suites"
#: Frames the rate probe sends at once on one connection: a server that answers some of them
#: with an error (and the first ones with their events) limits the rate of one connection.
RATE_PROBE = 40
#: Frames the probe must see served before the first refusal, for the refusals to be a rate
#: limit (a server that refuses every frame of an account is judged by the suites instead).
RATE_PROBE_SERVED = 2


def reachable(target: Target) -> None:
    """Before any test: the target answers a handshake: a server on the network
    (:func:`harness.wire.raw.probe`), or an ``[asgi]`` application, imported and started here
    (one handshake through :meth:`Chat.open_asgi`). Raises :class:`HarnessError` or, for an
    ``asgi.app`` that cannot be imported, :class:`~harness.target.TargetError`; one line
    either way."""
    if target.asgi_app is not None:
        apphost.host_for(target)  # imported, its lifespan started
        problem = asyncio.run(_asgi_handshake(target))
        if problem is not None:
            raise HarnessError(f"asgi.app: {target.asgi_app}: {problem}")
    else:
        raw.probe(target)


async def _asgi_handshake(target: Target) -> str | None:
    """One handshake with the application (any answer will do, accepted or refused): what is
    wrong with it, or None."""
    chat = Chat(target)
    plan = chat.plan(None, target.rooms.get("main", "probe"), None, 0)
    try:
        answer = await chat.open_asgi(plan)
    except TimeoutError:
        return f"did not answer a WebSocket handshake within {target.connect_timeout:.1f} s"
    if isinstance(answer, Refusal):
        if answer.status == 500 and answer.detail.startswith("the application raised"):
            return f"raised while answering a handshake: {answer.detail.splitlines()[-1]}"
        return None
    await answer[0].close()
    return None


async def preflight(target: Target, gate: Gate) -> None:
    """Try the basics once; each that fails is proved in ``gate`` with its evidence.

    Bounded by about one ``connect_timeout`` and one ``receive_timeout``: the echo and the
    fan-out are awaited together. A preflight that cannot conclude (no token for an account, a
    resource limit) leaves everything to the suites, which say what is wrong."""
    chat = Chat(target)
    found: list[ConformanceFailure] = []
    try:
        await _basics(chat, gate, found)
    except HarnessError:
        raise  # the target is unreachable: the run ends with that line
    except Exception:
        pass
    finally:
        await chat.close_all()
    for failure in found:
        gate.prove(Finding(failure, PREFLIGHT, chat.transcript.as_list(), chat.traffic.as_dict()))


async def _basics(chat: Chat, gate: Gate, found: list[ConformanceFailure]) -> None:
    try:
        # On one node: the basics are judged apart from delivery across nodes (NODE-001).
        sender = await chat.connect("member", label="preflight", node=0)
        other = await chat.connect("member2", label="preflight", node=0)
    except ConformanceFailure as exc:
        if exc.requirement == "CONN-001":
            found.append(exc)
        return
    start = time.monotonic()
    lost, echo_seen = await _round_trip(chat, sender, other, "preflight")
    gate.round_trip_s = time.monotonic() - start
    found.extend(lost)
    if echo_seen is None:
        return  # a resource limit, say: the suites judge what the server does
    gate.echo_seen = echo_seen
    if echo_seen and sender.closed is None:
        chat.gate = gate  # the error wait proves silence with a sentinel (the echo works)
        await sender.send_update(str(uuid.uuid4()), chat.nonce("preflight-edit"))
        try:
            await sender.expect_error(None, requirement="EDIT-007")
        except ConformanceFailure as exc:
            if exc.requirement == "EDIT-007":
                found.append(exc)
            return
        # Does the error stay with its sender? A sentinel after it through the same connection:
        # an error frame reaching the other connection first means errors go to the room.
        sentinel = chat.nonce("preflight-after-error")
        await sender.send_text(sentinel)
        try:
            await other.wait_for(
                event_matching("new", body=sentinel),
                requirement="SEND-003",
                expected="the sentinel, and no error frame before it",
                forbidden=is_error,
                forbidden_requirement="ERR-001",
            )
        except ConformanceFailure as exc:
            if exc.requirement == "ERR-001":
                gate.errors_private = False  # the suites judge ERR-001 itself
    if lost or not echo_seen or sender.closed is not None or other.closed is not None:
        return
    await _second_connection(chat, gate, sender, other, found)
    await _across_nodes(chat, sender, found)
    await _rate_limit(chat, gate)


async def _rate_limit(chat: Chat, gate: Gate) -> None:
    """Does the server limit the frames a second of one connection? RATE_PROBE short texts at
    once on a fresh connection, each answered (in order) by its event or an error. Valid texts
    a server served a moment before can only be refused for going too fast: the texts it served
    first are about its limit per second, and every connection of the run then paces itself
    under it (``Chat.send_interval``). Without a refusal, the texts served and the time they
    took are the server's pace on one connection (``Gate.pace``), which sizes the floods.
    Skipped when the target states its limit (``limits.max_frames_per_second``)."""
    if chat.target.max_frames_per_second is not None:
        return
    try:
        conn = await chat.connect("member", label="preflight-rate", node=0)
    except ConformanceFailure:
        return
    bodies = [chat.nonce("rate") for _ in range(RATE_PROBE)]
    start = time.monotonic()
    for body in bodies:
        await conn.send_text(body)
    waiting = set(bodies)
    served = 0
    last_served = start
    refusals: list[str] = []
    deadline = time.monotonic() + chat.target.receive_timeout
    while served + len(refusals) < RATE_PROBE:
        try:
            frame = await conn.wait_for(
                lambda f: is_error(f) or (is_event(f, "new") and f.get("body") in waiting),
                requirement="SEND-002",
                expected="the probe's events, or error frames",
                timeout=max(0.0, deadline - time.monotonic()),
            )
        except ConformanceFailure:
            break  # a slow or closing server: conclude from what came
        if is_error(frame):
            if served < RATE_PROBE_SERVED:
                return  # refused from the start: not a rate limit (the suites judge it)
            refusals.append(str(frame.get("error")))
        else:
            served += 1
            last_served = time.monotonic()
            waiting.discard(str(frame.get("body")))
    if refusals:
        gate.rate_limit = float(served)
        gate.rate_limit_error = refusals[0]
    elif served >= RATE_PROBE_SERVED:
        # A server that ends the probe's connection midway (a heartbeat whose ping waited
        # behind the probe's frames) showed its pace on the texts it served before.
        gate.pace = served / max(last_served - start, 1e-3)


async def _across_nodes(chat: Chat, sender: Conn, found: list[ConformanceFailure]) -> None:
    """With ``nodes``: a connection on each other node receives the sender's event (NODE-001).
    A deployment whose nodes do not share events fails it once, and every wait for an event
    sent on another node is blocked by it, instead of each timing out as a SEND-003."""
    count = len(chat.target.nodes)
    if count < 2:
        return
    try:
        others = [await chat.connect("member2", label="preflight", node=i) for i in range(1, count)]
    except ConformanceFailure:
        return  # a node refuses: the suites say so
    body = chat.nonce("preflight-nodes")
    await sender.send_text(body)
    outcomes = await asyncio.gather(
        *(conn.expect_event("new", body=body, requirement="NODE-001") for conn in others),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, ConformanceFailure) and outcome.requirement == "NODE-001":
            found.append(outcome)
            return


async def _second_connection(
    chat: Chat, gate: Gate, sender: Conn, other: Conn, found: list[ConformanceFailure]
) -> None:
    """A second connection of the sender's account (BCAST-001). Tried last, once the basics
    held: a server that keeps only an account's newest connection must not make the first look
    like SEND-002 failing. One message of the other account, awaited on both."""
    try:
        again = await chat.connect("member", label="preflight-again")
    except ConformanceFailure:
        return  # refused: CONN-007's test says so (a SHOULD), nothing to block
    body = chat.nonce("preflight-twice")
    await other.send_text(body)
    outcomes = await asyncio.gather(
        again.expect_event("new", body=body, requirement="BCAST-001"),
        sender.expect_event("new", body=body, requirement="BCAST-001"),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, ConformanceFailure) and outcome.requirement == "BCAST-001":
            found.append(outcome)
            gate.accounts_shared = False  # overlapping tests would starve one another
            return


async def _round_trip(
    chat: Chat, sender: Conn, other: Conn, label: str
) -> tuple[list[ConformanceFailure], bool | None]:
    """One message from ``sender``, awaited on ``other`` (SEND-003) and on ``sender`` itself
    (SEND-002) at once: the failures of those two basics, and whether the echo came (None when
    something else went wrong, a resource limit say: nothing to conclude)."""
    body = chat.nonce(label)
    await sender.send_text(body)
    outcomes: list[object] = await asyncio.gather(
        other.expect_event("new", body=body, requirement="SEND-003"),
        sender.expect_event("new", body=body, requirement="SEND-002"),
        return_exceptions=True,
    )
    lost: list[ConformanceFailure] = []
    for requirement, outcome in zip(("SEND-003", "SEND-002"), outcomes, strict=True):
        if isinstance(outcome, ConformanceFailure) and outcome.requirement == requirement:
            lost.append(outcome)
        elif isinstance(outcome, BaseException) and not isinstance(outcome, ConformanceFailure):
            return lost, None
    return lost, not isinstance(outcomes[1], BaseException)


async def probe(target: Target, gate: Gate, after: str) -> None:
    """After a test timed out: is the server still there?

    A fresh connection whose handshake gets no answer trips the breaker (the rest of the run is
    not tested). Two that are accepted but, where the preflight saw the basics hold, no longer
    get an event of one of them (the sender's own: SEND-002, the other's: SEND-003) prove that
    basic failing from now on: every later wait that stands on it is blocked at once instead of
    timing out (a fan-out wedged by a dead client, say)."""
    if time.monotonic() - gate.alive_at < target.receive_timeout:
        return  # proven alive moments ago: no probe storm when many tests time out
    chat = Chat(target)
    try:
        try:
            conn = await chat.connect("member", label="probe", node=0)
        except ConformanceFailure as exc:
            if exc.kind == "timeout":
                gate.trip(_line(after, exc.actual))
            return
        except (HarnessError, OSError) as exc:
            gate.trip(_line(after, str(exc)))
            return
        if gate.echo_seen:
            other = await chat.connect("member2", label="probe", node=0)
            lost, _ = await _round_trip(chat, conn, other, "probe")
            if lost:
                await chat.close_all()
                where = f"a probe after {after} timed out"
                for failure in lost:
                    gate.prove(
                        Finding(failure, where, chat.transcript.as_list(), chat.traffic.as_dict())
                    )
                return
        gate.alive_at = time.monotonic()
    except Exception:
        return
    finally:
        await chat.close_all()


def _line(after: str, why: str) -> str:
    return (
        f"the server stopped answering during {after} (a fresh connection: {why}); the tests "
        "after it were not run"
    )
