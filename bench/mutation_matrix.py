"""Print the mutation matrix: every fault switch, what it must trip, what the suites observed.

    python bench/mutation_matrix.py [--jobs N] [--whole] [FAULT ...]

The same runs as ``tests/test_mutation_matrix.py`` (which asserts them), as a table with the
time each switch took and the total: the README quotes it. ``--whole``: each switch's run is
the whole default run (every suite, the default timeouts, as against a broken deploy), and the
table gives each switch's wall time and verdict beside the requirements it must fail, one
switch at a time by default (as a user's run would be: two at once on two cores share the CPU).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reference_server.faults import FAULTS
from tests.mutation import Outcome, run_fault, table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("faults", nargs="*", help="default: every switch")
    parser.add_argument("--jobs", type=int, help="switches at once (default 2; --whole: 1)")
    parser.add_argument("--markdown", action="store_true", help="the README's table")
    parser.add_argument(
        "--whole", action="store_true", help="whole runs with the default timeouts, timed"
    )
    args = parser.parse_args()
    jobs = args.jobs or (1 if args.whole else 2)
    names = args.faults or list(FAULTS)
    t0 = time.perf_counter()

    def timed(name: str) -> tuple[Outcome, float]:
        start = time.perf_counter()
        return run_fault(name, whole=args.whole), time.perf_counter() - start

    with ThreadPoolExecutor(jobs) as pool:
        outcomes = list(pool.map(timed, names))
    total = time.perf_counter() - t0
    if args.whole:
        for outcome, wall in sorted(outcomes, key=lambda pair: pair[0].fault):
            word = {0: "CONFORMANT", 1: "NON-CONFORMANT", 2: "INCOMPLETE"}.get(
                outcome.exit_code, f"exit {outcome.exit_code}"
            )
            # In a whole run a documented requirement may be blocked by a failed basic instead.
            missed = f"  (not failed: {', '.join(outcome.missing)})" if outcome.missing else ""
            print(f"{outcome.fault:<24} {wall:6.1f} s  {word:<15}{missed}")
        walls = sorted(wall for _, wall in outcomes)
        failing = sum(1 for o, _ in outcomes if o.exit_code == 1)
        print(
            f"\n{failing}/{len(outcomes)} switches NON-CONFORMANT; median "
            f"{statistics.median(walls):.1f} s, slowest {walls[-1]:.1f} s; {total:.1f} s wall "
            f"with {jobs} jobs"
        )
        return 0 if failing == len(outcomes) else 1
    if args.markdown:
        from tests.readme_sections import fault_rows

        print(fault_rows({o.fault: sorted(o.failed) for o, _ in outcomes}))
    else:
        for line in table([o.row() for o, _ in outcomes]):
            print(line)
    killed = sum(1 for o, _ in outcomes if o.exit_code == 1 and not o.missing and not o.unexplained)
    slowest = max(outcomes, key=lambda pair: pair[1])
    print(
        f"\n{killed}/{len(outcomes)} switches killed at their documented requirements; "
        f"{total:.1f} s wall with {jobs} jobs (slowest: {slowest[0].fault}, "
        f"{slowest[1]:.1f} s)"
    )
    return 0 if killed == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
