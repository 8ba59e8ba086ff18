"""The preflight before the suites, and the breaker's health probe (:mod:`harness.core.gate`).

Both talk to the target through a :class:`~harness.client.Chat` of their own; what they find goes
into the run's :class:`~harness.core.gate.Gate`, which judges without I/O.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from harness.client import Chat, Conn
from harness.core.failures import ConformanceFailure, HarnessError, NotTested
from harness.core.gate import Gate
from harness.target import Target


async def preflight(target: Target, gate: Gate) -> None:
    """Try the basics once; each that fails goes into ``gate.failed`` with its evidence.

    Bounded by about one ``connect_timeout`` and one ``receive_timeout``: the echo and the
    fan-out are awaited together. A basic the target cannot exercise (no token for an account)
    is left to the suites, which say why it is not tested."""
    chat = Chat(target)
    try:
        try:
            sender = await chat.connect("member", requirement="CONN-001", label="preflight")
            other = await chat.connect("member2", requirement="CONN-001", label="preflight")
        except ConformanceFailure as exc:
            if exc.requirement == "CONN-001":
                gate.failed["CONN-001"] = exc
            return
        body = chat.nonce("preflight")
        await sender.send_text(body)
        outcomes: list[object] = await asyncio.gather(
            other.expect_event("new", body=body, requirement="SEND-003"),
            sender.expect_event("new", body=body, requirement="SEND-002"),
            return_exceptions=True,
        )
        fanout, echo = outcomes
        for requirement, outcome in (("SEND-003", fanout), ("SEND-002", echo)):
            if isinstance(outcome, ConformanceFailure) and outcome.requirement == requirement:
                gate.failed[requirement] = outcome
            elif isinstance(outcome, BaseException) and not isinstance(outcome, ConformanceFailure):
                raise outcome
        gate.echo_seen = not isinstance(echo, BaseException)
        if gate.echo_seen and sender.closed is None:
            await _unknown_edit(chat, sender, gate)
    except HarnessError:
        raise  # the target is unreachable: the run ends with that line
    except Exception:
        return
    finally:
        await chat.close_all()
        gate.transcript = chat.transcript.as_list()
        gate.traffic = chat.traffic.as_dict()


async def _unknown_edit(chat: Chat, sender: Conn, gate: Gate) -> None:
    chat.gate = gate  # the error wait proves silence with a sentinel (the echo works)
    await sender.send_update(str(uuid.uuid4()), chat.nonce("preflight-edit"))
    try:
        await sender.expect_error(None, requirement="EDIT-007")
    except ConformanceFailure as exc:
        if exc.requirement == "EDIT-007":
            gate.failed["EDIT-007"] = exc


async def still_answers(target: Target, gate: Gate) -> str | None:
    """The breaker's probe: None when a fresh connection is accepted and (if the preflight saw
    the echo) its own event comes back; else what went wrong, in a few words."""
    if time.monotonic() - gate.alive_at < target.receive_timeout:
        return None  # proven alive moments ago: no probe storm when many tests time out
    chat = Chat(target)
    try:
        conn = await chat.connect("member", label="probe")
        if gate.echo_seen:
            body = chat.nonce("probe")
            await conn.send_text(body)
            await conn.expect_event("new", body=body, requirement="SEND-002")
    except NotTested:
        return None
    except ConformanceFailure as exc:
        return exc.actual
    except (HarnessError, OSError) as exc:
        return str(exc)
    except Exception:
        return None
    finally:
        await chat.close_all()
    gate.alive_at = time.monotonic()
    return None
