"""``edusphere-conformance load``: delivery under sustained load, on Locust.

::

    edusphere-conformance load --target FILE --users N --rate R --duration S [--workers W]
        [--master-host HOST] [--report-dir DIR]

N connections of the target's participant accounts (``rooms.main``, spread over ``nodes``)
each send R messages a second for S seconds and read everything; every connection that stays
open must receive every accepted message of every sender exactly once, each sender's in order.
One process by default; ``--workers W`` forks W local Locust workers; workers on other
machines join with ``edusphere-conformance load --master-host HOST`` (and the master waits for
``--expect-workers``).

Exit status: 0 delivered; 1 loss, duplicates or disorder; 2 a usage error, a bad target file,
an unreachable target, refused tokens, or a run that could not judge anything (INCOMPLETE);
130 interrupted. ``load.json`` and ``load.html`` are written whenever the run started.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import extras, redact
from harness.core.failures import HarnessError, UsageError
from harness.core.results import EXIT_INTERRUPTED, EXIT_USAGE
from harness.core.tally import interval_for
from harness.target import MIN_BODY, Target, TargetError, to_data

__all__ = ["build_parser", "main"]

PROG = "edusphere-conformance load"
#: Bounds of the options: a run stays bounded in connections, messages and time.
BOUNDS: dict[str, tuple[float, float]] = {
    "users": (1, 5_000),
    "rate": (0.01, 1_000),
    "duration": (1, 86_400),
    "workers": (0, 64),
    "expect_workers": (0, 1_000),
    "spawn_rate": (1, 10_000),
    "grace": (1, 3_600),
    "join_timeout": (1, 3_600),
}
#: At most this many messages in a run (users x rate x duration): each is tracked per receiver.
MAX_MESSAGES = 5_000_000
DEFAULT_MASTER_PORT = 5557


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Delivery under sustained load, on Locust: N connections each send R messages a "
            "second for S seconds and read everything; every open connection must receive "
            "every message exactly once, each sender's in order. Writes load.json and "
            "load.html."
        ),
    )
    parser.add_argument(
        "--target", metavar="FILE", help="target file (default: the bundled server)"
    )
    parser.add_argument("--users", type=int, default=20, metavar="N", help="connections (20)")
    parser.add_argument(
        "--rate", type=float, default=1.0, metavar="R", help="messages a second per connection (1)"
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, metavar="S", help="seconds of sending (10)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="W",
        help="fork W local Locust workers (default 0: users run in this process)",
    )
    parser.add_argument(
        "--master-host",
        metavar="HOST",
        help="run as a worker of the master at HOST (started with --expect-workers)",
    )
    parser.add_argument(
        "--master-port",
        type=int,
        metavar="PORT",
        help=f"the master's port (a worker's, or the master's to listen on; {DEFAULT_MASTER_PORT} "
        "with remote workers, a free one otherwise)",
    )
    parser.add_argument(
        "--master-bind-host",
        default="127.0.0.1",
        metavar="HOST",
        help="where the master listens for workers (127.0.0.1; 0.0.0.0 for remote workers)",
    )
    parser.add_argument(
        "--expect-workers",
        type=int,
        metavar="K",
        help="workers the master waits for, local and remote (default: --workers)",
    )
    parser.add_argument(
        "--report-dir", default="reports", metavar="DIR", help="load.json, load.html (reports/)"
    )
    parser.add_argument(
        "--spawn-rate",
        type=float,
        metavar="X",
        help="connections opened a second (default: all at once, up to 100 a second)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=60.0,
        metavar="S",
        help="after sending, the longest the connections read on while events still arrive "
        "(60; reading stops at once when everything arrived, or after receive_timeout of "
        "silence)",
    )
    parser.add_argument(
        "--join-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="how long the master waits for its workers, or a worker for its master (60)",
    )
    return parser


def _check_bounds(args: argparse.Namespace) -> None:
    for name, (low, high) in BOUNDS.items():
        value = getattr(args, name)
        if value is None:
            continue
        if not math.isfinite(value) or not low <= value <= high:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} must be between {low:g} and {high:g} (got {value:g})")
    messages = args.users * args.rate * args.duration
    if messages > MAX_MESSAGES:
        raise UsageError(
            f"{messages:,.0f} messages (--users x --rate x --duration) is over the "
            f"{MAX_MESSAGES:,} a run tracks: lower one of them"
        )


# --- the master ---------------------------------------------------------------------------


@contextlib.contextmanager
def _bundled() -> Iterator[Target]:
    """The bundled reference server (demo data, a free port), for a run without --target."""
    from harness import target as target_mod
    from reference_server.demo import demo_target_dict
    from reference_server.runner import ServerProcess

    with tempfile.TemporaryDirectory(prefix="edusphere-load-") as tmp:
        server = ServerProcess(["--demo", "--db", os.path.join(tmp, "reference.sqlite3")])
        server.launch()
        try:
            url = server.wait_ready()
        except RuntimeError as exc:
            raise UsageError(f"the bundled reference server: {exc}", stopped=True) from None
        try:
            yield target_mod.parse(demo_target_dict(url), where="<bundled reference server>")
        finally:
            server.stop()


def _load_target(path: str) -> Target:
    from harness import commands
    from harness import target as target_mod

    if "://" in path:
        raise UsageError(str(target_mod.refuse_bare_url(path)))
    try:
        target = commands.load_target(path)
    except target_mod.ProvisionError as exc:
        raise UsageError(redact.redact(str(exc)), stopped=True) from None
    except TargetError as exc:
        raise UsageError(str(exc)) from None
    if target.asgi_app is not None:
        raise UsageError(
            f"{path}: asgi.app: the load mode needs a server on the network (its workers may "
            "run on other machines): serve the application (uvicorn, daphne) and name its url"
        )
    return target


def _check_target(target: Target) -> None:
    """Before any load: the target answers on every node, and accepts the host's token."""
    from harness.wire import raw

    if "main" not in target.rooms:
        raise UsageError(f"{target.source}: the load mode needs rooms.main")
    if not any(r in target.accounts for r in ("host", "member", "member2")):
        raise UsageError(f"{target.source}: the load mode needs accounts.host or accounts.member")
    try:
        raw.probe(target)
    except HarnessError as exc:
        raise UsageError(redact.redact(str(exc)), stopped=True) from None
    _one_connection(target)


