"""The harness's own resource bounds (``[limits]`` max_received_frame_bytes, max_buffered_frames,
max_buffered_bytes): the pure bookkeeping, the wire layer against the in-memory server
(tests/fakewire.py, a good and a bad server each time), the real websockets path against the
hostile server (tests/hostile.py), and what a test record says.

The whole run against a hostile server, with its memory measured, is tests/test_hostile.py.
"""

from __future__ import annotations

import asyncio
import struct
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from websockets.asyncio.client import connect

from harness.core.bounds import FrameBuffer, frame_size, frame_too_big, size_text
from harness.core.failures import ConformanceFailure, ResourceLimit
from harness.core.session import MAX_OBSERVATIONS
from harness.server.chat import Chat
from harness.server.records import build_record
from harness.target import (
    MAX_BUFFERED_BYTES,
    MAX_BUFFERED_FRAMES,
    MAX_RECEIVED_FRAME_BYTES,
    TargetError,
    load,
    parse,
)
from harness.tokens import Minter
from harness.wire.closed import Closed
from tests.fakewire import FakeServer, run_scenario
from tests.hostile import HUGE_BYTES, HostileServer, hostile_target, serve, write_hostile_target

T = TypeVar("T")
MIB = 1024 * 1024


run = run_scenario


# --- the bookkeeping (no I/O) ---------------------------------------------------------------


def test_frame_size_counts_utf8_bytes() -> None:
    assert frame_size("abc") == 3
    assert frame_size("é") == 2
    assert frame_size("😀") == 4
    assert frame_size(b"\x00\x01") == 2


def test_size_text_reads_like_a_person_would() -> None:
    assert size_text(512) == "512 bytes"
    assert size_text(2_300_000) == "2.3 MB"
    assert size_text(12_400) == "12.4 kB"


def test_a_buffer_within_its_bounds_keeps_every_frame() -> None:
    buffer = FrameBuffer("member#1", max_frames=3, max_bytes=100)
    for i in range(3):
        assert buffer.add({"n": i}, 10, now=float(i)) is None
    assert list(buffer) == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert (len(buffer), buffer.bytes, buffer.since) == (3, 30, 0.0)


