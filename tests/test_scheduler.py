"""Independent tests overlap (harness/server/scheduler.py) with the verdicts of a run one at a
time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reference_server.demo import demo_config, demo_target_dict
from reference_server.runner import ServerThread
from tests.support import ROOT, SUITES, run_suites, write_target

#: Seconds to wait for a frame (the demo target's is 5).
RECEIVE_TIMEOUT = 2.0


def by_requirement(results: dict[str, Any] | None) -> dict[str, str]:
    assert results is not None
    return {r["id"]: r["verdict"] for r in results["requirements"]}


# fanout-cap: only a room's first five connections get its events, so tests side by side starve
# one another; each test that timed out in that crowd runs again alone, for its own verdict.
@pytest.mark.parametrize("fault", [None, "not-found-typo", "errors-broadcast", "fanout-cap"])
def test_concurrent_and_one_at_a_time_give_the_same_verdicts(
    fault: str | None, tmp_path: Path
) -> None:
    faults = frozenset({fault}) if fault else frozenset()
    config = demo_config(database=str(tmp_path / "db.sqlite3"), faults=faults)
    with ServerThread(config) as server:
        data = demo_target_dict(server.url_template)
        # The reference server answers in milliseconds; the faults' missing frames are proven
        # by waiting this out. A wait that ran out in the crowd runs again alone, so the
        # short timeout cannot tell the two modes apart.
        data["receive_timeout"] = RECEIVE_TIMEOUT
        target = write_target(tmp_path / "target.toml", data)
        runs = {
            lanes: run_suites(target, tmp_path / f"reports-{lanes}", "--concurrency", lanes)
            for lanes in ("1", "8")
        }
    (code1, results1, _), (code8, results8, out8) = runs["1"], runs["8"]
    # 2 for the clean server: without a restart command RECON-006 is not tested.
    assert code1 == code8 == (1 if fault else 2), out8[-3000:]
    one, eight = by_requirement(results1), by_requirement(results8)
    if fault == "fanout-cap":
        # CONN-007's test opens exactly five connections, the cap: a connection of the test
        # before it that the server has not yet dropped decides it, in either mode (CI saw it
        # fail once one at a time). LOAD-001's burst reaches fifteen connections: the cap fails
        # it alone. Every other verdict is the same, and the crowd adds none.
        for verdicts in (one, eight):
            failed = {rid for rid, verdict in verdicts.items() if verdict == "failed"}
            assert {"BCAST-003", "LOAD-001"} <= failed <= {"BCAST-003", "CONN-007", "LOAD-001"}, (
                out8[-3000:]
            )
            verdicts.pop("CONN-007")
    assert one == eight


def test_exclusive_tests_come_first() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(SUITES), "--collect-only", "-q", "-p",
         "no:cacheprovider"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    ids = [line.split("::")[-1] for line in done.stdout.splitlines() if "::" in line]
    exclusive = {
        "test_vanished_client_does_not_stop_the_fan_out",
        "test_messages_survive_a_restart",
        "test_half_open_client_does_not_stop_the_fan_out",
        "test_rapid_reconnect_cycles_leave_the_server_serving",
        "test_handshake_latency",
        "test_concurrent_burst_reaches_every_connection_once",
        "test_lagging_reader_gets_every_event_or_a_close",
    }
    assert set(ids[: len(exclusive)]) == exclusive, ids[:7]
    # RECON-002's flood before RECON-001's ghosts (a room they stall would hide its verdict).
    flood, ghosts = (ids.index(f"test_{n}_client_does_not_stop_the_fan_out") for n in
                     ("half_open", "vanished"))  # fmt: skip
    assert flood < ghosts
