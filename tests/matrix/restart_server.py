"""A `[restart] command` for a reference server running as its own process.

    python tests/matrix/restart_server.py STATE.json

STATE.json holds {"pid": ..., "argv": [...], "port": ...}. The script stops that process
(SIGTERM, then SIGKILL after 10 s), starts the same command again on the same port in a new
session (so it outlives this script), waits for its "listening on" line, and writes the new pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def start(argv: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "listening on ws://127.0.0.1:PORT/ws/chat/{host}/{room}"
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"restart: the server did not start: {line.strip()!r}")
    return proc, line.removeprefix("listening on ").strip()


def _alive(pid: int) -> bool:
    """Running (a zombie, whose parent has not reaped it yet, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop(pid: int, *, group: bool = False) -> None:
    """SIGTERM ``pid`` (with ``group``, its whole process group), wait up to 10 s for it to
    go, then SIGKILL."""
    send = os.killpg if group else os.kill
    try:
        send(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not _alive(pid):
            return
        time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError):
        send(pid, signal.SIGKILL)


def restart(
    path: Path, launch: Callable[[dict[str, Any]], subprocess.Popen[str]], *, group: bool = False
) -> None:
    """Stop the process STATE.json at ``path`` names, ``launch`` it again from the state (its
    ports may linger a moment after the old process exits: a few tries), write the new pid."""
    state = json.loads(path.read_text())
    stop(state["pid"], group=group)
    for _ in range(50):
        try:
            proc = launch(state)
            break
        except SystemExit:
            time.sleep(0.05)
    else:
        raise SystemExit("restart: could not start it again")
    state["pid"] = proc.pid
    path.write_text(json.dumps(state))


def main(state_path: str) -> int:
    def launch(state: dict[str, Any]) -> subprocess.Popen[str]:
        argv = [a if a != "--port=0" else f"--port={state['port']}" for a in state["argv"]]
        return start(argv)[0]

    restart(Path(state_path), launch)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
