"""How long a gate takes against servers like the ones met in the field (issue 28).

    python bench/bench_gate.py [--runs 1] [--only slow-heartbeat,channels-like,bundled]

Three runs of ``edusphere-conformance run --strict`` (each ``--runs`` times; median and every
run), each against a reference server in a process of its own with a restart command:

- **slow-heartbeat**: a correct server with 20-80 ms of processing per client frame (one frame
  at a time per connection, as a handler that writes to a database across a network) and a
  0.5 s heartbeat (``--ping-interval 0.5 --ping-timeout 0.5``, as aiohttp's ``heartbeat=``);
  CONFORMANT is the only right verdict;
- **channels-like**: Django Channels' channel layer (``--fault drop-when-busy``: each connection
  takes at most 64 events per 200 ms, a mailbox of 64 holds the next, and an event for a full
  mailbox is dropped without a word) with 2-10 ms of processing per frame; NONCONFORMANT at
  LOAD-001 is the right verdict;
- **bundled**: the default run against the bundled reference server (no target file).

For each it prints the wall time, the verdict, the failed requirements and the five slowest
tests (from results.json's ``tests``). Figures, never assertions (a shared, noisy machine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_load import run as timed_run  # noqa: E402

from reference_server.demo import demo_config  # noqa: E402
from tests.mutation import limited_target, serve_argv, server_process  # noqa: E402
from tests.support import write_target  # noqa: E402

SERVERS: dict[str, tuple[str, ...] | None] = {
    "slow-heartbeat": ("--latency", "20-80", "--ping-interval", "0.5", "--ping-timeout", "0.5"),
    "channels-like": ("--fault", "drop-when-busy", "--latency", "2-10"),
    "bundled": None,
}


def describe(results: dict[str, Any] | None) -> list[str]:
    if not results:
        return ["  no results.json"]
    failed = [r["id"] for r in results["requirements"] if r["verdict"] == "failed"]
    lines = [f"  verdict {results['verdict']}; failed: {', '.join(failed) or 'none'}"]
    for test in results.get("tests", [])[:5]:
        name = test["nodeid"].rsplit("::", 1)[-1]
        lines.append(f"    {test['duration_s']:6.2f} s  {name}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--only", default=",".join(SERVERS), help="comma-separated servers")
    parser.add_argument("--keep", metavar="DIR", help="keep each run's reports under DIR")
    parser.add_argument("run_args", nargs="*", help="after --: more options of `run` (--only ID)")
    args = parser.parse_args()
    options_of_run = ["--strict", "--time-budget", "1000", *args.run_args]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep or tmp)
        for name in args.only.split(","):
            options = SERVERS[name]
            walls: list[float] = []
            lines: list[str] = []
            for i in range(args.runs):
                work = base / f"{name}-{i}"
                work.mkdir(parents=True, exist_ok=True)
                if options is None:
                    wall, results = timed_run(options_of_run, work / "reports")
                else:
                    config = demo_config(database=str(work / "chat.sqlite3"))
                    with server_process(serve_argv(config.database, *options), work) as (
                        url,
                        restart,
                    ):
                        target = write_target(
                            work / "target.toml", limited_target(url, config, restart)
                        )
                        wall, results = timed_run(
                            [*options_of_run, "--target", str(target)], work / "reports"
                        )
                walls.append(wall)
                lines = describe(results)
            runs = ", ".join(f"{w:.1f}" for w in walls)
            print(f"{name}: median {statistics.median(walls):.1f} s (runs: {runs})")
            print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
