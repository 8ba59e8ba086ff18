"""``edusphere-conformance client-check``: command-line front end of the client conformance mode.

It prints a line per scenario, then the summary every mode prints
(:func:`harness.render.terminal.summary_lines`), and writes ``client-compliance.html``,
``client-results.json`` (schemas/results.json, ``mode: client``) and ``client-junit.xml`` to the
report directory.

Exit status, the same as ``edusphere-conformance run``'s (:attr:`RunResult.exit_status`):

- 0: conformant: no MUST requirement failed and every scenario ran to its end;
- 1: not conformant: a MUST requirement failed;
- 2: a usage error, a client that cannot be run at all (command not found, exits before
  connecting, never connects), a report that cannot be written, or an INCOMPLETE run (the
  overall timeout cut it short: no verdict);
- 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from harness import redact
from harness.client.check import check_client
from harness.client.play import SetupError
from harness.client.policy import default_tolerance_ms
from harness.client.results import ClientRun
from harness.client.scenarios import DEFAULT_PATH, SCENARIO_NAMES, SCENARIOS, Settings
from harness.core.failures import UsageError
from harness.core.results import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from harness.render.client_report import write_reports
from harness.render.terminal import summary_lines

__all__ = ["build_parser", "main", "settings_from_args"]

PROG = "edusphere-conformance client-check"
_SHOWN = 5  # failures printed per scenario; the report has them all


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Check a chat client's reconnection policy against the seed (CLIENT-001..008). "
            "The harness plays the server on 127.0.0.1 and launches the client once per "
            "scenario with the URL in EDUSPHERE_WS_URL (also set: EDUSPHERE_RECONNECT_DELAY_MS, "
            "EDUSPHERE_MAX_RECONNECT_ATTEMPTS, and EDUSPHERE_TOKEN with --token). The scenarios "
            "run concurrently, each with its own port, server and client process, unless "
            "--sequential, --listen-only or a fixed --port is given."
        ),
    )
    who = parser.add_mutually_exclusive_group()
    who.add_argument(
        "--command",
        metavar="CMD",
        help='the client command, split like a shell would (e.g. "python -m reference_client")',
    )
    who.add_argument(
        "--listen-only",
        action="store_true",
        help="launch nothing: print the address and wait for an external client per scenario",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIO_NAMES,
        metavar="NAME",
        help=f"run only this scenario (repeatable; default all): {', '.join(SCENARIO_NAMES)}",
    )
    parser.add_argument(
        "--base-delay-ms",
        type=float,
        default=3000.0,
        metavar="MS",
        help="RECONNECT_DELAY the client uses (default 3000)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=5,
        metavar="N",
        help="MAX_RECONNECT_ATTEMPTS the client uses (default 5)",
    )
    parser.add_argument(
        "--tolerance-ms",
        type=float,
        default=None,
        metavar="MS",
        help="allowed deviation of an attempt from its expected time "
        "(default max(250, 20%% of the base delay))",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=Path("reports"),
        metavar="DIR",
        help="where client-compliance.html, client-results.json and client-junit.xml go "
        "(default reports/)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="overall bound of the run in seconds (default: the longest scenario's worst case "
        "when the scenarios run concurrently, the sum of every scenario's worst case when they "
        "run one at a time)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=None,
        metavar="S",
        help="how long to wait for the client's first connection in each scenario "
        "(default 10 s, 120 s with --listen-only)",
    )
    parser.add_argument(
        "--frame-wait-ms",
        type=float,
        default=2000.0,
        metavar="MS",
        help="how long to wait for the client's first frame before dropping or closing "
        "(default 2000)",
    )
    parser.add_argument(
        "--path",
        default=DEFAULT_PATH,
        help=f"the room path in the URL given to the client (default {DEFAULT_PATH})",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="port to listen on (default: a free one per scenario; a fixed port runs the "
        "scenarios one at a time, since one port cannot serve several at once; with "
        "--listen-only the port is kept for every scenario)",
    )
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="run the scenarios one at a time (default: concurrently, each on its own port "
        "with its own client process; always one at a time with --listen-only or --port)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment variable for the client command (repeatable)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="token passed to the client as EDUSPHERE_TOKEN (redacted from reports)",
    )
    parser.add_argument("--list-scenarios", action="store_true", help="list the scenarios and exit")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the summary line")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Validate the parsed options; raises :class:`UsageError` with one line."""
    if args.command is None and not args.listen_only:
        raise UsageError("give the client to check with --command CMD, or use --listen-only")
    command: tuple[str, ...] | None = None
    if args.command is not None:
        try:
            command = tuple(shlex.split(args.command))
        except ValueError as exc:
            raise UsageError(f"--command: {exc}") from None
        if not command:
            raise UsageError("--command is empty")
    if args.base_delay_ms <= 0:
        raise UsageError("--base-delay-ms must be positive")
    if args.max_attempts < 1:
        raise UsageError("--max-attempts must be at least 1")
    if args.tolerance_ms is not None and args.tolerance_ms < 0:
        raise UsageError("--tolerance-ms must not be negative")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if args.connect_timeout is not None and args.connect_timeout <= 0:
        raise UsageError("--connect-timeout must be positive")
    if args.frame_wait_ms < 0:
        raise UsageError("--frame-wait-ms must not be negative")
    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    if not args.path.startswith("/"):
        raise UsageError("--path must start with '/'")
    env: dict[str, str] = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--env expects KEY=VALUE, got {item!r}")
        env[key] = value
    connect_timeout = args.connect_timeout
    if connect_timeout is None:
        connect_timeout = 120.0 if args.listen_only else 10.0
    return Settings(
        base_ms=args.base_delay_ms,
        max_attempts=args.max_attempts,
        tolerance_ms=args.tolerance_ms,
        command=command,
        env=env,
        token=args.token,
        path=args.path,
        host=args.host,
        port=args.port,
        connect_timeout_s=connect_timeout,
        frame_wait_ms=args.frame_wait_ms,
        timeout_s=args.timeout,
        scenarios=tuple(args.scenario or ()),
        sequential=args.sequential,
    )


