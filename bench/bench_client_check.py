"""How long client-check takes on the reference client at the seed's delays.

    python bench/bench_client_check.py [--sequential] [--base-delay-ms 3000]

Runs ``client-check`` of the reference client (``python -m reference_client``) in a subprocess,
every scenario at the seed's 3,000 ms base delay, with the scenarios concurrently (the default;
target <= 60 s) and, with ``--sequential``, once more one at a time (the client-check option of
the same name), then prints the wall time and the verdict of each, and whether the two runs gave
every requirement and every scenario the same verdicts.

Figures, not assertions: bench/README.md quotes them with this command. Never a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def run(report_dir: Path, base_ms: float, *extra: str) -> tuple[float, int, dict[str, Any]]:
    """One client-check run: its wall time, exit status and client-results.json."""
    client = f"{shlex.quote(sys.executable)} -m reference_client"
    cmd = [
        sys.executable,
        "-m",
        "harness.client",
        "--command",
        client,
        "--base-delay-ms",
        f"{base_ms:g}",
        "--report-dir",
        str(report_dir),
        "-q",
        *extra,
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    done = subprocess.run(
        cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900, check=False
    )
    wall = time.perf_counter() - t0
    results = report_dir / "client-results.json"
    if not results.is_file():
        sys.exit(f"client-check wrote no results (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return wall, done.returncode, json.loads(results.read_text(encoding="utf-8"))


def verdicts(data: dict[str, Any]) -> dict[str, Any]:
    """Every requirement's verdict, and every scenario's, in the scenarios' order."""
    return {
        "run": {r["id"]: r["verdict"] for r in data["requirements"]},
        "scenarios": [
            (s["name"], {rid: v["verdict"] for rid, v in s["verdicts"].items()})
            for s in data["scenarios"]
        ],
    }


def describe(data: dict[str, Any]) -> str:
    failed = [r["id"] for r in data["requirements"] if r["verdict"] == "failed"]
    text = str(data["verdict"])
    if failed:
        text += f" (failed: {', '.join(failed)})"
    if data.get("reason"):
        text += f" - {data['reason']}"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="also run the scenarios one at a time (about 140 s at 3,000 ms) and compare",
    )
    parser.add_argument("--base-delay-ms", type=float, default=3000.0, metavar="MS")
    args = parser.parse_args()
    modes: list[tuple[str, tuple[str, ...]]] = [("concurrent", ())]
    if args.sequential:
        modes.append(("sequential", ("--sequential",)))
    seen: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in modes:
            wall, code, data = run(Path(tmp) / name, args.base_delay_ms, *extra)
            seen[name] = verdicts(data)
            print(
                f"{name:10}: {wall:6.1f} s wall, exit {code}, {describe(data)}, "
                f"base delay {args.base_delay_ms:g} ms, {len(data['scenarios'])} scenarios",
                flush=True,
            )
    if len(seen) == 2:
        same = seen["concurrent"] == seen["sequential"]
        print(f"verdicts identical (every requirement, every scenario): {same}")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
