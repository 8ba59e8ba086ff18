"""The core's checks on lists of frames: no socket, no event loop (harness/core/checks.py)."""

from __future__ import annotations

import json
from typing import Any

from harness.core.checks import KEEP, Expect, Fail, Hit
from harness.core.failures import ConformanceFailure, ConformanceTimeout
from harness.core.frames import event_matching, is_error, mentions
from harness.spec import judge_server_frame

NEW: dict[str, Any] = {
    "type": "chat_message",
    "action": "new",
    "id": "0b7e7dd4-5a4c-4b1e-9a57-0d6d1b7c9a10",
    "user": "bob",
    "user_id": "5f0c6a55-6f6e-4f43-9d55-7c43f5b1c0a2",
    "body": "hello",
    "created": "2026-11-29T10:00:00Z",
    "edited": False,
    "updated": "2026-11-29T10:00:00.123+00:00",
    "userAvatar": None,
}
UPDATE: dict[str, Any] = {
    "type": "chat_message",
    "action": "update",
    "id": NEW["id"],
    "body": "changed",
    "edited": True,
    "updated": "2026-11-29T10:00:01Z",
}


def expect_hello(**extra: Any) -> Expect:
    return Expect(event_matching("new", body="hello"), "SEND-002", "the echo", "bob#1", **extra)


# --- Expect ---------------------------------------------------------------------------------


def test_a_stranger_frame_is_kept_and_the_match_hits() -> None:
    check = expect_hello()
    stranger = {**NEW, "body": "someone else's"}
    assert check.feed(stranger) is KEEP
    assert check.feed(NEW) == Hit(NEW)


def test_a_forbidden_frame_fails_its_own_requirement_before_anything_else() -> None:
    check = expect_hello(forbidden=mentions("secret-nonce"), forbidden_requirement="ISO-001")
    leaked = {**NEW, "body": "hello secret-nonce"}
    violation = ConformanceFailure("EVT-002", "valid", "invalid")
    step = check.feed(leaked, violation)
    assert isinstance(step, Fail)
    assert step.failure.requirement == "ISO-001"
    assert "bob#1 received" in step.failure.actual and "secret-nonce" in step.failure.actual


def test_a_forbidden_frame_without_its_own_requirement_fails_the_wait() -> None:
    step = expect_hello(forbidden=is_error).feed({"error": "Message not found."})
    assert isinstance(step, Fail) and step.failure.requirement == "SEND-002"


def test_a_schema_violation_fails_even_a_matching_frame() -> None:
    violation = ConformanceFailure("EVT-002", "valid", "invalid")
    step = expect_hello().feed(NEW, violation)
    assert step == Fail(violation)


def test_scan_finds_the_first_frame_that_ends_the_wait() -> None:
    buffer = [{**NEW, "body": "a"}, NEW, {"error": "x"}]
    assert expect_hello().scan(buffer) == (1, Hit(NEW))
    found = expect_hello(forbidden=is_error).scan([{"error": "x"}, NEW])
    assert found is not None and found[0] == 0 and isinstance(found[1], Fail)
    assert expect_hello().scan([{"error": "x"}]) is None


def test_a_watch_without_match_never_hits() -> None:
    watch = Expect(None, "ERR-001", "nothing of the kind", "carol#1", is_error)
    assert watch.feed(NEW) is KEEP
    assert isinstance(watch.feed({"error": "x"}), Fail)


def test_closed_and_timed_out_name_the_requirement_and_what_was_seen() -> None:
    check = expect_hello()
    closed = check.closed("close code 1011")
    assert (closed.requirement, closed.actual) == ("SEND-002", "bob#1 was closed (close code 1011)")
    late = check.timed_out(2.0, 3)
    assert isinstance(late, ConformanceTimeout)
    assert late.actual == "no answer within 2.0 s on bob#1; meanwhile 3 other frame(s)"


# --- judge_server_frame ---------------------------------------------------------------------


def test_a_valid_event_is_clean() -> None:
    judged = judge_server_frame(json.dumps(NEW))
    assert judged.frame == NEW and judged.violation is None and judged.observations == ()


def test_text_that_is_not_a_json_object_breaks_evt_001() -> None:
    for text in ("not json", "[1, 2]", '"a string"'):
        judged = judge_server_frame(text)
        assert judged.violation is not None and judged.violation.requirement == "EVT-001"
        assert judged.frame == text


def test_binary_frames_are_passed_on_unjudged() -> None:
    judged = judge_server_frame(b"\x00\x01")
    assert judged.frame == b"\x00\x01" and judged.violation is None


def test_an_unknown_action_breaks_evt_006() -> None:
    judged = judge_server_frame(json.dumps({**NEW, "action": "react"}))
    assert judged.violation is not None and judged.violation.requirement == "EVT-006"


def test_a_violation_at_a_field_also_breaks_its_specific_requirement() -> None:
    judged = judge_server_frame(json.dumps({**UPDATE, "edited": False}))
    assert judged.violation is not None
    assert judged.violation.requirements == ("EVT-003", "EDIT-002")
    missing = judge_server_frame(json.dumps({k: v for k, v in NEW.items() if k != "user_id"}))
    assert missing.violation is not None
    assert missing.violation.requirements == ("EVT-002", "SEND-004")


def test_extra_fields_are_observed_once_and_unknown_frames_noted() -> None:
    judged = judge_server_frame(json.dumps({**NEW, "room": "general"}))
    assert judged.violation is None
    assert judged.observations == (("EVT-007", "new events carry extra fields: room"),)
    assert judged.extra_fields == {"room"}
    again = judge_server_frame(json.dumps({**NEW, "room": "general"}), judged.extra_fields)
    assert again.observations == ()
    welcome = judge_server_frame(json.dumps({"type": "welcome"}))
    assert welcome.violation is None
    assert welcome.observations[0][0] == "EVT-007"