def _say(line: str) -> None:
    print(redact.redact(line), flush=True)


def _print_summary(run: ClientRun, quiet: bool) -> None:
    """A line per scenario (its focus requirements, then the details of its failures) and the
    summary every mode prints."""
    if quiet:
        return
    for scenario in run.scenarios:
        marks = ", ".join(
            f"{rid} {scenario.verdicts[rid].verdict.replace('_', ' ')}" for rid in scenario.focus
        )
        _say(f"  {scenario.name}: {marks}")
        failures = [f for f in scenario.findings if f.verdict == "failed"]
        for finding in failures[:_SHOWN]:
            _say(f"    {finding.requirement}: {finding.detail}")
        if len(failures) > _SHOWN:
            _say(f"    ... {len(failures) - _SHOWN} more in the report")
    _say("")
    for line in summary_lines(run.result):
        _say(line)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``client-check``; returns the exit status (see the module docstring)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before or after the scenarios (during them: reported)
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if args.list_scenarios:
        for scenario in SCENARIOS:
            print(f"{scenario.name:20} {scenario.title}")
        return EXIT_OK
    try:
        settings = settings_from_args(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if os.environ.get("EDUSPHERE_TOKEN"):
        redact.register(os.environ["EDUSPHERE_TOKEN"])
    if not args.quiet:
        tolerance = settings.tolerance
        how = "default" if args.tolerance_ms is None else "given"
        _say(
            f"client-check: base delay {settings.base_ms:g} ms, max attempts "
            f"{settings.max_attempts}, tolerance {tolerance:g} ms ({how}; default is "
            f"{default_tolerance_ms(settings.base_ms):g} ms), scenarios: "
            + ", ".join(s.name for s in settings.selected())
        )
    try:
        run = asyncio.run(check_client(settings, _say))
    except SetupError as exc:
        print(f"{PROG}: error: {redact.redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if run.result.interrupted:
        print(f"{PROG}: interrupted; reporting the scenarios recorded so far", file=sys.stderr)
    _print_summary(run, args.quiet)
    try:
        paths = write_reports(run, args.report_dir)
    except OSError as exc:
        print(f"{PROG}: error: cannot write the reports: {exc}", file=sys.stderr)
        return EXIT_USAGE
    failed = run.failed_musts
    verdict = "FAILED (" + ", ".join(failed) + ")" if failed else "passed"
    if run.incomplete:
        verdict = f"INCOMPLETE ({run.incomplete})" + (
            f", FAILED ({', '.join(failed)})" if failed else ""
        )
    _say(f"client-check: {verdict}; report {paths.html}, results {paths.json}, junit {paths.junit}")
    return run.exit_status
