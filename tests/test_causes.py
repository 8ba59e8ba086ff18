"""Verdicts for the right reason (issue 25): the controls of the tests that blame one cause, the
rate limit the preflight finds, and room isolation on every frame (harness.core.isolation)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from harness.core.gate import PACE, Gate
from harness.core.isolation import Ledger
from harness.server import flood
from harness.server.chat import Chat
from harness.server.preflight import preflight
from harness.target import parse
from reference_server.demo import demo_config, demo_target_dict
from reference_server.runner import ServerThread
from tests.support import run_suites, write_target

MAIN = ("alice", "general")
OTHER = ("alice", "random")
TWIN = ("erin", "general")


# --- isolation on every frame, without I/O -------------------------------------------------


def _new(mid: str, body: str) -> dict[str, Any]:
    return {"type": "chat_message", "action": "new", "id": mid, "body": body}


def test_another_rooms_text_in_a_frame_of_any_type_is_a_leak() -> None:
    ledger = Ledger()
    ledger.sent(OTHER, '{"type": "text", "message": "m-0123456789abcdef"}', "text")
    history = {"type": "history", "messages": [_new("id-1", "m-0123456789abcdef")]}
    failure = ledger.leak(MAIN, str(history), history, "late#1")
    assert failure is not None and failure.requirement == "ISO-001"
    assert "a history frame carrying the text of a message" in failure.actual
    assert "of room alice/random" in failure.actual
    assert ledger.leak(OTHER, str(history), history, "there#1") is None  # its own room


def test_another_hosts_room_of_the_same_slug_is_iso_007() -> None:
    ledger = Ledger()
    ledger.sent(TWIN, "m-0123456789abcdef", "text")
    frame = _new("id-1", "m-0123456789abcdef")
    failure = ledger.leak(MAIN, str(frame), frame, "here#1")
    assert failure is not None and failure.requirement == "ISO-007"


def test_ids_and_edits_of_another_room_are_iso_006_and_own_content_is_not_a_leak() -> None:
    ledger = Ledger()
    ledger.sent(OTHER, "m-0123456789abcdef", "text")
    ledger.learn(_new("4b6c5d1e-0000-4000-8000-000000000001", "m-0123456789abcdef"))
    delete = {
        "type": "chat_message",
        "action": "delete",
        "id": "4b6c5d1e-0000-4000-8000-000000000001",
    }
    failure = ledger.leak(MAIN, str(delete), delete, "here#1")
    assert failure is not None and failure.requirement == "ISO-006"
    # The connection named that id itself (a cross-room edit): an error quoting it is its own.
    error = {"error": "Message 4b6c5d1e-0000-4000-8000-000000000001 not found."}
    own = ["4b6c5d1e-0000-4000-8000-000000000001"]
    assert ledger.leak(MAIN, str(error), error, "here#1", own_ids=own) is None
    ledger.sent(MAIN, "cross-fedcba9876543210", "update")
    edit = {"type": "chat_message", "action": "update", "body": "cross-fedcba9876543210"}
    failure = ledger.leak(OTHER, str(edit), edit, "there#1")
    assert failure is not None and failure.requirement == "ISO-006"
    assert ledger.leak(MAIN, str(edit), edit, "here#1", own_tokens=["fedcba9876543210"]) is None


def test_a_token_sent_to_two_rooms_belongs_to_neither() -> None:
    ledger = Ledger()
    ledger.sent(MAIN, "m-0123456789abcdef", "text")
    ledger.sent(OTHER, "m-0123456789abcdef", "text")
    frame = _new("id-1", "m-0123456789abcdef")
    assert ledger.leak(MAIN, str(frame), frame, "a") is None
    assert ledger.leak(OTHER, str(frame), frame, "b") is None


# --- the rate limit the preflight finds ----------------------------------------------------


def _preflight(tmp_path: Path, **settings: Any) -> Gate:
    config = demo_config(database=str(tmp_path / "db.sqlite3"), **settings)
    gate = Gate()
    with ServerThread(config) as server:
        asyncio.run(preflight(parse(demo_target_dict(server.url_template), where="<t>"), gate))
    return gate


def test_the_preflight_finds_an_open_rate_limit_and_every_connection_paces_under_it(
    tmp_path: Path,
) -> None:
    gate = _preflight(tmp_path, rate_limit=30, rate_limit_error="Too fast.")
    assert not gate.failed, gate.failed
    assert gate.rate_limit is not None and 20 <= gate.rate_limit <= 30, gate.rate_limit
    assert gate.rate_limit_error == "Too fast."
    chat = Chat(parse(demo_target_dict("ws://127.0.0.1:9/ws/chat/{host}/{room}"), where="<t>"))
    chat.gate = gate
    assert chat.send_interval() == 1 / (PACE * gate.rate_limit)
    assert "about" in chat.rate_limit_text() and "found by the preflight" in chat.rate_limit_text()
    assert "sent at most 0.8 of it" in (gate.rate_warning() or "")


def test_a_server_without_a_rate_limit_is_not_paced(tmp_path: Path) -> None:
    gate = _preflight(tmp_path)
    assert gate.rate_limit is None and gate.rate_line() is None
    assert gate.pace is not None and gate.pace > 0  # the probe's texts all served: its pace


def test_the_preflight_measures_a_slow_servers_pace_and_the_floods_are_sized_by_it(
    tmp_path: Path,
) -> None:
    """20 ms of processing a frame, one at a time per connection: at most 50 frames a second on
    one connection (a bound, not a measure: a busy machine only makes it slower)."""
    gate = _preflight(tmp_path, latency_ms=(20.0, 20.0))
    assert gate.rate_limit is None
    assert gate.pace is not None and 0 < gate.pace <= 50 * 1.02, gate.pace
    chat = Chat(parse(demo_target_dict("ws://127.0.0.1:9/ws/chat/{host}/{room}"), where="<t>"))
    chat.gate = gate
    budget = chat.target.load.time_budget
    assert flood.share(chat) == max(1, int(gate.pace * budget))
    per_sender = flood.share(chat) or 1
    assert flood.senders_for(chat, 1200, 4, 48) == max(4, min(48, -(-1200 // per_sender)))
    assert "measured by the preflight" in flood.sized_note(chat, "the flood")


def test_a_flood_is_sized_by_the_slower_of_the_pace_and_the_rate_limit() -> None:
    data = demo_target_dict("ws://127.0.0.1:9/ws/chat/{host}/{room}")
    data["load"] = {"time_budget": 2}
    chat = Chat(parse(data, where="<t>"))
    assert flood.pace(chat) is None and flood.share(chat) is None
    assert flood.senders_for(chat, 1200, 4, 48) == 4  # nothing known: the least
    chat.gate = Gate(pace=1000.0)
    assert flood.share(chat) == 2000
    assert flood.senders_for(chat, 1200, 4, 48) == 4  # fast: the least does it
    chat.gate = Gate(pace=10.0)
    assert flood.share(chat) == 20
    assert flood.senders_for(chat, 1200, 4, 48) == 48  # 60 wanted, 48 at most
    chat.gate = Gate(pace=1000.0, rate_limit=10.0)  # the senders pace under the limit
    assert flood.pace(chat) == (PACE * 10.0, "under the server's rate limit")
    assert flood.share(chat) == int(PACE * 10.0 * 2)
    assert "rate limit" in flood.sized_note(chat, "x")


def test_a_target_that_states_its_rate_limit_is_paced_without_a_probe() -> None:
    data = demo_target_dict("ws://127.0.0.1:9/ws/chat/{host}/{room}")
    data["limits"] = {"max_frames_per_second": 10}
    chat = Chat(parse(data, where="<t>"))
    assert chat.send_interval() == 1 / (PACE * 10)
    assert "limits.max_frames_per_second" in chat.rate_limit_text()


# --- controls ------------------------------------------------------------------------------


def _recon_002_against(fault: str, tmp_path: Path) -> tuple[int, dict[str, Any], str]:
    config = demo_config(database=str(tmp_path / "db.sqlite3"), faults=frozenset({fault}))
    with ServerThread(config) as server:
        target = write_target(tmp_path / "t.toml", demo_target_dict(server.url_template))
        code, results, output = run_suites(target, tmp_path / "r", only="RECON-002")
    assert results is not None, output[-3000:]
    (recon,) = [r for r in results["requirements"] if r["id"] == "RECON-002"]
    return code, recon, output


def test_recon_002_is_not_blamed_on_the_half_open_client_when_any_flood_loses(
    tmp_path: Path,
) -> None:
    """Django Channels' capacity (drop-when-busy) loses this flood with or without a half-open
    client: the control says so, RECON-002 is not tested with the cause (LOAD-001 fails it)."""
    code, recon, output = _recon_002_against("drop-when-busy", tmp_path)
    assert recon["verdict"] == "not_tested", output[-3000:]
    assert "loses events under this flood without a half-open client too" in recon["reason"]
    assert "see LOAD-001" in recon["reason"]
    assert code == 2, output[-2000:]
    # Each flood's loss was proven by the senders' sentinels, not waited out.
    ended = [o for o in recon.get("observations", []) if "ended the flood" in o]
    assert any(o.startswith("flood: ") for o in ended), recon
    assert any(o.startswith("control: ") for o in ended), recon
    assert "did not all come" not in str(recon), recon


def test_a_burst_a_channel_layer_drops_is_judged_once_the_sentinels_prove_the_loss(
    tmp_path: Path,
) -> None:
    """drop-when-busy drops the burst's events for full mailboxes: LOAD-001 fails with what was
    missing once each sender's sentinel came after the rest (no wait for receive_timeout)."""
    config = demo_config(
        database=str(tmp_path / "db.sqlite3"), faults=frozenset({"drop-when-busy"})
    )
    with ServerThread(config) as server:
        data = demo_target_dict(server.url_template)
        data["receive_timeout"] = 30.0  # waited out, it would show in the observations
        target = write_target(tmp_path / "t.toml", data)
        code, results, output = run_suites(target, tmp_path / "r", only="LOAD-001")
    assert results is not None and code == 1, output[-3000:]
    by_id = {r["id"]: r for r in results["requirements"]}
    assert by_id["LOAD-001"]["verdict"] == "failed", by_id["LOAD-001"]
    notes = " ".join(by_id["LOAD-004"].get("observations", []))
    assert "sentinels (each sender's next message) ended the flood with" in notes, notes
    assert "deliveries missing" in notes, notes


