"""The speed figures of the README's "Performance" table (issue 11), as a person would time them.

    python bench/bench_speed.py [--runs 3] [--no-slow] [--only IDS]

- the default run against the bundled reference server (``edusphere-conformance run``), wall
  time of each of ``--runs`` runs, concurrent (the default) and with ``--concurrency 1``;
- the same suites against the reference server with ``--latency 20-80`` (20-80 ms of processing
  per client frame, one frame at a time per connection) with ``--strict`` and a restart command,
  wall time and verdict (every MUST and SHOULD must pass); about 50 s: ``--no-slow`` leaves it
  out (``tests/test_slow_server.py`` runs the same thing as a test).

``--only`` narrows every run to those requirements or areas (the README's test runs the command
at that size; the figures are the whole run's).

Each fault switch's whole-run time: ``python bench/mutation_matrix.py --whole``. client-check:
``python bench/bench_client_check.py``. Figures, never assertions (a shared, noisy machine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reference_server.demo import demo_config  # noqa: E402
from tests.mutation import limited_target, serve_argv, server_process  # noqa: E402
from tests.support import write_target  # noqa: E402


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    done = subprocess.run(
        cmd, capture_output=True, text=True, cwd=ROOT, timeout=900, check=False, env=env
    )
    return time.perf_counter() - t0, done.returncode, done.stdout


def verdict_of(report_dir: Path) -> str:
    try:
        return str(json.loads((report_dir / "results.json").read_text())["verdict"])
    except (OSError, ValueError, KeyError):
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-slow", action="store_true", help="leave out the --latency run")
    parser.add_argument("--only", help="requirements or areas, comma-separated (default: all)")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "harness.cli", "run"]
    if args.only:
        cli += ["--only", args.only]
        print(f"every run narrowed to --only {args.only}")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for label, extra in (
            ("concurrent (default)", []),
            ("--concurrency 1", ["--concurrency", "1"]),
        ):
            walls = []
            for i in range(args.runs):
                out = base / f"default-{len(extra)}-{i}"
                wall, code, _ = timed([*cli, "--report-dir", str(out), *extra])
                walls.append(wall)
            print(
                f"default run, bundled server, {label}: median {statistics.median(walls):.1f} s "
                f"(runs: {', '.join(f'{w:.1f}' for w in walls)}), {verdict_of(out)}"
            )
        if args.no_slow:
            return 0
        config = demo_config(database=str(base / "slow.sqlite3"))
        argv = serve_argv(config.database, "--latency", "20-80")
        with server_process(argv, base) as (url, restart):
            target = write_target(base / "slow.toml", limited_target(url, config, restart))
            out = base / "slow"
            wall, code, stdout = timed(
                [*cli, "--target", str(target), "--strict", "--report-dir", str(out)]
            )
        print(f"--latency 20-80, --strict: {wall:.1f} s, {verdict_of(out)} (exit {code})")
        if code != 0:
            print(stdout[-2000:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
