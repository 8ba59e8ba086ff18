"""The pure checks of harness/core/frames.py and failures.py: no I/O, tested on frames directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from harness import catalogue, spec
from harness.core.failures import ConformanceFailure, ConformanceTimeout, HarnessError
from harness.core.frames import (
    check_equal,
    check_error_text,
    check_not_earlier,
    event_matching,
    is_error,
    is_event,
    mentions,
    parse_timestamp,
    show,
)

MESSAGE_ID = "6f1c3a52-0000-4000-8000-000000000001"
NEW: dict[str, Any] = {
    "type": "chat_message",
    "action": "new",
    "id": MESSAGE_ID,
    "user": "bob",
    "user_id": "u-2",
    "body": "hello n-1234",
    "created": "2024-05-01T10:00:00Z",
    "edited": False,
    "updated": "2024-05-01T10:00:00Z",
    "userAvatar": None,
}
UPDATE: dict[str, Any] = {
    "type": "chat_message",
    "action": "update",
    "id": MESSAGE_ID,
    "body": "edited",
    "edited": True,
    "updated": "2024-05-01T10:00:01Z",
}
DELETE: dict[str, Any] = {"type": "chat_message", "action": "delete", "id": MESSAGE_ID}
ERROR = {"error": "Message not found."}


# --- parse_timestamp ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00+00:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        (
            "2024-05-01T10:00:00-05:30",
            datetime(2024, 5, 1, 10, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
        ("2024-05-01T10:00:00.123Z", datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)),
        ("2024-05-01T10:00:00.123456Z", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-01T10:00:00.123456789Z", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-01T10:00:00.5+02:00", datetime(2024, 5, 1, 8, 0, 0, 500000, tzinfo=UTC)),
        ("2024-05-01t10:00:00z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01t10:00:00.120z", datetime(2024, 5, 1, 10, 0, 0, 120000, tzinfo=UTC)),
    ],
    ids=[
        "Z",
        "+00:00",
        "-05:30",
        "3-digits",
        "6-digits",
        "9-digits",
        "1-digit-offset",
        "lower-t-z",
        "lower-fraction",
    ],
)
def test_parse_timestamp_accepts_rfc3339(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed is not None and parsed.tzinfo is not None


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T10:00:00",  # no zone
        "2024-05-01T10:00:00.123456",  # no zone, with a fraction
        "2024-05-01 10:00:00Z",  # space separator
        "2024-05-01 10:00:00+00:00",
        "2024-05-01",
        "",
        "now",
        "yesterday at noon, UTC",
        "2024-05-01T10:00:00.Z",  # a dot with no digits
        "2024-13-01T10:00:00Z",  # month 13
        "2024-02-30T10:00:00Z",
        "2024-05-01T25:00:00Z",
        "2024-05-01T10:00:00+25:00",
    ],
)
def test_parse_timestamp_rejects_what_is_not_rfc3339(text: str) -> None:
    assert parse_timestamp(text) is None


@pytest.mark.parametrize("value", [None, 0, 1714557600, 1.5, b"2024-05-01T10:00:00Z", [], {}])
def test_parse_timestamp_rejects_non_strings(value: Any) -> None:
    assert parse_timestamp(value) is None


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T10:00+00:00",
        "2024-W18-3T10:00:00+00:00",
        "2024-05-01T100000+00:00",
        "2024-05-01T10:00:00,123Z",
        "2024-05-01T10:00:00+0000",
        "2024-05-01T10:00:00+00",
        "2024-05-01T10:00:00.1x+00:00",
    ],
)
def test_parse_timestamp_rejects_iso8601_forms_that_are_not_rfc3339(text: str) -> None:
    assert parse_timestamp(text) is None


# --- check_not_earlier --------------------------------------------------------------------

CREATED = "2024-05-01T10:00:00.000Z"


@pytest.mark.parametrize(
    "updated",
    [
        "2024-05-01T10:00:00Z",  # equal
        "2024-05-01T10:00:00.000000+00:00",  # equal, other form
        "2024-05-01T10:00:03.5Z",  # later
        "2024-05-01T11:00:00+01:00",  # equal, other zone
        "2024-05-01T09:59:59.500Z",  # 0.5 s earlier: clock granularity
        "2024-05-01T09:59:59Z",  # 1 s earlier: the edge of the slack
    ],
)
def test_check_not_earlier_passes_within_the_slack(updated: str) -> None:
    check_not_earlier("EDIT-004", CREATED, updated)


@pytest.mark.parametrize(
    "updated", ["2024-05-01T09:59:58Z", "2024-05-01T04:59:58-05:00", "2024-04-30T10:00:00Z"]
)
def test_check_not_earlier_fails_beyond_the_slack(updated: str) -> None:
    with pytest.raises(ConformanceFailure) as info:
        check_not_earlier("EDIT-004", CREATED, updated)
    failure = info.value
    assert failure.requirement == "EDIT-004"
    assert "[EDIT-004]" in str(failure)
    assert "s earlier" in failure.actual


def test_check_not_earlier_slack_is_configurable() -> None:
    check_not_earlier("EDIT-004", CREATED, "2024-05-01T09:59:50Z", slack_s=10.0)
    with pytest.raises(ConformanceFailure):
        check_not_earlier("EDIT-004", CREATED, "2024-05-01T09:59:59.900Z", slack_s=0.0)


@pytest.mark.parametrize(
    ("created", "updated"), [(CREATED, "later"), ("soon", CREATED), (None, CREATED)]
)
def test_check_not_earlier_fails_on_an_unparseable_timestamp(created: Any, updated: Any) -> None:
    with pytest.raises(ConformanceFailure) as info:
        check_not_earlier("EDIT-004", created, updated)
    assert info.value.expected == "RFC 3339 date-times with a time zone"
    assert repr(updated) in info.value.actual


# --- check_error_text, check_equal --------------------------------------------------------


def test_check_error_text_passes_on_the_exact_text() -> None:
    check_error_text("ERR-003", "Message not found.", ERROR)


@pytest.mark.parametrize(
    "frame",
    [
        {"error": "message not found."},
        {"error": "Message not found"},
        {"error": "Message not found. "},
        {"detail": "Message not found."},
        NEW,
        "Message not found.",
        None,
    ],
)
def test_check_error_text_fails_on_anything_else(frame: Any) -> None:
    with pytest.raises(ConformanceFailure) as info:
        check_error_text("ERR-003", "Message not found.", frame)
    assert info.value.requirement == "ERR-003"
    assert info.value.expected == 'error frame {"error": "Message not found."}'
    assert info.value.actual.startswith("error frame ")


def test_check_equal() -> None:
    check_equal("EDIT-002", "edited", True, True)
    with pytest.raises(ConformanceFailure) as info:
        check_equal("EDIT-002", "edited", True, "true")
    assert (info.value.expected, info.value.actual) == ("edited = True", "edited = 'true'")


# --- predicates ---------------------------------------------------------------------------


def test_is_event() -> None:
    assert is_event(NEW) and is_event(UPDATE) and is_event(DELETE)
    assert is_event(NEW, "new") and not is_event(NEW, "update")
    assert is_event(DELETE, "delete")
    assert not is_event(ERROR)
    assert not is_event({"type": "text", "message": "hi"})
    assert not is_event('{"type": "chat_message"}')
    assert not is_event(None)


def test_is_error() -> None:
    assert is_error(ERROR)
    assert is_error({"error": "", "extra": 1})
    assert not is_error(NEW)
    assert not is_error({"type": "chat_message", "action": "new", "error": "x"})
    assert not is_error("error")
    assert not is_error(["error"])


def test_event_matching() -> None:
    assert event_matching("new")(NEW)
    assert event_matching("new", id=MESSAGE_ID)(NEW)
    assert event_matching("new", body="hello n-1234")(NEW)
    assert event_matching("new", id=MESSAGE_ID, body="hello n-1234")(NEW)
    assert not event_matching("new", id="other")(NEW)
    assert not event_matching("new", body="hello")(NEW)  # exact, not a substring
    assert not event_matching("update", id=MESSAGE_ID)(NEW)
    assert event_matching("update", id=MESSAGE_ID, body="edited")(UPDATE)
    assert not event_matching("delete")(ERROR)
    assert not event_matching("delete", id=MESSAGE_ID)({"action": "delete", "id": MESSAGE_ID})


def test_mentions() -> None:
    assert mentions("n-1234")(NEW)
    assert mentions("zzz", MESSAGE_ID)(DELETE)
    assert not mentions("n-9999")(NEW)
    assert mentions("n-1234")("raw text n-1234")
    assert not mentions("")(NEW)  # an empty needle matches nothing
    assert not mentions()(NEW)
    assert not mentions("abc")(b"abc")  # binary frames are shown by size only


def test_show_is_compact_and_bounded() -> None:
    assert show({"a": 1, "b": [1, 2]}) == '{"a":1,"b":[1,2]}'
    assert show(b"\x00\x01") == "<binary 2 bytes>"
    assert show("é") == "é"
    long = show("x" * 1000, limit=50)
    assert long == "x" * 49 + "… (1,000 characters)"  # the start, and the full length


# --- failures -----------------------------------------------------------------------------


def test_conformance_failure_carries_id_statement_expected_actual_and_also() -> None:
    statement = catalogue.load()["EVT-003"].statement
    failure = ConformanceFailure(
        "EVT-003", "edited = true", "edited = false", also=("EDIT-002", "EVT-003", "SEND-005")
    )
    assert isinstance(failure, AssertionError)
    assert failure.kind == "wrong answer"
    assert failure.statement == ""  # the core knows ids; the statement is the catalogue's
    assert statement not in str(failure)
    assert spec.stated(failure) is failure and failure.statement == statement
    assert failure.also == ("EDIT-002", "SEND-005")  # the requirement itself is not repeated
    assert failure.requirements == ("EVT-003", "EDIT-002", "SEND-005")
    message = str(failure)
    assert message.startswith("[EVT-003] (also EDIT-002, SEND-005) ")
    assert statement in message
    assert "expected: edited = true" in message
    assert "actual:   edited = false" in message


def test_conformance_failure_without_also() -> None:
    failure = ConformanceFailure("SEND-002", "an echo", "nothing")
    assert failure.also == ()
    assert failure.requirements == ("SEND-002",)
    assert "(also" not in str(failure)


def test_conformance_failure_of_an_unknown_id_has_no_statement() -> None:
    failure = spec.stated(ConformanceFailure("NOPE-001", "x", "y"))
    assert failure.statement == ""
    assert str(failure).startswith("[NOPE-001]")


def test_conformance_timeout_is_a_failure_of_kind_timeout() -> None:
    timeout = ConformanceTimeout("CONN-001", "a handshake answer", "no answer within 5.0 s")
    assert isinstance(timeout, ConformanceFailure)
    assert timeout.kind == "timeout"
    assert timeout.requirement == "CONN-001"
    assert ConformanceFailure.kind == "wrong answer"


def test_harness_error_is_not_a_conformance_failure() -> None:
    assert not issubclass(HarnessError, AssertionError)