def _one_connection(target: Target) -> None:
    """One handshake with a participant's token: refused tokens end the run here, in one line,
    rather than as a thousand refused connections."""
    from harness.core.session import Refusal
    from harness.tokens import Minter
    from harness.wire.sync import open_connection

    role = next(r for r in ("host", "member", "member2") if r in target.accounts)
    try:
        token = Minter(target.auth).valid(target.accounts[role])
    except Exception as exc:  # a token that cannot be minted: the file's [auth] is wrong
        raise UsageError(
            f"{target.source}: cannot make a token for accounts.{role}: {exc}"
        ) from None
    for node in range(len(target.endpoints)):
        where = target.node_label(node) or "the target"
        try:
            ws = open_connection(target, node, token)
        except TimeoutError:
            raise UsageError(
                f"{where} did not answer accounts.{role}'s handshake within "
                f"{target.connect_timeout:.1f} s",
                stopped=True,
            ) from None
        except OSError as exc:
            raise UsageError(
                redact.redact(f"{where}: handshake failed: {exc}"), stopped=True
            ) from None
        if isinstance(ws, Refusal):
            if ws.status is None:
                line = f"{where}: handshake failed: {ws.detail}"
                raise UsageError(redact.redact(line), stopped=True)
            hint = " (check [auth] and accounts)" if ws.status in (401, 403) else ""
            raise UsageError(
                f"{where} refused accounts.{role}'s handshake into rooms.main: "
                f"HTTP {ws.status}{hint}",
                stopped=True,
            )
        ws.close()


def _fork_workers(count: int, port: int, join_timeout: float) -> list[subprocess.Popen[bytes]]:
    argv = [sys.executable, "-m", "harness.load", "--master-host", "127.0.0.1"]
    argv += ["--master-port", str(port), "--join-timeout", str(join_timeout)]
    return [subprocess.Popen(argv, stdin=subprocess.DEVNULL) for _ in range(count)]


def _gone(procs: list[subprocess.Popen[bytes]]) -> list[str]:
    return [
        f"local worker {number} exited (status {proc.returncode}) before the run ended"
        for number, proc in enumerate(procs, 1)
        if proc.poll() is not None
    ]


def _end_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 10.0
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _settings(
    args: argparse.Namespace, target: Target, workers: int, spawn_rate: float
) -> dict[str, Any]:
    return {
        "users": args.users,
        "rate": args.rate,
        "duration": args.duration,
        "workers": workers,
        "spawn_rate": spawn_rate,
        "grace": args.grace,
        "body_length": _body_length(target),
        "room": target.rooms["main"],
        "nodes": len(target.endpoints),
        "receive_timeout": target.receive_timeout,
    }


