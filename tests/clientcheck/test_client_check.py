"""client-check end to end: the reference client passes, each faulty client is caught.

Base delays are short (60 ms) so that the whole set runs in seconds, and the tolerances are
chosen per kind of fault so that a loaded machine (which makes clients late) cannot hide one:

- a *timing* fault (wrong delays, no counter reset) is several tolerances away from the expected
  time, and lateness only moves it further: a small tolerance (150 ms);
- a *count* fault (a second attempt, an attempt that should not come) must land inside the
  quiet period, whose length grows with the tolerance: a larger one (300 ms), so the margin is
  600 ms or more;
- the reference client must land inside every window: a large one too.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.client import Settings, check_client, main
from harness.client import cli as check_cli
from harness.core.results import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_NONCONFORMANT, EXIT_OK
from reference_client import ReconnectingClient
from tests.clientcheck.reports import read_reports

ROOT = Path(__file__).resolve().parents[2]
FAULTY = Path(__file__).with_name("faulty_client.py")
PY = shlex.quote(sys.executable)
ENV = ["--env", f"PYTHONPATH={ROOT}"]


def run_check(report_dir: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """Run client-check in this process; its exit status and its JSON (schema-checked)."""
    code = main([*args, *ENV, "--report-dir", str(report_dir)])
    return code, read_reports(report_dir, code)


def verdicts(data: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["verdict"] for r in data["requirements"]}


def _assert_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 5
    for pid in pids:
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, f"client process {pid} was left running"
            time.sleep(0.05)


def test_reference_client_passes_every_scenario(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    command = f"sh -c 'echo $$ >> {pidfile}; exec {PY} -m reference_client'"
    code, data = run_check(
        tmp_path, "--command", command, "--base-delay-ms", "60", "--tolerance-ms", "400"
    )
    assert code == EXIT_OK, [r for r in data["requirements"] if r["verdict"] != "passed"]
    assert (data["verdict"], data["conformant"], data["complete"]) == ("CONFORMANT", True, True)
    assert set(verdicts(data).values()) == {"passed"}
    names = [s["name"] for s in data["scenarios"]]
    assert names == [
        "unclean-drop",
        "refuse-then-accept",
        "give-up",
        "reset-after-open",
        "clean-close",
    ]
    give_up = data["scenarios"][2]
    assert [a["outcome"] for a in give_up["attempts"]] == ["accepted"] + ["refused"] * 5
    # Every scenario launched a fresh client, and none is left running.
    pids = [int(line) for line in pidfile.read_text().split()]
    assert len(pids) == 5
    _assert_gone(pids)
    html = (tmp_path / "client-compliance.html").read_text(encoding="utf-8")
    assert html.count("<svg") == 5
    assert "tolerance" in html and "400 ms" in html
    for requirement in data["requirements"]:
        assert requirement["statement"] in html.replace("&#x27;", "'").replace("&quot;", '"')
    # Self-contained: no script, no stylesheet or image fetched from anywhere.
    assert not re.search(r"<script|<link|<img|\bsrc=|url\((?!#)|@import", html)
    assert not re.search(r"href=\"(?!#)", html)


TIMING, COUNT = "150", "300"  # tolerances in ms, see the module docstring


@pytest.mark.parametrize(
    ("fault", "scenario", "requirement", "tolerance"),
    [
        ("no-reconnect", "unclean-drop", "CLIENT-001", COUNT),
        ("wrong-delay", "refuse-then-accept", "CLIENT-002", TIMING),
        ("double-schedule", "unclean-drop", "CLIENT-003", COUNT),
        ("unbounded", "give-up", "CLIENT-004", COUNT),
        ("no-reset", "reset-after-open", "CLIENT-005", TIMING),
        ("reconnect-after-clean", "clean-close", "CLIENT-006", COUNT),
        ("wrong-path", "unclean-drop", "CLIENT-007", COUNT),
        ("bad-frame", "unclean-drop", "CLIENT-008", COUNT),
    ],
)
def test_faulty_client_is_caught(
    tmp_path: Path, fault: str, scenario: str, requirement: str, tolerance: str
) -> None:
    code, data = run_check(
        tmp_path,
        "--command",
        f"{PY} {shlex.quote(str(FAULTY))}",
        "--env",
        f"EDUSPHERE_FAULT={fault}",
        "--scenario",
        scenario,
        "--base-delay-ms",
        "60",
        "--tolerance-ms",
        tolerance,
    )
    assert code == EXIT_NONCONFORMANT
    assert (data["verdict"], data["complete"]) == ("NON-CONFORMANT", True)
    assert verdicts(data)[requirement] == "failed", data["requirements"]
    html = (tmp_path / "client-compliance.html").read_text(encoding="utf-8")
    assert "FAILED" in html and requirement in html


def test_default_tolerance_is_stated_and_the_token_never_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = "tok-" + "s3cr3t" * 4
    code, data = run_check(
        tmp_path,
        "--command",
        f"{PY} -m reference_client",
        "--scenario",
        "clean-close",
        "--base-delay-ms",
        "100",
        "--token",
        token,
        "--path",
        f"/ws/chat/alice/general?token={token}",
    )
    assert code == EXIT_OK
    assert verdicts(data)["CLIENT-006"] == "passed"
    assert verdicts(data)["CLIENT-001"] == "not_tested"  # not a pass: nothing exercised it
    assert data["settings"]["tolerance_ms"] == 250
    assert data["settings"]["tolerance_is_default"] is True
    html = (tmp_path / "client-compliance.html").read_text(encoding="utf-8")
    assert "max(250 ms, 20 % of the base delay)" in html
    for name in ("client-compliance.html", "client-results.json", "client-junit.xml"):
        assert token not in (tmp_path / name).read_text(encoding="utf-8")
    # The per-scenario line, then the summary every mode prints.
    out = capsys.readouterr().out
    assert token not in out
    assert "  clean-close: CLIENT-006 passed" in out
    # The 7 MUSTs clean-close does not exercise are out of scope (--scenario), not untested.
    assert re.search(r"^MUST\s+1\s+0\s+0\s+0\s+0\s+7$", out, re.M), out
    assert "verdict: CONFORMANT against " in out
    assert "client-check: passed;" in out


def test_a_missing_command_is_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--command", "no-such-client-9f3e", "--report-dir", str(tmp_path), "-q"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "'no-such-client-9f3e' not found" in err


def test_a_command_that_exits_at_once_is_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = "print('bad config'); raise SystemExit(3)"
    code = main(
        ["--command", f"{PY} -c {shlex.quote(script)}", "--report-dir", str(tmp_path), "-q"]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "exited with status 3 before connecting" in err
    assert "bad config" in err


def test_a_client_that_never_connects_is_killed_even_if_it_ignores_sigterm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pidfile = tmp_path / "pid"
    script = (
        "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    code = main(
        [
            "--command",
            f"{PY} -c {shlex.quote(script)}",
            "--connect-timeout",
            "0.5",
            "--report-dir",
            str(tmp_path),
            "-q",
        ]
    )
    assert code == 2
    assert "no client connected" in capsys.readouterr().err
    _assert_gone([int(pidfile.read_text())])


def test_the_overall_timeout_ends_the_run_incomplete_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = run_check(
        tmp_path,
        "--command",
        f"{PY} -m reference_client",
        "--scenario",
        "give-up",
        "--base-delay-ms",
        "100",
        "--timeout",
        "1",
    )
    assert code == EXIT_INCOMPLETE
    assert (data["verdict"], data["complete"], data["conformant"]) == ("INCOMPLETE", False, False)
    assert "overall timeout" in data["reason"]
    assert data["incomplete"] == data["reason"]
    assert data["scenarios"][0]["incomplete"]
    out = capsys.readouterr().out
    assert "INCOMPLETE: the overall timeout" in out
    assert "client-check: INCOMPLETE (" in out


def test_ctrl_c_is_status_130(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(check_cli, "check_client", interrupted)
    code = main(["--command", "any-client", "--report-dir", str(tmp_path), "-q"])
    assert code == EXIT_INTERRUPTED
    assert "interrupted" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--command", "x", "--listen-only"],
        ["--command", "x", "--env", "NOEQUALS"],
        ["--command", "x", "--base-delay-ms", "0"],
        ["--command", "x", "--max-attempts", "0"],
        ["--command", "x", "--scenario", "nope"],
        ["--command", "'unbalanced"],
        ["--command", "x", "--path", "no-slash"],
    ],
    ids=[
        "nothing",
        "both-modes",
        "bad-env",
        "zero-delay",
        "zero-attempts",
        "unknown-scenario",
        "bad-quoting",
        "bad-path",
    ],
)
def test_usage_errors_are_status_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_listing_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-scenarios"]) == 0
    assert "reset-after-open" in capsys.readouterr().out


def test_listen_only_judges_an_external_client() -> None:
    """The harness waits for a client it did not launch (here: one in the same process)."""

    async def scenario() -> tuple[str, str]:
        tasks: list[asyncio.Task[str]] = []

        def announce(line: str) -> None:
            match = re.search(r"ws://\S+", line)
            assert match, line
            client: ReconnectingClient

            async def hello(number: int) -> None:
                await client.send_text(f"hello after reconnect {number}")

            client = ReconnectingClient(match.group(0), base_delay=0.1, on_open=hello)
            tasks.append(asyncio.get_running_loop().create_task(client.run()))

        settings = Settings(
            base_ms=100,
            tolerance_ms=400,
            command=None,
            scenarios=("unclean-drop",),
            connect_timeout_s=5,
        )
        result = await check_client(settings, announce)
        # At the end the harness closed the held connection with 1000: the client stops.
        (task,) = tasks
        finish = await asyncio.wait_for(task, 5)
        return result.verdicts["CLIENT-003"].verdict, finish

    verdict, finish = asyncio.run(scenario())
    assert verdict == "passed"
    assert finish == "clean-close"
