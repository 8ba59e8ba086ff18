"""Server frame schemas (seed: Event Types, Error Handling).

The recording client validates every server frame of every test as it arrives; these tests make
sure each kind of frame is seen at least once, and record what the server adds (INFO).
"""

from __future__ import annotations

import re

import pytest

from harness import spec
from harness.server.chat import Chat

requirement = pytest.mark.requirement


@requirement("EVT-001", "EVT-002", "EVT-006")
async def test_new_event_matches_its_schema(chat: Chat) -> None:
    conn = await chat.connect("member")
    await chat.post(conn, echo_requirement="EVT-002")


@requirement("EVT-003")
async def test_update_event_matches_its_schema(chat: Chat) -> None:
    conn = await chat.connect("member")
    message = await chat.post(conn)
    await conn.send_update(message["id"], chat.nonce("schema"))
    await conn.expect_event("update", id=message["id"], requirement="EVT-003")


@requirement("EVT-004")
async def test_delete_event_matches_its_schema(chat: Chat) -> None:
    conn = await chat.connect("member")
    message = await chat.post(conn)
    await conn.send_delete(message["id"])
    await conn.expect_event("delete", id=message["id"], requirement="EVT-004")


@requirement("EVT-005")
async def test_error_frame_matches_its_schema(chat: Chat) -> None:
    conn = await chat.connect("member")
    await conn.send_delete("00000000-0000-4000-8000-000000000000")
    await conn.expect_error(None, requirement="EVT-005")


@requirement("EVT-007")
async def test_extra_fields_and_timestamp_style(chat: Chat) -> None:
    conn = await chat.connect("member")
    event = await chat.post(conn)
    stamp = str(event.get("created"))
    zone = (
        "Z"
        if stamp.endswith(("Z", "z"))
        else (stamp[-6:] if re.search(r"[+-]\d\d:\d\d$", stamp) else "?")
    )
    fraction = re.search(r"\.(\d+)", stamp)
    digits = len(fraction.group(1)) if fraction else 0
    chat.observe("EVT-007", f"timestamps like {stamp!r}: zone {zone}, {digits} fraction digits")
    extra = sorted(set(event) - spec.documented_fields("new"))
    chat.observe(
        "EVT-007", f"new events add {', '.join(extra)}" if extra else "new events add no fields"
    )
