"""Robustness to bad frames (protocol notes: open points).

MUST: the room's other connections stay open and served and nothing is broadcast. SHOULD: the
sender gets an error frame (any text, unless the catalogue names one) and stays connected.
The culprit is the member; a second participant watches and posts the sentinel.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness import spec
from harness.core.failures import ConformanceFailure
from harness.core.frames import is_event, mentions
from harness.server.chat import Chat, Conn

requirement = pytest.mark.requirement


async def _others_unaffected(
    chat: Chat, culprit: Conn, watcher: Conn, nonce: str, req: str
) -> None:
    """The watcher still gets events and got nothing the culprit's frame caused; neither did
    the culprit's own connection."""
    forbidden = mentions(nonce)
    await chat.settle(culprit, [watcher], req, forbidden, "event caused by the bad frame")
    for frame in culprit.buffer:
        if forbidden(frame) and is_event(frame) and chat.owns(frame):
            raise ConformanceFailure(req, "nothing broadcast", f"{culprit.name} received {frame}")


async def _answered_and_open(culprit: Conn, req: str, *, text: str | None = None) -> None:
    await culprit.expect_error(text, requirement=req)
    await culprit.is_served(req)


NOT_JSON = ["{not json", "text", '{"type": "text", "message": ', "\ufeff{}"]


@requirement("ROBUST-001")
@pytest.mark.parametrize("index", range(len(NOT_JSON)))
async def test_not_json_leaves_the_room_unaffected(chat: Chat, index: int) -> None:
    culprit, watcher = await chat.connect("member"), await chat.connect("member2")
    nonce = chat.nonce("garbage")
    await culprit.send_raw(NOT_JSON[index] + nonce)
    await _others_unaffected(chat, culprit, watcher, nonce, "ROBUST-001")


@requirement("ROBUST-002")
async def test_not_json_is_answered_with_an_error(chat: Chat) -> None:
    culprit = await chat.connect("member")
    await culprit.send_raw("{not json " + chat.nonce("garbage"))
    await _answered_and_open(culprit, "ROBUST-002")


NON_OBJECTS: list[Any] = [["text", "hi"], "a string", 42, None, True]


@requirement("ROBUST-003")
@pytest.mark.parametrize("value", NON_OBJECTS, ids=["array", "string", "number", "null", "bool"])
async def test_json_non_object_leaves_the_room_unaffected(chat: Chat, value: Any) -> None:
    culprit, watcher = await chat.connect("member"), await chat.connect("member2")
    nonce = chat.nonce("nonobj")
    await culprit.send_raw(json.dumps(value))
    carrier = (
        [*value, nonce]
        if isinstance(value, list)
        else nonce
        if isinstance(value, str)
        else [value, nonce]
    )
    await culprit.send_raw(json.dumps(carrier))
    await _others_unaffected(chat, culprit, watcher, nonce, "ROBUST-003")


@requirement("ROBUST-004")
async def test_json_non_object_is_answered_with_an_error(chat: Chat) -> None:
    culprit = await chat.connect("member")
    await culprit.send_raw(json.dumps(["text", chat.nonce("array")]))
    await _answered_and_open(culprit, "ROBUST-004")


@requirement("ROBUST-005")
async def test_binary_frame_leaves_the_room_unaffected(chat: Chat) -> None:
    culprit, watcher = await chat.connect("member"), await chat.connect("member2")
    nonce = chat.nonce("binary")
    await culprit.send_raw(json.dumps({"type": "text", "message": nonce}).encode())
    await culprit.send_raw(b"\xff\xfe\x00" + nonce.encode())
    await _others_unaffected(chat, culprit, watcher, nonce, "ROBUST-005")


@requirement("ROBUST-006")
async def test_binary_frame_keeps_the_sender_connected(chat: Chat) -> None:
    culprit = await chat.connect("member")
    await culprit.send_raw(b"\xff\xfe\x00binary")
    await culprit.is_served("ROBUST-006")


@requirement("ROBUST-007")
async def test_unknown_type_broadcasts_nothing(chat: Chat) -> None:
    culprit, watcher = await chat.connect("member"), await chat.connect("member2")
    nonce = chat.nonce("shout")
    await culprit.send_json({"type": "shout", "message": nonce})
    await _others_unaffected(chat, culprit, watcher, nonce, "ROBUST-007")


@requirement("ROBUST-008")
async def test_unknown_type_keeps_the_sender_connected(chat: Chat) -> None:
    culprit = await chat.connect("member")
    await culprit.send_json({"type": "shout", "message": chat.nonce("shout")})
    await culprit.is_served("ROBUST-008")


@requirement("ROBUST-009")
async def test_missing_type_is_text_or_an_error(chat: Chat) -> None:
    culprit = await chat.connect("member")
    nonce = chat.nonce("untyped")
    await culprit.send_json({"message": nonce})
    answer = await culprit.wait_for(
        lambda f: (
            (is_event(f, "new") and f.get("body") == nonce)
            or (isinstance(f, dict) and "error" in f)
        ),
        requirement="ROBUST-009",
        expected="a new event with the message, or an error frame",
        basic="SEND-002",  # the answer may be its own event
    )
    chat.observe("ROBUST-009", "treated as text" if is_event(answer) else f"answered {answer}")
    await culprit.is_served("ROBUST-009")


BAD_MESSAGES: list[tuple[str, dict[str, Any]]] = [
    ("text-missing", {"type": "text"}),
    ("text-number", {"type": "text", "message": 42}),
    ("text-null", {"type": "text", "message": None}),
    ("text-object", {"type": "text", "message": {"body": "x"}}),
    ("text-array", {"type": "text", "message": ["x"]}),
]