def test_a_frame_over_the_frame_bound_is_refused_with_what_was_measured() -> None:
    buffer = FrameBuffer("member#1", max_frames=3, max_bytes=10**6)
    for i in range(3):
        buffer.add({"n": i}, 800_000 // 3, now=10.0 + i / 10)
    limit = buffer.add({"n": 3}, 2_000, now=10.4)
    assert limit is not None
    assert limit.kind == "resource limit"
    assert limit.actual == (
        "the server sent 4 frames (802.0 kB) on member#1 in 0.4 s that no check asked for; "
        "the harness keeps at most 3 (limits.max_buffered_frames)"
    )
    assert "limits.max_buffered_frames" in limit.expected
    assert len(buffer) == 3  # the refused frame is not kept


def test_a_frame_over_the_byte_bound_is_refused_with_what_was_measured() -> None:
    buffer = FrameBuffer("member2#1", max_frames=100, max_bytes=1_000)
    assert buffer.add("a", 600, now=1.0) is None
    limit = buffer.add("b", 500, now=1.25)
    assert limit is not None
    assert limit.actual == (
        "the server sent 2 frames (1,100 bytes) on member2#1 in 0.2 s that no check asked for; "
        "the harness keeps at most 1,000 bytes (limits.max_buffered_bytes)"
    )
    assert "limits.max_buffered_bytes" in limit.expected


def test_frames_taken_out_of_the_buffer_free_their_room() -> None:
    buffer = FrameBuffer("c#1", max_frames=2, max_bytes=100)
    buffer.add("a", 40, now=0.0)
    buffer.add("b", 50, now=0.0)
    del buffer[0]
    assert (list(buffer), buffer.bytes) == (["b"], 50)
    assert buffer.add("c", 50, now=0.0) is None
    buffer.clear()
    assert (len(buffer), buffer.bytes, buffer.since) == (0, 0, None)
    assert buffer.add("d", 100, now=5.0) is None


def test_the_frame_cap_failure_names_the_sizes_and_the_key() -> None:
    limit = frame_too_big("member#1", 67_108_864, 1_048_576)
    assert limit.expected == (
        "server frames of at most 1,048,576 bytes (limits.max_received_frame_bytes)"
    )
    assert limit.actual == (
        "the server sent a frame of 67,108,864 bytes on member#1; the harness accepts up to "
        "1,048,576 and closed the connection with 1009"
    )
    assert "fragmented message of 1,100 bytes" in frame_too_big("c#1", 100, 1_000, 1_000).actual
    assert "once decompressed" in frame_too_big("c#1", None, 1_000).actual


def test_a_resource_limit_is_not_a_conformance_failure() -> None:
    # Nothing that catches a ConformanceFailure (the suites' rewrapping) may swallow it.
    assert not issubclass(ResourceLimit, ConformanceFailure)
    assert not issubclass(ResourceLimit, AssertionError)


# --- the wire layer, against the in-memory server -------------------------------------------


async def post_and_read(chat: Chat) -> dict[str, Any]:
    member = await chat.connect("member")
    return await chat.post(member)


def test_strangers_frames_within_the_bound_are_kept_for_later_checks() -> None:
    chat = FakeServer(noise=5).chat(limits={"max_buffered_frames": 10})
    run(post_and_read, chat)


def test_strangers_frames_past_the_frame_bound_fail_the_test_and_close_the_connection() -> None:
    server = FakeServer(noise=50)
    chat = server.chat(limits={"max_buffered_frames": 10})
    conns: list[Any] = []

    async def scenario(chat: Chat) -> None:
        member = await chat.connect("member")
        conns.append(member)
        await chat.post(member)

    with pytest.raises(ResourceLimit) as caught:
        run(scenario, chat)
    actual = caught.value.actual
    assert actual.startswith("the server sent 11 frames (") and " on member#1 in " in actual
    assert actual.endswith(
        " s that no check asked for; the harness keeps at most 10 (limits.max_buffered_frames)"
    )
    member = conns[0]
    assert member.ws.transport.aborted and member.closed is not None
    assert "resource limit: the server sent 11 frames" in chat.transcript.render()


def test_strangers_frames_past_the_byte_bound_fail_the_test() -> None:
    chat = FakeServer(noise=50).chat(limits={"max_buffered_bytes": 4096})
    with pytest.raises(ResourceLimit) as caught:
        run(post_and_read, chat)
    assert "the harness keeps at most 4,096 bytes (limits.max_buffered_bytes)" in (
        caught.value.actual
    )


def test_a_limit_is_raised_again_by_every_later_read_of_the_connection() -> None:
    async def scenario(chat: Chat) -> list[str]:
        member = await chat.connect("member")
        seen = []
        for _ in range(2):
            try:
                await chat.post(member)
            except ResourceLimit as exc:
                seen.append(exc.actual)
        try:
            await member.wait_closed(0.1)
        except ResourceLimit as exc:
            seen.append(exc.actual)
        return seen

    seen = run(scenario, FakeServer(noise=50).chat(limits={"max_buffered_frames": 10}))
    assert len(seen) == 3 and len(set(seen)) == 1


def test_a_frame_within_the_frame_cap_is_received() -> None:
    async def scenario(chat: Chat) -> dict[str, Any]:
        member = await chat.connect("member")
        return await member.expect_event("new", body="x" * 5000, requirement="SEND-001")

    run(scenario, FakeServer(huge=5000).chat(limits={"max_received_frame_bytes": 8192}))


def test_a_frame_over_the_frame_cap_fails_the_test_with_the_sizes() -> None:
    async def scenario(chat: Chat) -> None:
        member = await chat.connect("member")
        await member.expect_event("new", requirement="SEND-001")

    chat = FakeServer(huge=64 * MIB).chat()
    with pytest.raises(ResourceLimit) as caught:
        run(scenario, chat)
    assert caught.value.expected == (
        "server frames of at most 1,048,576 bytes (limits.max_received_frame_bytes)"
    )
    assert caught.value.actual == (
        "the server sent a frame of 67,108,864 bytes on member#1; the harness accepts up to "
        "1,048,576 and closed the connection with 1009"
    )
    lines = [line for line in chat.transcript.render().splitlines() if "  ==  " in line]
    assert any("resource limit: the server sent a frame of 67,108,864 bytes" in x for x in lines)


def test_a_frame_over_the_cap_met_while_sending_fails_the_test_too() -> None:
    async def scenario(chat: Chat) -> None:
        member = await chat.connect("member")
        with pytest.raises(Closed):
            await member.ws.recv()  # the cap is met with no wait of the harness's running
        await member.send_text("hello")  # the close is noted here, on a send

    with pytest.raises(ResourceLimit):
        run(scenario, FakeServer(huge=2 * MIB).chat())


def test_observations_a_server_repeats_are_counted_not_kept() -> None:
    chat = FakeServer().chat()
    for i in range(MAX_OBSERVATIONS + 500):
        chat.observe("EVT-007", f"unrecognised frame {i}")
    kept = chat.observations["EVT-007"]
    assert len(kept) == MAX_OBSERVATIONS + 1
    assert kept[-1] == "… and 500 more like these"


# --- the real websockets path, against the hostile server -----------------------------------


def _chat(url: str, **limits: int) -> Chat:
    target = parse(hostile_target(url, **limits), where="<hostile>")
    return Chat(target, Minter(target.auth))


def test_a_huge_frame_is_refused_from_its_header_and_the_connection_let_go() -> None:
    server = HostileServer("huge").start()
    try:
        chat = _chat(server.url_template)

        async def scenario(chat: Chat) -> None:
            member = await chat.connect("member")
            await member.expect_event("new", requirement="SEND-001")

        with pytest.raises(ResourceLimit) as caught:
            run(scenario, chat)
    finally:
        server.stop()
    assert caught.value.actual == (
        "the server sent a frame of 67,108,864 bytes on member#1; the harness accepts up to "
        "1,048,576 and closed the connection with 1009"
    )
    # The harness let go as soon as its close frame was out: the server never got to send the
    # whole payload (the loopback buffers hold a few MB, not 64 MiB).
    assert server.huge_sent and max(server.huge_sent) < HUGE_BYTES // 2


def test_a_flood_is_cut_at_the_buffered_frames_bound() -> None:
    with serve("flood") as url:
        chat = _chat(url, max_buffered_frames=100)

        async def scenario(chat: Chat) -> None:
            member = await chat.connect("member")
            await member.expect_event("new", requirement="SEND-001")

        with pytest.raises(ResourceLimit) as caught:
            run(scenario, chat)
    assert caught.value.actual.startswith("the server sent 101 frames (")
    assert "(limits.max_buffered_frames)" in caught.value.actual


def test_the_echo_server_answers_the_handshake_and_echoes() -> None:
    async def scenario(url: str) -> tuple[str | bytes, int | None]:
        async with connect(url.format(host="h", room="r") + "?token=x", proxy=None) as ws:
            await ws.send("ping-1")
            back = await ws.recv()
        return back, ws.close_code

    with serve("echo") as url:
        back, code = asyncio.run(scenario(url))
    assert (back, code) == ("ping-1", 1000)


def test_the_silent_server_never_sends_but_answers_a_close() -> None:
    async def scenario(url: str) -> int | None:
        async with connect(url.format(host="h", room="r"), proxy=None) as ws:
            await ws.send("anyone?")
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await ws.recv()
        return ws.close_code

    with serve("silent") as url:
        assert asyncio.run(scenario(url)) == 1000


def test_the_hostile_server_frames_are_well_formed() -> None:
    from tests.hostile import frame_header

    assert frame_header(1, 5) == b"\x81\x05"
    assert frame_header(1, 300) == b"\x81\x7e" + struct.pack("!H", 300)
    assert frame_header(1, HUGE_BYTES) == b"\x81\x7f" + struct.pack("!Q", HUGE_BYTES)


# --- the test record ------------------------------------------------------------------------


def test_a_resource_limit_fails_the_tests_own_requirements_with_its_texts() -> None:
    limit = frame_too_big("member#1", 67_108_864, 1_048_576)

    def fail() -> None:
        raise limit

    call = pytest.CallInfo.from_call(fail, when="call")
    report = SimpleNamespace(failed=True, skipped=False)
    chat = FakeServer().chat()
    record = build_record(("SEND-001", "SEND-002"), report, call, chat)  # type: ignore[arg-type]
    assert record["failed"] == ["SEND-001", "SEND-002"]
    assert (record["kind"], record["expected"], record["actual"]) == (
        "resource limit",
        limit.expected,
        limit.actual,
    )
    assert "message" not in record


# --- the target file ------------------------------------------------------------------------


def test_the_limits_keys_parse_with_their_defaults(tmp_path: Path) -> None:
    url = "ws://127.0.0.1:9/ws/chat/{host}/{room}"
    target = load(write_hostile_target(tmp_path / "t.toml", url))
    assert (
        target.max_received_frame_bytes,
        target.max_buffered_frames,
        target.max_buffered_bytes,
    ) == (MAX_RECEIVED_FRAME_BYTES, MAX_BUFFERED_FRAMES, MAX_BUFFERED_BYTES)
    assert (MAX_RECEIVED_FRAME_BYTES, MAX_BUFFERED_FRAMES, MAX_BUFFERED_BYTES) == (
        MIB,
        10_000,
        16 * MIB,
    )
    limits = {"max_received_frame_bytes": 4096, "max_buffered_frames": 7, "max_buffered_bytes": 9}
    target = load(write_hostile_target(tmp_path / "t2.toml", url, **limits))
    assert (
        target.max_received_frame_bytes,
        target.max_buffered_frames,
        target.max_buffered_bytes,
    ) == (4096, 7, 9)


@pytest.mark.parametrize(
    "key", ["max_received_frame_bytes", "max_buffered_frames", "max_buffered_bytes"]
)
def test_a_limit_of_zero_is_refused_naming_the_key(key: str, tmp_path: Path) -> None:
    url = "ws://127.0.0.1:9/ws/chat/{host}/{room}"
    path = write_hostile_target(tmp_path / "t.toml", url, **{key: 0})
    with pytest.raises(TargetError) as caught:
        load(path)
    message = str(caught.value)
    assert f"limits.{key}" in message and "at least 1" in message and "\n" not in message


def test_the_limits_reach_the_connection(tmp_path: Path) -> None:
    chat = FakeServer().chat(limits={"max_buffered_frames": 3, "max_buffered_bytes": 77})

    async def scenario(chat: Chat) -> tuple[int, int]:
        member = await chat.connect("member")
        return member.buffer.max_frames, member.buffer.max_bytes

    assert run(scenario, chat) == (3, 77)


# --- property runs (suites/test_properties.py) ----------------------------------------------


def test_a_property_session_raises_its_first_resource_limit_again_without_io() -> None:
    from suites.test_properties import Session

    session = Session(FakeServer().chat(), "ROBUST-016")
    limit = frame_too_big("watcher#1", 2 * MIB, MIB)
    started: list[int] = []

    async def example() -> None:
        started.append(1)
        raise limit

    try:
        with pytest.raises(ResourceLimit):
            session.run(example())
        with pytest.raises(ResourceLimit) as again:
            session.run(example())
    finally:
        session.close()
    assert again.value is limit and started == [1]


def test_a_property_session_sends_its_first_example_however_long_set_up_took() -> None:
    # The time budget starts with the first example: hypothesis building its strategies on a
    # loaded machine must not leave a property run that sent nothing (CI once saw this).
    from suites.test_properties import Session

    chat = FakeServer().chat()
    session = Session(chat, "ROBUST-016")
    ran: list[int] = []

    async def example() -> None:
        ran.append(1)

    try:
        time.sleep(session.budget + 0.1)
        session.run(example())
        assert ran == [1] and session.ran == 1 and session.skipped == 0
        assert session.deadline is not None
        session.deadline = time.monotonic() - 1  # the budget is spent: no more I/O
        session.run(example())
        assert ran == [1] and session.skipped == 1
    finally:
        session.close()


def test_a_property_against_a_flooding_server_opens_no_connection_while_shrinking() -> None:
    from suites.test_properties import _run_near_misses

    server = FakeServer(noise=50)
    chat = server.chat(limits={"max_buffered_frames": 10})
    opened: list[str] = []

    async def counting(plan: Any) -> Any:
        opened.append(plan.url)
        return await server.open(plan)

    chat.opener = counting
    with pytest.raises(ResourceLimit) as caught:
        _run_near_misses(chat, 20, stay_connected=False)
    assert "(limits.max_buffered_frames)" in caught.value.actual
    # The first example opened the culprit and the watcher, and hit the bound; every later
    # example (and the shrinking) re-raised it without opening anything.
    assert len(opened) == 2
