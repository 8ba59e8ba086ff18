"""A correct but slow server passes everything (issue 11; protocol notes: "Slowness is not
non-conformance").

The reference server with ``--latency 20-80``: every client frame costs 20-80 ms of processing,
one frame at a time per connection (a database across a network). Every MUST and SHOULD passes
with ``--strict``, RECON-006 included (the server runs in its own process, restartable).
"""

from __future__ import annotations

import sys
from pathlib import Path

from reference_server.demo import demo_config, demo_target_dict
from tests.mutation import server_process
from tests.support import run_suites, verdicts, write_target


def test_a_slow_server_passes_every_must_and_should_strictly(tmp_path: Path) -> None:
    config = demo_config(database=str(tmp_path / "slow.sqlite3"))
    argv = [
        sys.executable,
        "-m",
        "reference_server",
        "serve",
        "--demo",
        "--port=0",
        "--db",
        config.database,
        "--latency",
        "20-80",
    ]
    with server_process(argv, tmp_path) as (url, restart_command):
        data = demo_target_dict(url)
        data["limits"] = {
            "max_length": config.max_length,
            "max_frame_bytes": config.max_frame_bytes,
        }
        data["restart"] = {"command": restart_command}
        target = write_target(tmp_path / "target.toml", data)
        code, results, output = run_suites(target, tmp_path / "reports", "--strict")
    assert results is not None, output[-3000:]
    failed = verdicts(results, "failed", ("MUST", "SHOULD", "INFO"))
    not_tested = verdicts(results, "not_tested")
    assert not failed, f"failed {failed}\n{output[-4000:]}"
    assert not not_tested, f"not tested {not_tested}\n{output[-4000:]}"
    assert code == 0, output[-3000:]
