"""A `[restart] command` for a reference cluster (``serve --nodes N``) running as its own
process group.

    python tests/matrix/restart_cluster.py STATE.json

STATE.json holds {"pid": ..., "argv": [...]}: the parent's pid and its command line, whose
``--port`` is fixed (node K listens on PORT+K-1), so the nodes come back where the target names
them. The script stops the whole group (SIGTERM to the parent, which stops its nodes; SIGKILL
after 10 s), starts the same command again in a new session (so it outlives this script), waits
until every node listens, and writes the new pid.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script, by path

from tests.matrix.restart_server import restart


def start(argv: list[str], nodes: int) -> tuple[subprocess.Popen[str], list[str]]:
    """Start the cluster; its node URLs once every node printed its "listening on" line."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
    )
    assert proc.stdout is not None
    urls: list[str] = []
    for line in proc.stdout:  # "node-K listening on ws://127.0.0.1:PORT/ws/chat/{host}/{room}"
        if " listening on " in line:
            urls.append(line.split(" listening on ", 1)[1].strip())
        if len(urls) == nodes:
            return proc, urls
    proc.wait()
    raise SystemExit(f"restart: the cluster did not start (exit {proc.returncode})")


def main(state_path: str) -> int:
    restart(Path(state_path), lambda state: start(state["argv"], state["nodes"])[0], group=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
