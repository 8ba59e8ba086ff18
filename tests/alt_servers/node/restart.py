"""The `[restart] command` for the Node.js server of tests/test_alt_server.py.

    python tests/alt_servers/node/restart.py STATE.json

STATE.json holds {"pid": ..., "argv": ["node", "server.js", "--data=...", "--port=0"],
"port": ...}. The server journals every change as it happens, so a SIGTERM loses nothing; the
stop/start/wait cycle is tests/matrix/restart_server.py's (it restarts on the same port and
writes the new pid back to STATE.json).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.matrix.restart_server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
