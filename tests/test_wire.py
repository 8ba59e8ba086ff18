"""The wire-level verifiers (``settle``, ``sentinel``, ``expect_refused``) against an in-memory
server (tests/fakewire.py): each is shown to pass a server that behaves and to fail, naming the
right requirement, a server that does not."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from harness.core.failures import ConformanceFailure, ConformanceTimeout
from harness.core.frames import is_error
from harness.server.chat import Chat, Refusal
from tests.fakewire import BAD_TOKEN, FakeServer, run_scenario

T = TypeVar("T")


def run(scenario: Callable[[Chat], Awaitable[T]], server: FakeServer, **target: Any) -> T:
    return run_scenario(scenario, server.chat(**target))


async def bad_frame_then_settle(chat: Chat) -> bool:
    culprit, watcher = await chat.connect("member"), await chat.connect("member2")
    await culprit.send_json({"type": "delete"})
    await culprit.expect_error(None, requirement="ERR-003")  # its own answer
    return await chat.settle(culprit, [watcher], "ERR-001", is_error, "error frame")


# --- settle ---------------------------------------------------------------------------------


def test_settle_passes_when_the_error_stays_with_the_sender() -> None:
    assert run(bad_frame_then_settle, FakeServer()) is True


def test_settle_fails_an_error_broadcast_at_the_given_requirement() -> None:
    with pytest.raises(ConformanceFailure) as caught:
        run(bad_frame_then_settle, FakeServer(broadcast_errors=True))
    assert caught.value.requirement == "ERR-001"
    assert "member2" in caught.value.actual and "Message not found." in caught.value.actual


def test_settle_sends_the_sentinel_through_a_watcher_when_the_culprit_was_closed() -> None:
    chat_log: list[str] = []

    async def scenario(chat: Chat) -> bool:
        served = await bad_frame_then_settle(chat)
        chat_log.append(chat.transcript.render())
        return served

    assert run(scenario, FakeServer(close_on_bad=True)) is False
    assert "close 1003" in chat_log[0]
    # The sentinel went out on the watcher's connection after the culprit closed.
    assert "member2#1  ->" in chat_log[0].split("close 1003")[1]


def test_settle_still_fails_a_broadcast_when_the_culprit_was_closed() -> None:
    with pytest.raises(ConformanceFailure) as caught:
        run(bad_frame_then_settle, FakeServer(close_on_bad=True, broadcast_errors=True))
    assert caught.value.requirement == "ERR-001"


# --- sentinel -------------------------------------------------------------------------------


async def sentinel_round(chat: Chat) -> None:
    sender, other = await chat.connect("member"), await chat.connect("member2")
    await chat.sentinel(sender, [sender, other], "ISO-001", is_error, "error frame")


def test_sentinel_passes_when_nothing_forbidden_came_first() -> None:
    run(sentinel_round, FakeServer())


def test_a_sentinel_the_sender_never_gets_back_fails_the_echo_requirement() -> None:
    with pytest.raises(ConformanceTimeout) as caught:
        run(sentinel_round, FakeServer(echo=False))
    assert caught.value.requirement == "SEND-002"


def test_a_forbidden_frame_before_the_sentinel_fails() -> None:
    async def scenario(chat: Chat) -> None:
        sender, other = await chat.connect("member"), await chat.connect("member2")
        await sender.send_json({"type": "delete"})  # its error reaches every connection
        await chat.sentinel(sender, [other], "ERR-001", is_error, "error frame")

    with pytest.raises(ConformanceFailure) as caught:
        run(scenario, FakeServer(broadcast_errors=True))
    assert caught.value.requirement == "ERR-001"


# --- expect_refused -------------------------------------------------------------------------


def refuse(chat: Chat) -> Awaitable[Refusal]:
    return chat.expect_refused(
        BAD_TOKEN, requirement="AUTH-002", room=chat.slug("main"), sentinel_room="main"
    )


def test_a_refusal_at_the_handshake_is_recorded_with_its_style() -> None:
    observed: list[dict[str, list[str]]] = []

    async def scenario(chat: Chat) -> Refusal:
        refusal = await refuse(chat)
        observed.append(chat.observations)
        return refusal

    refusal = run(scenario, FakeServer(refuse="http"))
    assert (refusal.style, refusal.status) == ("http", 403)
    assert observed[0]["AUTH-010"] == ["HTTP 403 at the handshake"]


def test_a_close_right_after_the_handshake_is_a_refusal() -> None:
    refusal = run(refuse, FakeServer(refuse="close"))
    assert (refusal.style, refusal.close_code) == ("close", 4403)


def test_a_refusal_of_another_style_than_the_pinned_one_fails_auth_009() -> None:
    with pytest.raises(ConformanceFailure) as caught:
        run(refuse, FakeServer(refuse="close"), expect={"refusal": "http"})
    assert caught.value.requirement == "AUTH-009"


def test_a_refused_client_that_received_a_room_event_fails_with_auth_008() -> None:
    with pytest.raises(ConformanceFailure) as caught:
        run(refuse, FakeServer(refuse="close", greet_refused=True))
    assert caught.value.requirement == "AUTH-002"
    assert "AUTH-008" in caught.value.also


def test_an_accepted_client_that_gets_room_events_is_not_refused() -> None:
    with pytest.raises(ConformanceFailure) as caught:
        run(refuse, FakeServer(refuse=None))
    assert caught.value.requirement == "AUTH-002"
    assert "sentinel" in caught.value.actual


def test_a_client_that_stays_accepted_is_not_refused() -> None:
    async def scenario(chat: Chat) -> Refusal:
        return await chat.expect_refused(BAD_TOKEN, requirement="AUTH-002", room="general")

    with pytest.raises(ConformanceTimeout) as caught:
        run(scenario, FakeServer(refuse=None))
    assert caught.value.requirement == "AUTH-002"
    assert "still open" in caught.value.actual


# --- what a failed test leaves unread still counts in the traffic ---------------------------


def test_a_failed_test_counts_the_frames_it_never_read() -> None:
    """The traffic of a run says what the endpoint looks like (core/diagnosis); a frame that
    arrived on a connection the test never read again (the sender's own echo, while the test
    waited on an observer) is counted once the test failed, without being judged or logged."""
    from harness.server.calls import run_bounded

    chat = FakeServer().chat()

    async def test(chat: Chat) -> None:
        sender, observer = await chat.connect("member"), await chat.connect("member2")
        await sender.send_text("hello")
        await observer.expect_event("new", body="never sent", requirement="SEND-003")

    with pytest.raises(ConformanceFailure):
        run_bounded(test, {"chat": chat}, chat=chat, bound=10.0, requirement="SEND-003")
    # member2's event was read by the wait; member's own event only by the count afterwards.
    assert (chat.traffic.received, chat.traffic.chat_frames) == (2, 2)
    received = [e for e in chat.transcript.as_list() if e["dir"] == "<-"]
    assert len(received) == 1  # counted, not logged: the transcript ends at the failure