def _bad_message(chat: Chat, case: str) -> dict[str, Any]:
    """The frame of ``case``, with a value unique to the test where the frame allows one: a
    broadcast of ``42`` could be anybody's (another run in the room), a broadcast of the test's
    own 16-digit number is the test's. ``null`` and a missing message cannot be told apart."""
    frame = dict(dict(BAD_MESSAGES)[case])
    message = frame.get("message")
    if isinstance(message, int):
        frame["message"] = chat.unique_int()
    elif isinstance(message, dict):
        frame["message"] = {**message, "body": chat.nonce("object")}
    elif isinstance(message, list):
        frame["message"] = [*message, chat.nonce("array")]
    return frame


def _non_string_body(frame: Any) -> bool:
    return is_event(frame) and "body" in frame and not isinstance(frame["body"], str)


@requirement("ROBUST-010")
@pytest.mark.parametrize("case", [c for c, _ in BAD_MESSAGES])
async def test_non_string_message_never_becomes_a_body(chat: Chat, case: str) -> None:
    culprit, watcher = await chat.connect("member"), await chat.connect("member2")
    frame = _bad_message(chat, case)
    frame["nonce"] = chat.nonce("bad-message")
    await culprit.send_json(frame)
    await chat.settle(
        culprit, [watcher], "ROBUST-010", _non_string_body, "event with a non-string body"
    )


@requirement("ROBUST-010")
async def test_non_string_edit_never_becomes_a_body(chat: Chat) -> None:
    author, watcher = await chat.connect("member"), await chat.connect("member2")
    message = await chat.post(author, observers=[watcher])
    number = chat.unique_int()
    await author.send_json({"type": "update", "messageId": message["id"], "message": number})
    await chat.settle(
        author, [watcher], "ROBUST-010", _non_string_body, "event with a non-string body"
    )


@requirement("ROBUST-011")
@pytest.mark.parametrize("case", [c for c, _ in BAD_MESSAGES])
async def test_non_string_message_is_answered_with_an_error(chat: Chat, case: str) -> None:
    culprit = await chat.connect("member")
    await culprit.send_json(_bad_message(chat, case))
    await culprit.expect_error(None, requirement="ROBUST-011")


@requirement("ROBUST-012")
@pytest.mark.parametrize("kind", ["update", "delete", "update-missing", "delete-missing"])
async def test_bad_message_id_broadcasts_nothing(chat: Chat, kind: str) -> None:
    culprit, watcher = await chat.connect("member"), await chat.connect("member2")
    nonce = chat.nonce("bad-id")
    frame: dict[str, Any] = {"type": kind.split("-")[0], "nonce": nonce}
    if kind.startswith("update"):
        frame["message"] = nonce
    # The word and the number unique to the test: a delete event carries nothing but the id.
    bad_ids = [f"not-a-uuid-{chat.nonce('id')}", chat.unique_int(), "", None]
    if not kind.endswith("missing"):
        for bad in bad_ids:
            await culprit.send_json({**frame, "messageId": bad})
    else:
        await culprit.send_json(frame)

    def touched(f: Any) -> bool:
        return (
            is_event(f)
            and f.get("action") in ("update", "delete")
            and (f.get("id") in bad_ids or mentions(nonce)(f))
        )

    await chat.settle(culprit, [watcher], "ROBUST-012", touched, "event for a bad messageId")


@requirement("ROBUST-013")
@pytest.mark.parametrize("kind", ["update", "delete"])
async def test_bad_message_id_is_not_found(chat: Chat, kind: str) -> None:
    culprit = await chat.connect("member")
    frame: dict[str, Any] = {"type": kind, "messageId": "not-a-uuid"}
    if kind == "update":
        frame["message"] = chat.nonce("bad-id")
    await culprit.send_json(frame)
    await _answered_and_open(culprit, "ROBUST-013", text=spec.ERRORS.not_found)


def _oversized(chat: Chat) -> str:
    size = (chat.target.max_frame_bytes or 1024 * 1024) + 1
    head = json.dumps({"type": "text", "message": chat.nonce("oversized") + " "})[:-2]
    return head + "x" * (size - len(head) - 2) + '"}'


@requirement("ROBUST-014")
async def test_oversized_frame_leaves_the_room_unaffected(chat: Chat) -> None:
    chat.needs("network")  # the largest frame is the ASGI server's limit, not the application's
    culprit, watcher = await chat.connect("member"), await chat.connect("member2")
    await culprit.send_raw(_oversized(chat))
    await chat.settle(
        culprit,
        [watcher],
        "ROBUST-014",
        lambda f: is_event(f) and len(str(f.get("body"))) > 100_000,
        "event for the oversized frame",
    )
    await watcher.is_served("ROBUST-014")


@requirement("ROBUST-015")
async def test_oversized_frame_is_closed_with_1009_or_answered(chat: Chat) -> None:
    chat.needs("network")  # the largest frame is the ASGI server's limit, not the application's
    culprit = await chat.connect("member")
    await culprit.send_raw(_oversized(chat))
    closed = await culprit.wait_closed(
        chat.target.receive_timeout, until=lambda f: isinstance(f, dict) and "error" in f
    )
    errors = [f for f in culprit.buffer if isinstance(f, dict) and "error" in f]
    if errors:
        chat.observe("ROBUST-015", f"answered with {errors[0]}")
        return
    if closed is None:
        raise ConformanceFailure(
            "ROBUST-015", "close 1009 or an error frame", "neither within the receive timeout"
        )
    if closed[0] != 1009:
        raise ConformanceFailure("ROBUST-015", "close code 1009", f"close code {closed[0]}")
    chat.observe("ROBUST-015", "closed with 1009")
