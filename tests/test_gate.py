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
    from harness import catalogue

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
    # The editor's own update and delete events stand on SEND-002 too.
    assert {"EDIT-003", "DEL-002"} <= set(blocked), blocked
    waited = {r["id"] for r in results["requirements"] if "no answer within" in str(r)}
    assert waited == {"SEND-002"}, waited  # the preflight's own wait, and no other


def test_a_missing_own_update_event_is_proven_by_the_sentinel_not_waited_out(
    tmp_path: Path,
) -> None:
    """no-edit-echo: the editor gets the echo of its sentinel (sent right after the edit) but
    never its update event: EDIT-003 and DEL-002 fail at once, not after receive_timeout."""
    config = demo_config(database=str(tmp_path / "db.sqlite3"), faults=frozenset({"no-edit-echo"}))
    with ServerThread(config) as server:
        target = write_target(tmp_path / "target.toml", demo_target_dict(server.url_template))
        code, results, output = run_suites(target, tmp_path / "reports", only="EDIT,DEL")
    assert results is not None and code == 1, output[-3000:]
    failed = {r["id"]: str(r) for r in results["requirements"] if r["verdict"] == "failed"}
    assert set(failed) == {"EDIT-003", "DEL-002"}, output[-3000:]
    for rid, text in failed.items():
        assert "the server answered a later frame" in text, (rid, text[:2000])
        assert "no answer within" not in text, (rid, text[:2000])


# --- the probe after a timeout (harness/server/preflight.py) ---------------------------------


def _probe(url: str, *, echo_seen: bool) -> Gate:
    from harness.server.preflight import probe
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


@pytest.mark.parametrize("probe", [True, False])
def test_a_timed_out_test_is_probed_unless_it_is_the_last(
    probe: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.server import calls as runner
    from tests.fakewire import FakeServer

    probed: list[str] = []

    async def record(target: object, gate: Gate, after: str) -> None:
        probed.append(after)

    monkeypatch.setattr(runner, "probe_server", record)

    async def times_out() -> None:
        raise ConformanceTimeout("RECON-001", "an event", "no answer within 5.0 s")

    chat = FakeServer().chat()
    with pytest.raises(ConformanceTimeout):
        asyncio.run(
            runner.run_test(
                times_out, {}, chat=chat, bound=5, requirement="RECON-001", gate=Gate(),
                name="t::last", probe=probe,
            )
        )  # fmt: skip
    assert probed == (["t::last"] if probe else [])


# --- a second connection of an account (BCAST-001) ------------------------------------------


def _preflight_against(fault: str | None, tmp_path: Path) -> Gate:
    from harness.server.preflight import preflight
    from harness.target import parse

    faults = frozenset({fault}) if fault else frozenset()
    config = demo_config(database=str(tmp_path / "db.sqlite3"), faults=faults)
    gate = Gate()
    with ServerThread(config) as server:
        data = demo_target_dict(server.url_template)
        data["receive_timeout"] = 1.0
        asyncio.run(preflight(parse(data, where="<test>"), gate))
    return gate


def test_the_preflight_finds_an_account_served_on_one_connection_only(tmp_path: Path) -> None:
    gate = _preflight_against("one-connection-per-user", tmp_path)
    assert set(gate.failed) == {"BCAST-001"}, gate.failed  # the basics themselves hold
    assert not gate.accounts_shared
    assert "preflight-again" in gate.failed["BCAST-001"].failure.actual
    with pytest.raises(NotTested, match=r"blocked by BCAST-001 \(a second connection"):
        gate.check("BCAST-001", own=("ERR-002",))


def test_the_preflight_finds_a_clean_server_serving_every_connection(tmp_path: Path) -> None:
    gate = _preflight_against(None, tmp_path)
    assert not gate.failed and gate.accounts_shared and gate.errors_private and gate.echo_seen


def test_a_server_serving_one_connection_per_account_is_judged_one_test_at_a_time(
    tmp_path: Path,
) -> None:
    """BCAST-001 fails from the preflight's evidence; tests waiting on an account's second
    connection are blocked by it, and no other requirement fails (overlapping tests would have
    opened second connections for one another)."""
    config = demo_config(
        database=str(tmp_path / "db.sqlite3"), faults=frozenset({"one-connection-per-user"})
    )
    with ServerThread(config) as server:
        data = demo_target_dict(server.url_template)
        data["receive_timeout"] = 2.0
        target = write_target(tmp_path / "target.toml", data)
        code, results, output = run_suites(target, tmp_path / "reports")
    assert results is not None and code == 1, output[-3000:]
    failed = {r["id"] for r in results["requirements"] if r["verdict"] == "failed"}
    assert failed == {"BCAST-001"}, output[-3000:]
    blocked = [r["id"] for r in results["requirements"] if "blocked by BCAST-001" in str(r)]
    assert blocked, output[-3000:]