def test_recon_002_still_fails_when_only_the_half_open_client_stops_the_fan_out(
    tmp_path: Path,
) -> None:
    code, recon, output = _recon_002_against("fanout-stops-on-dead", tmp_path)
    assert recon["verdict"] == "failed", output[-3000:]
    assert "(the control) reached it in full" in output, output[-3000:]
    assert code == 1


def test_a_flood_window_opens_once_its_reader_misses_messages() -> None:
    """A reader that never gets some messages costs the flood one grace, not one per window."""
    from types import SimpleNamespace

    from harness.server.flood import Window

    async def scenario() -> bool:
        reader: Any = SimpleNamespace(
            record=SimpleNamespace(arrivals=[]), progress=asyncio.Event(), done=asyncio.Event()
        )
        chat: Any = SimpleNamespace(
            gate=None, target=SimpleNamespace(receive_timeout=0.1)
        )  # grace: 0.1 s
        window = Window(chat, reader, size=4)
        await window.wait(3)  # room left: no wait
        assert not window.opened
        await window.wait(4)  # full, and nothing arrives: one grace, then open
        assert window.opened
        async with asyncio.timeout(5):  # a bound, not a measure: it must not wait again
            for sent in range(5, 500):
                await window.wait(sent)
        return window.opened

    assert asyncio.run(scenario())