def _body_length(target: Target) -> int:
    return max(MIN_BODY, min(target.load.body_length, target.max_length))


def _run_master(args: argparse.Namespace, target: Target, started: datetime) -> int:
    from harness.render import load_report as report

    workers = args.expect_workers if args.expect_workers is not None else args.workers
    if args.workers > workers:
        raise UsageError("--expect-workers must count the local --workers too")
    spawn_rate = args.spawn_rate or float(min(args.users, 100))
    settings = _settings(args, target, workers, spawn_rate)
    report_dir = Path(args.report_dir)
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--report-dir {args.report_dir}: {exc.strerror}") from None
    _check_target(target)

    from harness.load import master as load_master
    from harness.load import runtime  # Locust: the process is gevent's from here on
    from reference_server.runner import free_port

    environment, side = runtime.build_environment()
    plan = runtime.Plan(
        target=to_data(target),
        users=args.users,
        rate=args.rate,
        duration=args.duration,
        grace=args.grace,
        tag="ld-" + secrets.token_hex(4),
        body_length=_body_length(target),
        width=interval_for(args.duration + args.grace),
    )
    procs: list[subprocess.Popen[bytes]] = []
    if workers:
        port = args.master_port or (free_port() if workers == args.workers else DEFAULT_MASTER_PORT)
        try:
            runner: Any = environment.create_master_runner(args.master_bind_host, port)
        except Exception as exc:
            raise UsageError(
                f"the master cannot listen on {args.master_bind_host}:{port}: {exc}"
            ) from None
        if workers > args.workers:
            print(
                f"load: waiting for {workers - args.workers} remote workers: "
                f"edusphere-conformance load --master-host THIS_HOST --master-port {port}",
                flush=True,
            )
        procs = _fork_workers(args.workers, port, args.join_timeout)
    else:
        runner = environment.create_local_runner()
        runtime.register_worker(runner, side)
    master = load_master.Master(
        runner=runner,
        users=args.users,
        workers=workers,
        plan=plan,
        spawn_rate=spawn_rate,
        join_timeout=args.join_timeout,
        progress=lambda line: print(f"load: {line}", flush=True),
        gone=lambda: _gone(procs),
    )
    master.register()
    interrupted = False
    try:
        master.drive()
    except KeyboardInterrupt:
        interrupted = True
        master.stopped = "interrupted"
    except Exception as exc:  # a bug of ours: the run still ends, with what it measured
        master.stopped = redact.redact(f"the harness failed: {exc!r}")
    finally:
        with contextlib.suppress(Exception):
            master.stop()
        _end_workers(procs)
    data = report.build(
        master.outcome(),
        settings=settings,
        target=target.source,
        started=started,
        finished=datetime.now(UTC),
    )
    report.write(report_dir, data)
    for line in report.summary_lines(data):
        print(line)
    return EXIT_INTERRUPTED if interrupted else int(data["exit_status"])


# --- a worker -----------------------------------------------------------------------------


def _run_worker(args: argparse.Namespace) -> int:
    from harness.load import runtime

    return runtime.run_worker(
        args.master_host, args.master_port or DEFAULT_MASTER_PORT, args.join_timeout
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    started = datetime.now(UTC)
    source = args.target or "<bundled reference server>"
    try:
        engine = extras.missing("load", "load")
        if engine:
            raise UsageError(engine)
        _check_bounds(args)
        if args.master_host:
            if args.workers or args.target or args.expect_workers:
                raise UsageError(
                    "a worker (--master-host) takes its target and sizes from the master: "
                    "give it only --master-port and --join-timeout"
                )
            return _run_worker(args)
        if args.target is None:
            with _bundled() as target:
                return _run_master(args, target, started)
        return _run_master(args, _load_target(args.target), started)
    except UsageError as exc:
        from harness.render.files import write_stopped_run

        line = redact.redact(str(exc))
        if exc.stopped:  # the options were right but the run cannot start: load.json says why
            write_stopped_run(
                line,
                Path(args.report_dir),
                started=started,
                mode="load",
                settings={"users": args.users, "rate": args.rate, "duration": args.duration},
                target=source,
            )
        print(f"{PROG}: error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
