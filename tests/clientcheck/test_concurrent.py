"""client-check runs its scenarios concurrently: each on its own port with its own client.

What is asserted is behaviour, never a duration (the machine is shared): the same verdicts as a
``--sequential`` run, the records in the scenarios' order, one port and one client process per
scenario, and no client process left alive after a timeout or a Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from harness.client import Settings, SetupError, main
from harness.client import play as runner_mod
from harness.client.cli import build_parser, settings_from_args
from harness.client.play import ScenarioRun, default_timeout_s, run_scenarios
from harness.client.scenarios import SCENARIO_NAMES, SCENARIOS, Scenario, worst_case_s
from harness.core.results import EXIT_INCOMPLETE, EXIT_NONCONFORMANT, EXIT_OK
from tests.clientcheck.reports import read_reports

ROOT = Path(__file__).resolve().parents[2]
FAULTY = Path(__file__).with_name("faulty_client.py")
PY = shlex.quote(sys.executable)


def _client(pidfile: Path) -> str:
    """The faulty (or, with no fault, the reference) client, writing its pid to ``pidfile``."""
    return f"sh -c 'echo $$ >> {pidfile}; exec {PY} {shlex.quote(str(FAULTY))}'"


def _pids(pidfile: Path) -> list[int]:
    return [int(line) for line in pidfile.read_text().split()] if pidfile.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _check(report_dir: Path, *args: str, fault: str = "") -> tuple[int, dict[str, Any]]:
    code = main(
        [
            *args,
            "--env",
            f"PYTHONPATH={ROOT}",
            "--env",
            f"EDUSPHERE_FAULT={fault}",
            "--report-dir",
            str(report_dir),
            "-q",
        ]
    )
    return code, read_reports(report_dir, code)


def _verdicts(data: dict[str, Any]) -> dict[str, Any]:
    """The run's verdict per requirement, and each scenario's, in the scenarios' order."""
    return {
        "run": {r["id"]: r["verdict"] for r in data["requirements"]},
        "scenarios": [
            (s["name"], {rid: v["verdict"] for rid, v in s["verdicts"].items()})
            for s in data["scenarios"]
        ],
    }


# -- the same verdicts as one at a time --------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "code", "failed"),
    [
        ("", EXIT_OK, set()),
        ("wrong-path", EXIT_NONCONFORMANT, {"CLIENT-007"}),
        ("no-reconnect", EXIT_NONCONFORMANT, {"CLIENT-001"}),
        ("unbounded", EXIT_NONCONFORMANT, {"CLIENT-004"}),
    ],
    ids=["reference", "wrong-path", "no-reconnect", "unbounded"],
)
def test_concurrent_gives_the_verdicts_of_sequential(
    tmp_path: Path, fault: str, code: int, failed: set[str]
) -> None:
    # Tolerance 400 ms as for the reference client elsewhere: these faults are a path, a
    # missing reconnection and an attempt too many, none of them a matter of timing.
    common = ("--base-delay-ms", "60", "--tolerance-ms", "400")
    pidfile = tmp_path / "pids"
    at_once, in_turn = tmp_path / "concurrent", tmp_path / "sequential"
    code_at_once, data = _check(at_once, "--command", _client(pidfile), *common, fault=fault)
    code_in_turn, data_in_turn = _check(
        in_turn, "--command", _client(tmp_path / "pids2"), *common, "--sequential", fault=fault
    )

    assert code_at_once == code_in_turn == code
    assert _verdicts(data) == _verdicts(data_in_turn)
    assert {rid for rid, v in _verdicts(data)["run"].items() if v == "failed"} == failed
    # In the scenarios' order, each on a port of its own, each with a client of its own, and
    # none of them left running.
    assert [s["name"] for s in data["scenarios"]] == list(SCENARIO_NAMES)
    ports = [urlsplit(s["url"]).port for s in data["scenarios"]]
    assert len(set(ports)) == len(SCENARIOS), ports
    pids = _pids(pidfile)
    assert len(set(pids)) == len(SCENARIOS)
    assert not [pid for pid in pids if _alive(pid)]


