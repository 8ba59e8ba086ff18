"""What one machine sustains in the load mode (issue 14), with 1 and 2 Locust workers.

    python bench/bench_loadmode.py [--users 50,100,150,200] [--rate 1] [--duration 10]
                                   [--workers 1,2]

Starts the bundled reference server (demo data, its own process), then for each worker count
and each number of connections runs ``edusphere-conformance load`` against it and prints, from
``load.json``: the verdict, the events delivered a second while sending (the median interval;
``users x users x rate`` is what the room asks for), latency p50 / p99, and the wall time. A
step *kept up* when it was DELIVERED and its median delivery rate reached 90% of what the room
asks: the last such step is what this machine sustains. The server shares the machine's cores
with the workers, so the figure bounds the harness and the server together.

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

from reference_server.demo import demo_target_dict  # noqa: E402
from reference_server.runner import ServerProcess  # noqa: E402
from tests.support import write_target  # noqa: E402

LOAD = [sys.executable, "-m", "harness.load"]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def step(target: Path, users: int, rate: float, duration: float, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-loadmode-") as tmp:
        argv = [*LOAD, "--target", str(target), "--users", str(users), "--rate", str(rate)]
        argv += ["--duration", str(duration), "--workers", str(workers), "--report-dir", tmp]
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        wall = time.perf_counter() - t0
        try:
            data: dict[str, Any] = json.loads((Path(tmp) / "load.json").read_text())
        except (OSError, ValueError):
            return {"wall": wall, "verdict": f"no load.json (exit {done.returncode})"}
    sending = [r for r in data["timeline"] if r["t"] < duration]
    rate_median = statistics.median([r["delivered_per_s"] for r in sending]) if sending else 0.0
    asked = users * users * rate
    return {
        "wall": wall,
        "verdict": data["verdict"],
        "delivered_per_s": rate_median,
        "asked_per_s": asked,
        "p50": data["latency_ms"]["p50"],
        "p99": data["latency_ms"]["p99"],
        "kept_up": data["verdict"] == "DELIVERED" and rate_median >= 0.9 * asked,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="50,100,150,200", help="connections, comma-separated")
    parser.add_argument("--rate", type=float, default=1.0, help="messages a second each (1)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of sending (10)")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated (1,2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-loadmode-") as tmp:
        server = ServerProcess(["--demo", "--db", str(Path(tmp) / "ref.sqlite3")]).launch()
        try:
            target = write_target(Path(tmp) / "target.toml", demo_target_dict(server.wait_ready()))
            for workers in _ints(args.workers):
                sustained = None
                for users in _ints(args.users):
                    r = step(target, users, args.rate, args.duration, workers)
                    if "p99" not in r:
                        print(f"{workers} workers, {users} connections: {r['verdict']}")
                        continue
                    print(
                        f"{workers} workers, {users:,} connections x {args.rate:g}/s: "
                        f"{r['verdict']}; {r['delivered_per_s']:,.0f} of {r['asked_per_s']:,.0f} "
                        f"events a second; latency p50 {r['p50']} ms, p99 {r['p99']} ms; "
                        f"{r['wall']:.1f} s wall" + ("" if r["kept_up"] else " (fell behind)"),
                        flush=True,
                    )
                    if r["kept_up"]:
                        sustained = (users, r["delivered_per_s"])
                if sustained:
                    print(
                        f"{workers} workers sustain {sustained[0]:,} connections, "
                        f"{sustained[1]:,.0f} events a second"
                    )
                else:
                    print(f"{workers} workers: no step kept up")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
