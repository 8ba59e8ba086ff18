"""Which frames a test may call its own, and what a check does with the others
(harness/core/attribution.py, ``Expect(owns=...)``): no socket, no event loop."""

from __future__ import annotations

import html
import json
from typing import Any

from harness.core.attribution import Attribution
from harness.core.checks import FOREIGN, KEEP, Expect, Fail, Hit
from harness.core.frames import event_matching, is_event
from harness.spec import judge_server_frame

ID = "0b7e7dd4-5a4c-4b1e-9a57-0d6d1b7c9a10"


def event(action: str = "new", **fields: Any) -> dict[str, Any]:
    return {"type": "chat_message", "action": action, "id": ID, **fields}


def test_a_nonce_makes_its_frames_the_tests_own_wherever_it_appears() -> None:
    mine, theirs = Attribution(), Attribution()
    nonce = mine.nonce("sentinel")
    assert nonce.startswith("sentinel-")
    assert mine.owns(event(body=nonce))
    assert mine.owns(event(body=f"<b>{nonce}</b> & more"))
    assert mine.owns(event(body=html.escape(f"<{nonce}>")))  # a server that escapes bodies
    assert mine.owns(event(message=nonce))  # a server that renames the field
    assert mine.owns(event(body=["x", nonce]))  # a non-string body carrying it
    assert not theirs.owns(event(body=nonce))
    assert not mine.owns(event(body=theirs.nonce()))
    assert not mine.owns(event(body="hello"))


def test_a_token_counts_only_standing_alone() -> None:
    mine = Attribution()
    token = mine.nonce().split("-")[1]
    assert not mine.owns(event(body=f"{token}0"))  # a longer hex run is not the token
    assert not mine.owns(event(body=f"a{token}"))
    assert not mine.owns(event(body=token[:15]))


def test_a_unique_number_is_the_tests_own_where_a_constant_is_nobodys() -> None:
    mine = Attribution()
    number = mine.unique_int()
    assert 10**15 <= number < 10**16
    assert mine.owns(event(body=number))
    assert mine.owns(event(body=[number]))
    assert not mine.owns(event(body=42))
    assert not mine.owns(event(body=None))
    assert not Attribution().owns(event(body=number))


def test_the_ids_of_its_messages_make_their_update_and_delete_events_its_own() -> None:
    mine = Attribution()
    assert not mine.owns(event("delete"))
    mine.learn(event(body="not ours"))  # a stranger's message: its id is not learned
    assert not mine.owns(event("delete"))
    mine.learn(event(body=mine.nonce()))
    assert mine.owns(event("update", body=12345))
    assert mine.owns(event("delete"))
    assert not mine.owns(event("delete", id="another-id"))


def test_frames_that_are_not_events_are_always_the_servers_words_to_this_connection() -> None:
    mine = Attribution()
    assert mine.owns({"error": "Message not found."})
    assert mine.owns({"type": "presence", "user": "bob"})
    assert mine.owns("not json")
    assert mine.owns(b"\xff\xfe")
    assert mine.owns(["a", "list"])


# --- a check fed frames it does not own ------------------------------------------------------


def test_a_forbidden_frame_of_another_client_is_noted_not_failed() -> None:
    mine = Attribution()
    sentinel = mine.nonce("sentinel")
    check = Expect(
        event_matching("new", body=sentinel),
        "ROBUST-017",
        "nothing broadcast",
        "watcher#1",
        forbidden=is_event,
        owns=mine.owns,
    )
    assert check.feed(event(body="a stranger's message")) is KEEP
    assert check.notes == [
        ("ROBUST-017", f'{FOREIGN} (not judged): {{"type":"chat_message","action":"new",'
         f'"id":"{ID}","body":"a stranger\'s message"}}'),
    ]  # fmt: skip
    step = check.feed(event(body=f"caused by {mine.nonce()}"))
    assert isinstance(step, Fail) and step.failure.requirement == "ROBUST-017"


def test_a_schema_violation_of_another_clients_frame_is_noted_not_failed() -> None:
    mine = Attribution()
    body = mine.nonce()
    bad = {**event(body=42), "user": "eve", "created": "x", "edited": False, "updated": "x"}
    judged = judge_server_frame(json.dumps(bad))
    assert judged.violation is not None and judged.violation.requirement == "EVT-002"
    check = Expect(
        event_matching("new", body=body), "SEND-002", "the echo", "bob#1", owns=mine.owns
    )
    assert check.feed(judged.frame, judged.violation) is KEEP
    ((requirement, text),) = check.notes
    assert requirement == "EVT-002" and text.startswith(FOREIGN) and "not judged" in text
    # The same violation on the test's own frame fails at once, as before.
    own = {**bad, "body": body}
    judged_own = judge_server_frame(json.dumps(own))
    step = check.feed(judged_own.frame, judged_own.violation)
    assert isinstance(step, Fail) and step.failure.requirement == "EVT-002"


def test_a_frame_of_another_client_may_still_be_what_the_wait_looks_for() -> None:
    check = Expect(is_event, "EVT-007", "any event", "bob#1", owns=Attribution().owns)
    step = check.feed(event(body="hello"))
    assert isinstance(step, Hit) and check.notes == []


def test_without_owns_every_frame_is_judged_as_before() -> None:
    check = Expect(None, "ROBUST-017", "nothing broadcast", "watcher#1", forbidden=is_event)
    assert isinstance(check.feed(event(body="anybody's")), Fail)
