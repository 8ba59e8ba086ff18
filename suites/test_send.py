"""Sending messages (seed: Message Types `text`, New Message Event, Common Error Messages)."""

from __future__ import annotations

import pytest

from harness import spec
from harness.core.failures import ConformanceFailure
from harness.core.frames import check_equal, event_matching, mentions, parse_timestamp
from harness.server.chat import Chat

requirement = pytest.mark.requirement


def sized(chat: Chat, length: int, fill: str = "x") -> str:
    """A unique body of exactly ``length`` code points."""
    head = chat.nonce("len") + " "
    return head + fill * (length - len(head))


@requirement("SEND-001", "SEND-002", "SEND-003")
async def test_text_is_broadcast_to_the_whole_room(chat: Chat) -> None:
    sender = await chat.connect("member")
    other = await chat.connect("member2")
    host = await chat.connect("host")
    body = chat.nonce("hello")
    event = await chat.post(sender, body, observers=[other, host])
    check_equal("SEND-001", "body", body, event["body"])


@requirement("SEND-004")
async def test_event_names_the_sender(chat: Chat) -> None:
    member = chat.account("member")
    sender = await chat.connect("member")
    other = await chat.connect("member2")
    first = await chat.post(sender, observers=[other], echo=False)
    second = await chat.post(sender, observers=[other], echo=False)
    theirs = await chat.post(other, observers=[sender], echo=False)
    check_equal("SEND-004", "user", member.username, first["user"])
    check_equal("SEND-004", "user of a second message", first["user_id"], second["user_id"])
    if member.user_id is not None:
        check_equal("SEND-004", "user_id", member.user_id, str(first["user_id"]))
    if theirs["user_id"] == first["user_id"]:
        raise ConformanceFailure(
            "SEND-004", "different user_id for different users", f"both {first['user_id']!r}"
        )


@requirement("SEND-005")
async def test_new_message_is_not_edited(chat: Chat) -> None:
    sender, other = await chat.connect("member"), await chat.connect("member2")
    event = await chat.post(sender, observers=[other], echo=False)
    if event.get("edited") is not False:
        raise ConformanceFailure("SEND-005", "edited = false", f"edited = {event.get('edited')!r}")


@requirement("SEND-006")
async def test_each_message_gets_its_own_id(chat: Chat) -> None:
    sender, other = await chat.connect("member"), await chat.connect("member2")
    ids = [(await chat.post(sender, observers=[other], echo=False))["id"] for _ in range(3)]
    if len(set(ids)) != len(ids):
        raise ConformanceFailure("SEND-006", "three distinct ids", f"ids {ids}")


@requirement("SEND-007")
async def test_message_of_exactly_the_limit_is_accepted(chat: Chat) -> None:
    sender = await chat.connect("member")
    other = await chat.connect("member2")
    body = sized(chat, chat.target.max_length)
    await sender.send_text(body)
    await other.expect_event("new", body=body, requirement="SEND-007")
    await sender.expect_event("new", body=body, requirement="SEND-002")


@requirement("SEND-008")
async def test_message_over_the_limit_is_refused(chat: Chat) -> None:
    sender = await chat.connect("member")
    other = await chat.connect("member2")
    body = sized(chat, chat.target.max_length + 1)
    nonce = body.split(" ")[0]
    await sender.send_text(body)
    await sender.expect_error(
        spec.too_long(chat.target.max_length),
        requirement="SEND-008",
        forbidden=event_matching("new", body=body),
    )
    await chat.sentinel(
        other, [other], "SEND-008", mentions(nonce), "event for the refused message"
    )


@requirement("SEND-009")
async def test_limit_counts_code_points(chat: Chat) -> None:
    sender, other = await chat.connect("member"), await chat.connect("member2")
    limit = chat.target.max_length
    exact = sized(chat, limit, fill="\U0001f600")  # astral: two UTF-16 units, four UTF-8 bytes
    await sender.send_text(exact)
    await other.expect_event("new", body=exact, requirement="SEND-009")
    over = sized(chat, limit + 1, fill="\U0001f600")
    await sender.send_text(over)
    # Refused with an error; its exact text is SEND-008's business.
    await sender.expect_error(
        None, requirement="SEND-009", forbidden=event_matching("new", body=over)
    )


BODIES = {
    "latin": "Grüße, café, naïve",
    "cjk": "你好，世界。こんにちは",
    "rtl": "مرحبا بالعالم שלום",
    "emoji-zwj": "👩‍👩‍👧‍👦 🏳️‍🌈 👍🏽",
    "combining": "e\u0301 a\u0308 Z\u0335\u0328",
    "markup": "<b>bold</b> &amp; <script>alert(1)</script> \"quotes\" 'single' \\ back",
    "lines": "line one\nline two\n\ttabbed",
    "json-ish": '{"type": "text", "message": "nested"}',
}


@requirement("SEND-010")
@pytest.mark.parametrize("kind", list(BODIES))
async def test_body_round_trips_exactly(chat: Chat, kind: str) -> None:
    sender = await chat.connect("member")
    other = await chat.connect("member2")
    body = f"{chat.nonce(kind)} {BODIES[kind]}"
    await sender.send_text(body)
    nonce = body.split(" ")[0]
    event = await other.wait_for(
        lambda f: isinstance(f, dict) and f.get("action") == "new" and nonce in str(f.get("body")),
        requirement="SEND-010",
        expected=f"a new event with body {body!r}",
        basic=other.stands_on(sender),
    )
    check_equal("SEND-010", "body", body, event["body"])


@requirement("SEND-011")
async def test_text_with_extra_fields_is_accepted(chat: Chat) -> None:
    sender, other = await chat.connect("member"), await chat.connect("member2")
    body = chat.nonce("extra")
    await sender.send_text(body, clientId="abc-123", meta={"draft": False, "n": 1})
    await other.expect_event("new", body=body, requirement="SEND-011")


@requirement("SEND-012")
async def test_new_event_timestamps_are_rfc3339(chat: Chat) -> None:
    sender, other = await chat.connect("member"), await chat.connect("member2")
    event = await chat.post(sender, observers=[other], echo=False)
    for key in ("created", "updated"):
        if parse_timestamp(event.get(key)) is None:
            raise ConformanceFailure(
                "SEND-012",
                f"{key}: an RFC 3339 date-time with a time zone",
                f"{key} = {event.get(key)!r}",
            )
