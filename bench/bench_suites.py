"""How fast the conformance run is: the whole default run, and the median test.

    python bench/bench_suites.py [--runs 3] [--only IDS]

Runs ``pytest suites`` against the bundled reference server (no parallelism) ``--runs`` times in
a subprocess and prints the wall time of each run (targets: whole run < 8 s) and the median test
duration read from pytest's JUnit file (target < 50 ms). Then runs once more under pytest-xdist
(``-n 2``) and checks that every requirement gets the same verdict. ``--only`` narrows every run
to those requirements or areas (the README's test runs the command at that size; the figures
are the whole run's).

Figures, not assertions: the README quotes them with this command. Never a timed test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(report_dir: Path, *extra: str) -> tuple[float, list[float], dict[str, str]]:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(ROOT / "suites"),
        "-q",
        "-p",
        "no:cacheprovider",
        "--report-dir",
        str(report_dir),
        # pytest's own JUnit file, for the per-test durations (the report directory's junit.xml
        # has one case per requirement)
        "--junitxml",
        str(report_dir / "pytest-junit.xml"),
        *extra,
    ]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"the run failed (exit {done.returncode}):\n{done.stdout[-2000:]}")
    tree = ET.parse(report_dir / "pytest-junit.xml")
    durations = [float(case.get("time", "0")) for case in tree.iter("testcase")]
    results = json.loads((report_dir / "results.json").read_text())
    verdicts = {r["id"]: r["verdict"] for r in results["requirements"]}
    return wall, durations, verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", help="requirements or areas, comma-separated (default: all)")
    args = parser.parse_args()
    only = ["--only", args.only] if args.only else []
    walls: list[float] = []
    medians: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            wall, durations, serial = run(Path(tmp) / f"serial-{i}", *only)
            walls.append(wall)
            medians.append(statistics.median(durations) * 1000)
            print(
                f"run {i + 1}: {wall:5.2f} s wall, {len(durations)} tests, "
                f"median test {medians[-1]:.1f} ms, slowest {max(durations) * 1000:.0f} ms"
            )
        wall_x, _, parallel = run(Path(tmp) / "xdist", "-n", "2", *only)
    same = parallel == serial
    print()
    if args.only:
        print(f"every run narrowed to --only {args.only}")
    print(
        f"whole default run (serial): median {statistics.median(walls):.2f} s wall (target < 8 s)"
    )
    print(f"median test: {statistics.median(medians):.1f} ms (target < 50 ms)")
    print(f"under -n 2: {wall_x:.2f} s wall; verdicts identical to the serial run: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
