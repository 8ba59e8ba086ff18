"""Frame checks of client-check (CLIENT-008), and the reference client's frames against them."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from harness.client.frames import inspect_frame
from harness.core.frames import now_rfc3339
from reference_client import delete_frame, text_frame, update_frame

MESSAGE_ID = "123e4567-e89b-12d3-a456-426614174000"


def test_reference_client_frames_validate() -> None:
    for frame, schema in (
        (text_frame("Hello world!"), "client/text"),
        (update_frame(MESSAGE_ID, "Updated message content"), "client/update"),
        (delete_frame(MESSAGE_ID), "client/delete"),
    ):
        check = inspect_frame(json.dumps(frame))
        assert (check.schema, check.violations) == (schema, ())


def test_reference_timestamps_look_like_the_seed() -> None:
    moment = dt.datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
    assert now_rfc3339(at=moment) == "2024-01-01T12:00:00.123Z"
    now = now_rfc3339()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", now)
    assert dt.datetime.fromisoformat(now).tzinfo is not None


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (json.dumps({"type": "text", "text": "hi"}), "'message' is a required property"),
        (json.dumps({"type": "text", "message": 42}), "/message"),
        (json.dumps({"type": "delete", "messageId": "7"}), "/messageId"),
        (json.dumps({"type": "text", "message": "hi", "timestamp": "yesterday"}), "/timestamp"),
        (json.dumps({"type": "shout", "message": "hi"}), "unknown `type`"),
        (json.dumps({"message": "hi"}), "no `type`"),
        (json.dumps(["text", "hi"]), "not a JSON object"),
        ("{not json", "not JSON"),
        (b"\x00\x01", "binary frame"),
    ],
    ids=[
        "missing-message",
        "message-not-string",
        "message-id-not-uuid",
        "bad-timestamp",
        "unknown-type",
        "no-type",
        "array",
        "not-json",
        "binary",
    ],
)
def test_invalid_frames_are_named(data: str | bytes, fragment: str) -> None:
    check = inspect_frame(data)
    assert check.violations
    assert any(fragment in v for v in check.violations), check.violations
