"""A correct but slow server passes everything (issue 11; protocol notes: "Slowness is not
non-conformance").

The reference server with ``--latency 20-80``: every client frame costs 20-80 ms of processing,
one frame at a time per connection (a database across a network). Every MUST and SHOULD passes
with ``--strict``, RECON-006 included (the server runs in its own process, restartable), and the
floods are sized by the pace the preflight measured.
"""

from __future__ import annotations

from pathlib import Path

from reference_server.demo import demo_config
from tests.mutation import limited_target, serve_argv, server_process
from tests.support import assert_passes_everything, run_suites, write_target


def test_a_slow_server_passes_every_must_and_should_strictly(tmp_path: Path) -> None:
    config = demo_config(database=str(tmp_path / "slow.sqlite3"))
    argv = serve_argv(config.database, "--latency", "20-80")
    with server_process(argv, tmp_path) as (url, restart_command):
        target = write_target(
            tmp_path / "target.toml", limited_target(url, config, restart_command)
        )
        code, results, output = run_suites(target, tmp_path / "reports", "--strict")
    assert_passes_everything(code, results, output)
    assert results is not None
    # The floods were sized by the pace the preflight measured (20-80 ms a frame).
    notes = [o for r in results["requirements"] for o in r.get("observations", [])]
    assert any("sized to the server's pace on one connection" in o for o in notes), notes
