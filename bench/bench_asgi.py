"""The in-process figures of the README's "Performance" table (issue 15), as a person would time
them.

    python bench/bench_asgi.py [--runs 3] [--no-served] [--only IDS]

The Starlette application of tests/alt_servers/asgi, wall time of ``edusphere-conformance run``:

- in-process (``[asgi] app``), the default run: every suite (median of ``--runs``);
- in-process, ``--only CONN-001``: what a run costs before and around its tests (the
  interpreter, the imports, the application's import and lifespan, pytest's collection, the
  preflight, the reports);
- the same default run against the application served by uvicorn on 127.0.0.1 (one uvicorn
  process, started before the timing; RECON-006 accepted as not applicable: nothing restarts
  it); ``--no-served`` leaves it out.

``--only`` narrows the default runs to those requirements or areas (the README's test runs the
command at that size; the figures are the whole run's).

Figures, never assertions (a shared, noisy machine).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_speed import timed, verdict_of  # noqa: E402
from tests.support import write_not_applicable, write_target  # noqa: E402
from tests.test_asgi_alt import FIXTURE, _target, uvicorn  # noqa: E402


def series(label: str, cmd: list[str], env: dict[str, str], runs: int, reports: Path) -> None:
    walls = []
    for _ in range(runs):
        wall, code, _ = timed([*cmd, "--report-dir", str(reports)], env)
        walls.append(wall)
    shown = ", ".join(f"{w:.2f}" for w in walls)
    print(
        f"{label}: median {statistics.median(walls):.2f} s wall ({shown}); "
        f"{verdict_of(reports)}, exit {code}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-served", action="store_true", help="leave out the uvicorn run")
    parser.add_argument("--only", help="requirements or areas, comma-separated (default: all)")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "harness.cli", "run"]
    only = ["--only", args.only] if args.only else []
    if args.only:
        print(f"the default runs narrowed to --only {args.only}")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        data = base / "fixtures.json"
        data.write_text(json.dumps(FIXTURE), encoding="utf-8")
        alt = {"ALT_ASGI_SECRET": secrets.token_urlsafe(40), "ALT_ASGI_DATA": str(data)}
        env = {**os.environ, **alt}
        inproc = write_target(base / "inproc.toml", _target())
        series(
            "in-process, default run",
            [*cli, "--target", str(inproc), *only],
            env,
            args.runs,
            base / "in",
        )
        series(
            "in-process, --only CONN-001",
            [*cli, "--target", str(inproc), "--only", "CONN-001"],
            env,
            args.runs,
            base / "one",
        )
        if args.no_served:
            return 0
        with uvicorn(alt, base / "uvicorn.log") as url:
            served = write_target(base / "served.toml", _target(url))
            baseline = write_not_applicable(
                base / "baseline.toml", {"RECON-006": "in-memory messages: not restartable"}
            )
            series(
                "uvicorn on 127.0.0.1, default run",
                [*cli, "--target", str(served), "--baseline", str(baseline), *only],
                env,
                args.runs,
                base / "net",
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