def test_a_fixed_port_runs_the_scenarios_one_at_a_time(tmp_path: Path) -> None:
    """Both scenarios on the one port given: at once, the second could not listen on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    code, data = _check(
        tmp_path,
        "--command",
        _client(tmp_path / "pids"),
        "--port",
        str(port),
        "--scenario",
        "unclean-drop",
        "--scenario",
        "clean-close",
        "--base-delay-ms",
        "60",
        "--tolerance-ms",
        "400",
    )
    assert code == EXIT_OK
    assert [urlsplit(s["url"]).port for s in data["scenarios"]] == [port, port]


# -- when they run concurrently, and the bound --------------------------------------------------


def _args(*argv: str) -> Settings:
    return settings_from_args(build_parser().parse_args(["--command", "client", *argv]))


def test_what_runs_concurrently() -> None:
    assert _args().concurrent
    assert _args("--port", "0").concurrent
    assert not _args("--sequential").concurrent
    assert not _args("--port", "8765").concurrent
    listen = settings_from_args(build_parser().parse_args(["--listen-only"]))
    assert not listen.concurrent


def test_the_default_bound_is_the_longest_worst_case_when_concurrent() -> None:
    settings = Settings(command=("client",))
    worst = [worst_case_s(s, settings) for s in SCENARIOS]
    assert default_timeout_s(settings) == max(worst)
    assert default_timeout_s(Settings(command=("client",), sequential=True)) == sum(worst)
    assert default_timeout_s(Settings(command=("client",), port=8765)) == sum(worst)
    assert default_timeout_s(Settings(command=None)) == sum(worst)


# -- order and errors, with the scenarios stood in for ------------------------------------------

Fake = Callable[[Scenario, Settings, float, Callable[[str], None]], Any]


def _stand_in(monkeypatch: pytest.MonkeyPatch, fake: Fake) -> None:
    monkeypatch.setattr(runner_mod, "run_scenario", fake)


def _record(scenario: Scenario, port: int) -> ScenarioRun:
    return ScenarioRun(scenario, f"ws://127.0.0.1:{port}/", port, (), [], 0.0)


def test_records_come_in_the_scenarios_order_whatever_order_they_end_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ended: list[str] = []

    async def fake(
        scenario: Scenario, settings: Settings, deadline: float, announce: Callable[[str], None]
    ) -> ScenarioRun:
        # The last scenario ends first, the first one last.
        index = SCENARIO_NAMES.index(scenario.name)
        while len(ended) < len(SCENARIOS) - 1 - index:
            await asyncio.sleep(0)
        ended.append(scenario.name)
        return _record(scenario, 40000 + index)

    _stand_in(monkeypatch, fake)
    runs, reason, interrupted = asyncio.run(run_scenarios(Settings(command=("client",))))
    assert ended == list(reversed(SCENARIO_NAMES))
    assert [r.scenario.name for r in runs] == list(SCENARIO_NAMES)
    assert (reason, interrupted) == (None, False)


def test_a_setup_error_stops_every_other_scenario_and_names_the_first_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cancelled: list[str] = []
    failing = {"refuse-then-accept", "reset-after-open"}

    async def fake(
        scenario: Scenario, settings: Settings, deadline: float, announce: Callable[[str], None]
    ) -> ScenarioRun:
        if scenario.name == "reset-after-open":  # fails first, but is later in the order
            raise SetupError(f"cannot set up {scenario.name}")
        if scenario.name in failing:
            await asyncio.sleep(0)
            raise SetupError(f"cannot set up {scenario.name}")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(scenario.name)
            raise
        raise AssertionError("not reached")

    _stand_in(monkeypatch, fake)
    with pytest.raises(SetupError, match="cannot set up refuse-then-accept"):
        asyncio.run(run_scenarios(Settings(command=("client",))))
    assert sorted(cancelled) == sorted(set(SCENARIO_NAMES) - failing)


# -- timeout and Ctrl-C: no client left behind --------------------------------------------------


def test_the_overall_timeout_ends_a_concurrent_run_and_every_client(tmp_path: Path) -> None:
    # At a 1,000 ms base delay no scenario can end within 1 s but clean-close (whose client
    # exits after the close), so the first incomplete one in order is unclean-drop.
    pidfile = tmp_path / "pids"
    code, data = _check(
        tmp_path, "--command", _client(pidfile), "--base-delay-ms", "1000", "--timeout", "1"
    )
    assert code == EXIT_INCOMPLETE
    assert data["reason"] == "the overall timeout (1 s) was reached during unclean-drop"
    assert [s["name"] for s in data["scenarios"]] == list(SCENARIO_NAMES)
    assert data["scenarios"][0]["incomplete"] and data["scenarios"][2]["incomplete"]
    ports = [urlsplit(s["url"]).port for s in data["scenarios"]]
    assert len(set(ports)) == len(SCENARIOS)
    pids = _pids(pidfile)
    assert pids
    assert not [pid for pid in pids if _alive(pid)]


def test_ctrl_c_during_a_concurrent_run_ends_every_client_and_reports_the_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled (as asyncio.run cancels on Ctrl-C) once clean-close has ended; at a 2,000 ms
    base delay every other scenario is still waiting for its client's timers then."""
    pidfile = tmp_path / "pids"
    real = runner_mod.run_scenario
    finished: list[ScenarioRun] = []

    async def watched(
        scenario: Scenario, settings: Settings, deadline: float, announce: Callable[[str], None]
    ) -> ScenarioRun:
        run = await real(scenario, settings, deadline, announce)
        finished.append(run)
        return run

    _stand_in(monkeypatch, watched)
    settings = Settings(
        base_ms=2000,
        command=tuple(shlex.split(_client(pidfile))),
        env={"PYTHONPATH": str(ROOT)},
    )

    async def interrupt() -> tuple[list[ScenarioRun], str | None, bool]:
        task = asyncio.create_task(run_scenarios(settings, print))
        for _ in range(1200):  # a bound, not a timing: 60 s
            if len(_pids(pidfile)) == len(SCENARIOS) and finished:
                break
            await asyncio.sleep(0.05)
        task.cancel()
        return await task

    runs, reason, interrupted = asyncio.run(interrupt())

    assert interrupted
    names = [run.scenario.name for run in runs]
    assert "clean-close" in names and "give-up" not in names
    assert names == [n for n in SCENARIO_NAMES if n in names]  # in the scenarios' order
    first_unfinished = next(n for n in SCENARIO_NAMES if n not in names)
    assert reason == f"interrupted (Ctrl-C) during {first_unfinished}"
    pids = _pids(pidfile)
    assert len(set(pids)) == len(SCENARIOS)
    assert not [pid for pid in pids if _alive(pid)]
