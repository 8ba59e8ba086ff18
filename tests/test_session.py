"""The session without I/O on lists of frames: no socket, no event loop, no clock
(harness/core/session.py). The pump (harness/server/conn.py) only feeds it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness import redact, spec
from harness.core.checks import Fail, Hit
from harness.core.connstate import ConnState, Kept, Overflow, echo_of
from harness.core.failures import ConformanceFailure, NotTested, ResourceLimit
from harness.core.frames import event_matching, is_error
from harness.core.gate import Gate
from harness.core.session import Refusal, Session
from harness.target import parse
from reference_server.demo import demo_target_dict

ID = "0b7e7dd4-5a4c-4b1e-9a57-0d6d1b7c9a10"


def event(body: str, action: str = "new", id: str = ID) -> str:
    frame: dict[str, Any] = {
        "type": "chat_message",
        "action": action,
        "id": id,
        "user": "bob",
        "user_id": "5f0c6a55-6f6e-4f43-9d55-7c43f5b1c0a2",
        "body": body,
        "created": "2026-11-29T10:00:00Z",
        "edited": action == "update",
        "updated": "2026-11-29T10:00:00Z",
        "userAvatar": None,
    }
    return json.dumps(frame)


def session(**limits: Any) -> Session:
    data = demo_target_dict("ws://fake.invalid/ws/chat/{host}/{room}")
    if limits:
        data["limits"] = limits
    return Session(parse(data, where="<test>"), redact.redact, spec.judge_server_frame)


def opened(s: Session, label: str = "bob", role: str = "member") -> ConnState:
    return s.accepted(s.conn_name(label), 101, s.account(role), s.slug("main"), 0, None)


def test_a_frame_waited_for_hits_and_a_strangers_frame_is_kept_unread() -> None:
    s = session()
    conn = opened(s)
    body = s.nonce("msg")
    conn.send(json.dumps(conn.text(body, None, {})), "text", now=0.0)
    wait = conn.wait(event_matching("new", body=body), "SEND-002", "the echo")
    stranger = conn.receive(event("someone else's"), 1.0, wait)
    assert isinstance(stranger, Kept) and len(conn.buffer) == 1
    assert s.transcript.entries[-1].unread
    hit = conn.receive(event(body), 2.0, wait)
    assert isinstance(hit, Hit) and hit.frame["body"] == body
    assert s.last_frame_at == 2.0
    assert (s.traffic.sent, s.traffic.received, s.traffic.chat_frames) == (1, 2, 2)


def test_a_buffered_frame_ends_the_next_wait_and_is_no_longer_unread() -> None:
    s = session()
    conn = opened(s)
    body = s.nonce("msg")
    conn.receive(event(body), 1.0, conn.wait(None, "", "nothing"))
    entry = s.transcript.entries[-1]
    assert entry.unread
    step = conn.scan(conn.wait(event_matching("new", body=body), "SEND-002", "it"), 3.0)
    assert isinstance(step, Hit) and len(conn.buffer) == 0 and not entry.unread


def test_a_frame_breaking_its_schema_fails_the_wait_only_when_the_test_owns_it() -> None:
    s = session()
    conn = opened(s)
    mine = s.nonce("msg")
    wait = conn.wait(event_matching("new", body="never"), "SEND-002", "it")
    broken = json.loads(event("someone else's"))
    del broken["user"]
    assert isinstance(conn.receive(json.dumps(broken), 1.0, wait), Kept)
    assert any("not judged" in text for texts in s.observations.values() for text in texts)
    broken["body"] = mine
    step = conn.receive(json.dumps(broken), 2.0, wait)
    assert isinstance(step, Fail) and step.failure.requirement.startswith("EVT-")


def test_a_forbidden_frame_names_the_forbidding_requirement() -> None:
    s = session()
    conn = opened(s)
    secret = s.nonce("secret")
    wait = conn.wait(
        event_matching("new", body="x"), "SEND-002", "it", lambda f: secret in str(f), "ISO-001"
    )
    step = conn.receive(event(f"leak {secret}"), 1.0, wait)
    assert isinstance(step, Fail) and step.failure.requirement == "ISO-001"


def test_past_the_buffer_bound_the_connection_is_let_go() -> None:
    s = session(max_buffered_frames=2)
    conn = opened(s)
    wait = conn.wait(None, "", "nothing")
    steps = [conn.receive(event(f"noise-{i}"), float(i), wait) for i in range(3)]
    assert [type(x) for x in steps] == [Kept, Kept, Overflow]
    assert isinstance(conn.limit, ResourceLimit) and "max_buffered_frames" in conn.limit.actual
    assert conn.closed is not None and len(conn.buffer) == 0


def test_a_refused_frame_over_the_size_bound_ends_the_connection_with_a_limit() -> None:
    s = session()
    conn = opened(s)
    limit = conn.ended(None, too_big=(10**9, 4096))
    assert isinstance(limit, ResourceLimit) and conn.closed is not None
    assert conn.ended(1000, "bye") is limit  # raised again by every later read


def test_an_end_is_recorded_once_with_the_applications_error() -> None:
    s = session()
    conn = opened(s)
    assert conn.ended(1011, "", app_error="ValueError: boom") is None
    assert conn.ended(1000, "later") is None
    assert conn.closed == (1011, "")
    texts = [e.text for e in s.transcript.entries]
    assert "close 1011 ''" in texts and "ValueError: boom" in texts
    assert conn.closed_text() == "close code 1011"


def test_an_event_waits_stands_on_its_senders_and_the_origin_proves_silence() -> None:
    s = session()
    bob = opened(s)
    carol = opened(s, "carol", "member2")
    body = s.nonce("msg")
    bob.text(body, None, {})
    own = bob.event_wait("new", None, body)
    assert own.basic == "SEND-002" and own.origin is bob and own.key == ("new", body)
    theirs = carol.event_wait("new", None, body)
    assert theirs.basic == "SEND-003" and theirs.origin is bob
    assert "on carol#1" in theirs.expected
    bob.update(ID, "changed", "2026-11-29T10:00:00Z", {})
    edit = carol.event_wait("update", ID, None)
    assert edit.basic == "SEND-003" and edit.key == ("edit", ID)
    assert carol.stands_on(bob, carol) == "SEND-003" and bob.stands_on(bob) == "SEND-002"
    unknown = carol.event_wait("new", None, "nobody sent it")
    assert unknown.basic is None and unknown.origin is None


def test_an_edit_drops_the_sentinel_of_the_message() -> None:
    s = session()
    bob = opened(s)
    bob.sentinels[("edit", ID)] = "after-1"
    bob.delete(ID, "2026-11-29T10:00:00Z", {})
    assert ("edit", ID) not in bob.sentinels and ID in bob.edited


def test_a_second_connection_of_an_account_in_its_room_is_marked() -> None:
    s = session()
    first = opened(s)
    second = opened(s)
    assert not first.account_twice and second.account_twice


def test_silence_proven_by_a_sentinel_is_a_failure_marked_awaited() -> None:
    s = session()
    conn = opened(s)
    conn.receive('{"error": "Message not found."}', 1.0, conn.wait(None, "", "nothing"))
    failure = conn.silence("EDIT-001", "an update event")
    assert isinstance(failure, ConformanceFailure) and failure.frame_awaited
    assert "the sentinel sent after it" in failure.actual and "Message not found." in failure.actual


def test_a_refusal_under_the_rate_limit_is_not_tested() -> None:
    s = session()
    gate = Gate()
    gate.rate_limit, gate.rate_limit_error = 30.0, "Slow down."
    s.gate = gate
    conn = opened(s)
    conn.receive('{"error": "Slow down."}', 1.0, conn.wait(None, "", "nothing"))
    with pytest.raises(NotTested, match="rate limit"):
        conn.silence("EDIT-001", "an update event")


def test_sends_are_paced_under_the_rate_limit() -> None:
    s = session(max_frames_per_second=10)
    conn = opened(s)
    delays = [conn.send("x", "other", now=0.0) for _ in range(3)]
    interval = 1 / (0.8 * 10)
    assert delays == pytest.approx([0.0, interval, 2 * interval])
    assert conn.send("x", "other", now=100.0) == 0.0


def test_a_refusal_is_observed_and_its_style_pinned() -> None:
    data = demo_target_dict("ws://fake.invalid/ws/chat/{host}/{room}")
    data["expect"] = {"refusal": "http"}
    s = Session(parse(data, where="<test>"), redact.redact, spec.judge_server_frame)
    s.check_style(Refusal("http", status=403), "AUTH-001")
    assert s.observations["AUTH-010"] == ["HTTP 403 at the handshake"]
    with pytest.raises(ConformanceFailure) as caught:
        s.check_style(Refusal("close", close_code=4403), "AUTH-001")
    assert caught.value.requirement == "AUTH-009"


def test_an_accepted_connection_that_had_to_be_refused() -> None:
    s = session()
    conn = opened(s)
    with pytest.raises(ConformanceFailure) as caught:
        s.refused_after_accept(conn, None, "AUTH-001")
    assert "still open" in caught.value.actual
    assert s.refused_after_accept(conn, (4403, ""), "AUTH-001").close_code == 4403
    conn.receive(event("hello"), 1.0, conn.wait(None, "", "nothing"))
    with pytest.raises(ConformanceFailure) as caught:
        s.refused_after_accept(conn, (4403, ""), "AUTH-001")
    assert caught.value.also == ("AUTH-008",)


def test_the_transcript_is_redacted_by_the_session_s_mask() -> None:
    s = Session(
        session().target, lambda text: text.replace("hunter2", "***"), spec.judge_server_frame
    )
    conn = opened(s)
    conn.send('{"type":"text","message":"hunter2"}', "text", now=0.0)
    assert "hunter2" not in s.transcript.entries[-1].text


def test_echo_of_and_is_error() -> None:
    assert echo_of(json.loads(event("a")), "a") and not echo_of({"error": "a"}, "a")
    assert is_error({"error": "x"})


def test_frames_are_judged_by_the_judge_the_session_is_given() -> None:
    judged: list[str | bytes] = []

    def judge(data: str | bytes, seen: Any) -> Any:
        judged.append(data)
        return spec.judge_server_frame(data, seen)

    s = Session(session().target, redact.redact, judge)
    conn = opened(s)
    conn.receive(event("hello"), 1.0, conn.wait(None, "", "nothing"))
    assert judged == [event("hello")]
