"""The preflight's findings and the breaker (harness/core/gate.py), judged without I/O, and the
fail-fast they give a whole run against a server whose sender never gets its own events."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from harness.core.failures import ConformanceFailure, ConformanceTimeout, NotTested
from harness.core.gate import BASICS, Finding, Gate
from reference_server.demo import demo_config, demo_target_dict
from reference_server.runner import ServerThread
from tests.hostile import serve
from tests.support import run_suites, write_target


def echo_missing() -> Gate:
    gate = Gate()
    failure = ConformanceTimeout(
        "SEND-002", "a chat_message 'new' event on preflight#1", "no answer within 5.0 s"
    )
    gate.prove(Finding(failure, "the preflight, before the suites"))
    return gate


def test_a_wait_on_a_failed_basic_in_another_test_is_blocked_with_its_reason() -> None:
    with pytest.raises(NotTested, match=r"blocked by SEND-002 \(the sender never receives"):
        echo_missing().check("SEND-002", own=("EDIT-003",))


def test_the_test_of_the_failed_basic_fails_at_once_with_the_preflights_evidence() -> None:
    with pytest.raises(ConformanceFailure) as caught:
        echo_missing().check("SEND-002", own=("SEND-002", "SEND-001"))
    assert caught.value.requirement == "SEND-002"
    assert "no answer within 5.0 s" in caught.value.actual
    assert "preflight" in caught.value.actual
    assert caught.value.kind == "timeout"


def test_waits_on_basics_that_held_go_on() -> None:
    gate = echo_missing()
    gate.check("SEND-003", own=("EDIT-003",))
    gate.check("EDIT-007", own=())
    Gate().check("SEND-002", own=())


def test_each_failed_basic_is_a_failed_record_of_its_requirement() -> None:
    records = echo_missing().records()
    assert [r.requirements for r in records] == [("SEND-002",)]
    assert records[0].outcome == "failed" and records[0].failed_requirements == ("SEND-002",)
    assert Gate().records() == []


def test_the_breaker_trips_once_and_then_every_test_is_not_tested() -> None:
    gate = Gate()
    gate.check_breaker()
    assert gate.trip("the server stopped answering during a")
    assert not gate.trip("the server stopped answering during b")
    with pytest.raises(NotTested, match="during a"):
        gate.check_breaker()


def test_every_basic_names_a_catalogue_requirement() -> None:
    from harness.core import catalogue

    cat = catalogue.load()
    assert all(rid in cat for rid in BASICS)


def test_a_server_without_echo_is_judged_without_waiting_out_timeouts(tmp_path: Path) -> None:
    """The whole run against the no-echo fault: SEND-002 fails, every test that stands on a
    sender's own new event is not tested and says it was blocked, and no other verdict came from
    a wait that ran out (each would have cost receive_timeout)."""
    config = demo_config(database=str(tmp_path / "no-echo.sqlite3"), faults=frozenset({"no-echo"}))
    with ServerThread(config) as server:
        target = write_target(tmp_path / "target.toml", demo_target_dict(server.url_template))
        code, results, output = run_suites(target, tmp_path / "reports")
    assert results is not None, output[-3000:]
    assert code == 1, output[-3000:]
    by_id = {r["id"]: r for r in results["requirements"]}
    assert by_id["SEND-002"]["verdict"] == "failed"
    blocked = [r["id"] for r in results["requirements"] if "blocked by SEND-002" in str(r)]
    assert len(blocked) >= 10, blocked
    waited = {r["id"] for r in results["requirements"] if "no answer within" in str(r)}
    # The preflight's own wait, and the editor's and deleter's own update and delete events
    # (EDIT-003, DEL-002: their own requirements, which the preflight does not try).
    assert waited == {"SEND-002", "EDIT-003", "DEL-002"}, waited


# --- the probe after a timeout (harness/preflight.py) ---------------------------------------


def _probe(url: str, *, echo_seen: bool) -> Gate:
    from harness.preflight import probe
    from harness.target import parse
    from tests.hostile import hostile_target

    gate = Gate(echo_seen=echo_seen)
    target = parse(hostile_target(url, timeout=0.5), where="<hostile>")
    asyncio.run(probe(target, gate, "suites/test_x.py::test_y"))
    return gate


def test_a_probe_that_gets_no_handshake_answer_trips_the_breaker() -> None:
    """A listener that accepts TCP and never answers: the server stopped answering."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        gate = _probe(f"ws://127.0.0.1:{port}/ws/chat/{{host}}/{{room}}", echo_seen=True)
    assert gate.tripped is not None and "test_y" in gate.tripped, gate.tripped
    assert not gate.failed


def test_a_probe_accepted_but_without_events_proves_the_basics_and_trips_nothing() -> None:
    """Two connections accepted, no event on either: the sender's own (SEND-002) and the
    other's (SEND-003) are proved failing from now on."""
    with serve("silent") as url:
        gate = _probe(url, echo_seen=True)
    assert gate.tripped is None
    assert set(gate.failed) == {"SEND-002", "SEND-003"}
    assert "a probe after suites/test_x.py::test_y" in gate.failed["SEND-002"].found
    with pytest.raises(NotTested, match="blocked by SEND-002"):
        gate.check("SEND-002", own=("EDIT-001",))


def test_a_probe_without_an_echo_to_expect_only_checks_the_handshake() -> None:
    with serve("silent") as url:
        gate = _probe(url, echo_seen=False)
    assert gate.tripped is None and not gate.failed and gate.alive_at > 0
