"""The load figures of the README's "Performance" table (issue 13), as a person would time them.

    python bench/bench_load.py [--runs 3] [--no-slow]

- ``edusphere-conformance run --only LOAD`` against the bundled reference server (the issue's
  bound: at most 10 s), wall time of each of ``--runs`` runs, with the burst's figures (rate,
  latency p50 / p99) from ``results.json``;
- ``--only LOAD,NODE`` against a two-node reference cluster on a Redis of its own
  (``serve --nodes 2 --broker``), the same figures;
- ``--only LOAD`` against the reference server with ``--latency 20-80`` (a slow server must pass;
  about 30 s: ``--no-slow`` leaves it out).

Figures, never assertions (a shared, noisy machine).
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reference_server.demo import demo_config, demo_target_dict  # noqa: E402
from reference_server.runner import ClusterProcess, RedisServer  # noqa: E402
from tests.mutation import limited_target, serve_argv, server_process  # noqa: E402
from tests.support import write_target  # noqa: E402

CLI = [sys.executable, "-m", "harness.cli", "run"]


def run(extra: list[str], out: Path) -> tuple[float, dict[str, Any]]:
    """``run`` with ``extra`` and its reports in ``out``: (wall seconds, results.json, or {}
    when it wrote none). bench/bench_gate.py times its runs with it too."""
    t0 = time.perf_counter()
    subprocess.run(
        [*CLI, "--report-dir", str(out), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    wall = time.perf_counter() - t0
    try:
        results: dict[str, Any] = json.loads((out / "results.json").read_text())
    except (OSError, ValueError):
        results = {}
    return wall, results


def figures(results: dict[str, Any]) -> str:
    by_id = {r["id"]: r for r in results.get("requirements", [])}
    burst = (by_id.get("LOAD-004", {}).get("figures") or [{}])[0]
    lag = (by_id.get("LOAD-002", {}).get("figures") or [{}])[0]
    return (
        f"{results.get('verdict', '?')}; burst {burst.get('deliveries', 0):,} deliveries at "
        f"{burst.get('rate_per_s') or 0:,.0f}/s, p50 {burst.get('p50_ms')} ms, p99 "
        f"{burst.get('p99_ms')} ms; lag {lag.get('delivered', 0):,}/{lag.get('messages', 0):,} "
        f"events after {lag.get('lagged_s')} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-slow", action="store_true", help="leave out the --latency run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        walls = []
        for i in range(args.runs):
            wall, results = run(["--only", "LOAD"], base / f"bundled-{i}")
            walls.append(wall)
        print(
            f"--only LOAD, bundled server: median {statistics.median(walls):.1f} s "
            f"(runs: {', '.join(f'{w:.1f}' for w in walls)}); {figures(results)}"
        )
        database = str(base / "cluster.sqlite3")
        with (
            RedisServer() as redis,
            ClusterProcess(["--demo", "--db", database], 2, redis.url) as c,
        ):
            data = demo_target_dict(c.urls[0])
            data["nodes"] = c.urls
            target = write_target(base / "cluster.toml", data)
            wall, results = run(["--target", str(target), "--only", "LOAD,NODE"], base / "cl")
        print(f"--only LOAD,NODE, 2-node cluster on Redis: {wall:.1f} s; {figures(results)}")
        if args.no_slow:
            return 0
        config = demo_config(database=str(base / "slow.sqlite3"))
        argv = serve_argv(config.database, "--latency", "20-80")
        with server_process(argv, base) as (url, _restart):
            target = write_target(base / "slow.toml", limited_target(url, config))
            wall, results = run(["--target", str(target), "--only", "LOAD"], base / "slow")
        print(f"--only LOAD, --latency 20-80: {wall:.1f} s; {figures(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
