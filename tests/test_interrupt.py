"""Ctrl-C behaves the same in both modes: exit status 130, and the reports still written, marked
INCOMPLETE with the reason, holding what was judged before the interrupt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import schemas
from tests.support import ROOT


def _as_in_a_terminal() -> None:
    """In the child: SIGINT as a terminal gives it. A test run started in the background of a
    non-interactive shell (``cmd &``, as CI scripts do) ignores SIGINT, and an ignored signal
    stays ignored across exec: the harness would never see the Ctrl-C this test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_when(cmd: list[str], ready: str | Path, timeout: float = 120) -> tuple[int, str]:
    """Start ``cmd``, send SIGINT once its output shows ``ready`` (a line) or once ``ready`` (a
    file) exists; (exit status, output)."""
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=_as_in_a_terminal,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    if isinstance(ready, Path):
        deadline = time.monotonic() + timeout
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
    else:
        for line in proc.stdout:
            seen.append(line)
            if ready in line:
                proc.send_signal(signal.SIGINT)
                break
    try:
        rest, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        rest, _ = proc.communicate()
    return proc.returncode, "".join(seen) + rest


def check_interrupted(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert schemas.validate("results", data) == []
    assert data["complete"] is False and data["conformant"] is False
    assert data["verdict"] == "INCOMPLETE" and data["exit_status"] == 130
    assert "interrupted" in str(data["reason"])
    return data


def test_ctrl_c_during_run_exits_130_with_the_results_so_far(tmp_path: Path) -> None:
    code, out = interrupt_when(
        [sys.executable, "-m", "harness.cli", "run", "--report-dir", str(tmp_path)],
        ready="tests:",  # the first area's progress line: tests have run
    )
    assert code == 130, out[-2000:]
    assert "interrupted" in out
    data = check_interrupted(tmp_path / "results.json")
    assert data["summary"]["MUST"]["passed"] > 0  # type: ignore[index]


def test_ctrl_c_during_client_check_exits_130_with_the_scenarios_so_far(tmp_path: Path) -> None:
    started = tmp_path / "client-started"  # the client marks its start, then becomes refclient
    client = tmp_path / "client.py"
    client.write_text(
        "import os, sys\n"
        f"open({str(started)!r}, 'w').close()\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'reference_client'])\n",
        encoding="utf-8",
    )
    code, out = interrupt_when(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "client-check",
            "--command",
            f"{sys.executable} {client}",
            "--base-delay-ms",
            "3000",
            "--report-dir",
            str(tmp_path),
        ],
        ready=started,
    )
    assert code == 130, out[-2000:]
    assert "interrupted" in out
    check_interrupted(tmp_path / "client-results.json")
