"""Frame parsing and server frame encoding, without sockets."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from reference_server.config import ServerConfig
from reference_server.protocol import (
    BINARY,
    EMPTY,
    INVALID_JSON,
    NOT_FOUND,
    NOT_OBJECT,
    NOT_STRING,
    NOT_TEXT,
    UNKNOWN_TYPE,
    Command,
    Delete,
    Edit,
    FrameParser,
    Reject,
    SendText,
    format_timestamp,
)

MID = "123e4567-e89b-12d3-a456-426614174000"
EMOJI = "\U0001f600"  # outside the BMP: one code point, two UTF-16 units


def parse(frame: Any, *faults: str, **settings: Any) -> Command:
    parser = FrameParser(ServerConfig(faults=frozenset(faults), **settings))
    return parser.parse(frame if isinstance(frame, str | bytes) else json.dumps(frame))


def test_text_frame_with_timestamp_and_extra_fields_is_a_message() -> None:
    frame = {"type": "text", "message": "hi", "timestamp": "2024-01-01T12:00:00.000Z", "x": 1}
    assert parse(frame) == SendText("hi")


def test_text_frame_without_timestamp_is_accepted() -> None:
    assert parse({"type": "text", "message": "hi"}) == SendText("hi")


def test_frame_without_type_is_text() -> None:
    assert parse({"message": "hi"}) == SendText("hi")


def test_update_and_delete_frames_carry_a_canonical_message_id() -> None:
    upper = MID.upper()
    assert parse({"type": "update", "messageId": upper, "message": "new"}) == Edit(MID, "new")
    assert parse({"type": "delete", "messageId": upper}) == Delete(MID)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("{not json", INVALID_JSON),
        ("[" * 100_000, INVALID_JSON),
        (b"\x00\x01", BINARY),
        ([1, 2], NOT_OBJECT),
        ('"text"', NOT_OBJECT),
        ("null", NOT_OBJECT),
        ({"type": "shout", "message": "hi"}, UNKNOWN_TYPE),
        ({"type": 3, "message": "hi"}, UNKNOWN_TYPE),
        ({"type": "text"}, NOT_STRING),
        ({"type": "text", "message": 5}, NOT_STRING),
        ({"type": "text", "message": None}, NOT_STRING),
        ({"type": "text", "message": ""}, EMPTY),
        ('{"type": "text", "message": "a\\ud800"}', NOT_TEXT),
        ({"type": "update", "messageId": MID}, NOT_STRING),
        ({"type": "update", "messageId": MID, "message": ["x"]}, NOT_STRING),
        ({"type": "update", "messageId": "17", "message": "x"}, NOT_FOUND),
        ({"type": "delete", "messageId": "not-a-uuid"}, NOT_FOUND),
        ({"type": "delete", "messageId": 17}, NOT_FOUND),
        ({"type": "delete"}, NOT_FOUND),
    ],
)
def test_malformed_frames_are_rejected_with_an_error(frame: Any, error: str) -> None:
    assert parse(frame) == Reject(error)


def test_limit_counts_unicode_code_points() -> None:
    """Seed: "Message exceeds {max} characters."; characters are code points (SEND-009)."""
    assert parse({"message": EMOJI * 500}) == SendText(EMOJI * 500)
    assert parse({"message": "a" * 500}) == SendText("a" * 500)
    assert parse({"message": EMOJI * 501}) == Reject("Message exceeds 500 characters.")
    edit = {"type": "update", "messageId": MID, "message": EMOJI * 501}
    assert parse(edit) == Reject("Message exceeds 500 characters.")


def test_limit_and_its_error_follow_max_length() -> None:
    assert parse({"message": "a" * 10}, max_length=10) == SendText("a" * 10)
    assert parse({"message": "a" * 11}, max_length=10) == Reject("Message exceeds 10 characters.")


def test_whitespace_and_markup_are_kept() -> None:
    body = "  <b>x</b>\n\te\u0301 "
    assert parse({"message": body}) == SendText(body)


@pytest.mark.parametrize(
    ("faults", "frame", "expected"),
    [
        (("limit-low",), {"message": "a" * 500}, Reject("Message exceeds 500 characters.")),
        (("limit-high",), {"message": "a" * 501}, SendText("a" * 501)),
        (("limit-utf16",), {"message": EMOJI * 500}, Reject("Message exceeds 500 characters.")),
        (("length-error-text",), {"message": "a" * 501}, Reject("Message exceeds 500 chars.")),
        (("not-found-typo",), {"type": "delete", "messageId": "x"}, Reject("Message not found")),
        (("escape-body",), {"message": "<i>"}, SendText("&lt;i&gt;")),
        (("nonstring-body",), {"message": 5}, SendText("5")),
        (("unknown-type-broadcast",), {"type": "shout", "message": "hi"}, SendText("hi")),
        (("require-timestamp",), {"message": "hi"}, Reject("Timestamp is required.")),
        (("id-not-uuid",), {"type": "delete", "messageId": "17"}, Delete("17")),
        (("close-on-malformed",), "{", Reject(INVALID_JSON, 1003)),
        (("close-on-malformed",), "[]", Reject(NOT_OBJECT, 1003)),
        (("binary-close",), b"x", Reject(BINARY, 1003)),
    ],
)
def test_parser_faults_change_the_outcome(
    faults: tuple[str, ...], frame: Any, expected: Command
) -> None:
    assert parse(frame, *faults) == expected


MOMENT = datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("style", "text"),
    [
        ("z-micro", "2024-01-01T12:00:00.123456Z"),
        ("z-milli", "2024-01-01T12:00:00.123Z"),
        ("z-seconds", "2024-01-01T12:00:00Z"),
        ("offset-micro", "2024-01-01T12:00:00.123456+00:00"),
        ("offset-seconds", "2024-01-01T12:00:00+00:00"),
    ],
)
def test_timestamp_styles_are_rfc3339_utc(style: Any, text: str) -> None:
    assert format_timestamp(MOMENT, style) == text
    assert datetime.fromisoformat(text.replace("Z", "+00:00")).utcoffset() is not None


def test_error_frames_are_json_objects_unless_faulty() -> None:
    correct = ServerConfig().behaviour()
    faulty = ServerConfig(faults={"error-not-json"}).behaviour()
    assert json.loads(correct.error_frame(NOT_FOUND)) == {"error": "Message not found."}
    assert faulty.error_frame(NOT_FOUND) == "Error: Message not found."


def test_a_nonstring_body_is_stored_as_json_text_and_broadcast_as_its_value() -> None:
    config = ServerConfig(faults={"nonstring-body"})
    behaviour = config.behaviour()
    command = FrameParser(config, behaviour).parse(json.dumps({"message": {"a": [1]}}))
    assert isinstance(command, SendText)
    assert command.body == '{"a":[1]}'
    assert behaviour.event_body(command.body) == {"a": [1]}
    assert behaviour.event_body("5") == "5"  # a string body stays a string


def test_parser_never_raises_on_odd_input() -> None:
    parser = FrameParser(ServerConfig())
    odd = ["", " ", "\ud800", "1e999999", "9" * 5000, '{"type": "text", "message": "\\ud800"}']
    for frame in [*odd, str(uuid.uuid4())]:
        assert isinstance(parser.parse(frame), SendText | Reject)
