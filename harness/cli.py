"""``edusphere-conformance``: run, list, serve, client-check, load.

A thin layer over pytest: ``run`` builds the run (:func:`harness.server.run.build` checks its
inputs: target file, baseline, ``--only``), checks that the target answers, then runs the suites
with the harness plugin holding that run. Exit status: 0 conformant, 1 not conformant, 2 usage
error, bad target file or unreachable target (one line on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from harness import __version__, extras, redact
from harness import catalogue as cat_mod
from harness.core.catalogue import format_table
from harness.core.failures import UsageError
from harness.core.results import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

#: The pytest plugins ``run`` loads, by their entry points' names (registered under those
#: names, as when pytest loads them itself); with ``-n``, pytest-xdist's too. ``-- -p NAME``
#: adds one.
RUN_PLUGINS = ("edusphere_conformance", "metadata", "html", "html_fixtures", "hypothesispytest")


#: Where hypothesis keeps what it computes once for a machine, unless
#: ``HYPOTHESIS_STORAGE_DIRECTORY`` says (:func:`hypothesis_cache`).
HYPOTHESIS_CACHE = ("edusphere-conformance", "hypothesis")


@contextlib.contextmanager
def hypothesis_cache() -> Iterator[Path | None]:
    """Hypothesis computes its table of Unicode categories and the constants of the modules it
    draws for (about 1.3 s of CPU) once, into its storage directory: ``./.hypothesis`` by
    default, so every run in a fresh checkout or working directory paid for them and left the
    directory behind. During a run it is the user's cache (``$XDG_CACHE_HOME`` or
    ``~/.cache``, then ``edusphere-conformance/hypothesis``), for pytest-xdist's workers too,
    and what it was is restored afterwards (``run`` inside a project's own test run). The
    suites keep no example database, so nothing there changes what is drawn. The directory
    chosen is yielded; None when the user chose (``HYPOTHESIS_STORAGE_DIRECTORY``) or no cache
    directory can be made (hypothesis then uses its default, as before)."""
    from hypothesis import configuration

    variable = "HYPOTHESIS_STORAGE_DIRECTORY"
    if os.environ.get(variable):
        yield None
        return
    try:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        home = Path(base).joinpath(*HYPOTHESIS_CACHE)
        home.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # no home directory, or none that can be written
        yield None
        return
    previous = configuration.storage_directory(intent_to_write=False).home_directory
    os.environ[variable] = str(home)
    configuration.set_hypothesis_home_dir(home)
    try:
        yield home
    finally:
        os.environ.pop(variable, None)
        configuration.set_hypothesis_home_dir(previous)


def suites_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "suites", here / "_suites"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the conformance suites are not installed")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"edusphere-conformance: error: {message}\n")


def _fail(message: str) -> int:
    print(f"edusphere-conformance: error: {redact.redact(message)}", file=sys.stderr)
    return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edusphere-conformance",
        description="Conformance harness for the EduSphere chat WebSocket API.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run the conformance suites against a target")
    run.add_argument("--target", metavar="FILE", help="target file (default: the bundled server)")
    run.add_argument("--strict", action="store_true", help="SHOULD failures fail the run too")
    run.add_argument("--only", metavar="IDS", help="areas or requirement ids: AUTH,EDIT-002")
    run.add_argument("--report-dir", metavar="DIR", default="reports", help="default: reports/")
    run.add_argument("--baseline", metavar="FILE", help="known failures ([[known]] id, reason)")
    run.add_argument("--examples", metavar="N", type=int, help="examples per property")
    run.add_argument(
        "--concurrency",
        metavar="N",
        type=int,
        help="conformance tests run at once (default 8; 1: one after another)",
    )
    run.add_argument(
        "--time-budget",
        metavar="SECONDS",
        type=float,
        help="how long the run may take (default 20); over it, it names its slowest tests",
    )
    run.add_argument("-n", "--workers", metavar="N", help="run in N processes (pytest-xdist)")
    run.add_argument("-v", "--verbose", action="store_true", help="pytest's own per-test output")
    run.add_argument("pytest_args", nargs="*", help="after --: passed to pytest as they are")

    lst = sub.add_parser("list", help="print the requirement catalogue")
    lst.add_argument("--faults", action="store_true", help="the reference server's fault switches")
    lst.add_argument("--scope", choices=("server", "client", "all"), default="all")
    lst.add_argument("--format", choices=("text", "json", "markdown"), default="text")

    serve = sub.add_parser("serve", help="run the reference server", add_help=False)
    serve.add_argument("args", nargs=argparse.REMAINDER)

    provision = sub.add_parser(
        "provision",
        help="create accounts and rooms in the reference server's database (JSON out)",
        add_help=False,
    )
    provision.add_argument("args", nargs=argparse.REMAINDER)

    check = sub.add_parser(
        "client-check", help="check a client's reconnection policy", add_help=False
    )
    check.add_argument("args", nargs=argparse.REMAINDER)

    load = sub.add_parser(
        "load",
        help="delivery under sustained load, on Locust (load.json, load.html)",
        add_help=False,
    )
    load.add_argument("args", nargs=argparse.REMAINDER)
    return parser


# --- list ---------------------------------------------------------------------------------


def markdown_table(scope: str | None = None) -> str:
    """The catalogue as a Markdown table (the README embeds it; a test keeps it fresh)."""
    cat = cat_mod.load()
    rows = ["| id | level | requirement |", "|---|---|---|"]
    for req in cat.requirements:
        if scope and req.scope != scope:
            continue
        statement = req.statement.replace("|", "\\|")
        rows.append(f"| {req.id} | {req.level} | {statement} |")
    return "\n".join(rows)


def cmd_list(args: argparse.Namespace) -> int:
    if args.faults:
        from reference_server.faults import FAULTS

        if args.format == "json":
            print(
                json.dumps(
                    [
                        {
                            "name": f.name,
                            "level": f.level,
                            "requirements": list(f.requirements),
                            "description": f.description,
                        }
                        for f in FAULTS.values()
                    ],
                    indent=2,
                )
            )
            return EXIT_OK
        width = max(len(name) for name in FAULTS)
        for fault in FAULTS.values():
            print(
                f"{fault.name:<{width}}  {fault.level:<6}  "
                f"{', '.join(fault.requirements):<28}  {fault.description}"
            )
        print(f"\n{len(FAULTS)} fault switches (serve --fault NAME)")
        return EXIT_OK
    scope = None if args.scope == "all" else args.scope
    cat = cat_mod.load()
    if args.format == "json":
        reqs = [r for r in cat.requirements if scope is None or r.scope == scope]
        print(
            json.dumps(
                {
                    "catalogue": cat.version,
                    "requirements": [
                        {
                            "id": r.id,
                            "level": r.level,
                            "area": r.area,
                            "scope": r.scope,
                            "statement": r.statement,
                            "source": r.source,
                        }
                        for r in reqs
                    ],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    elif args.format == "markdown":
        print(markdown_table(scope))
    else:
        print(format_table(cat, scope))
    return EXIT_OK


# --- run ----------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """Build the run (every input checked once, the target file loaded, provisioned and probed
    once: :func:`harness.server.run.build`), then run the suites with the plugin holding it."""
    import pytest

    from harness.server.plugin import ConformancePlugin
    from harness.server.run import build

    engine = extras.missing("parallel", "-n (the suites in N processes)") if args.workers else None
    if engine:
        return _fail(engine)
    report_dir = Path(args.report_dir)
    try:
        run = build(
            target=args.target,
            only=args.only,
            baseline=args.baseline,
            strict=args.strict,
            report_dir=str(report_dir),
            examples=args.examples,
            concurrency=args.concurrency,
            time_budget=args.time_budget,
        )
        run.probe()
    except UsageError as exc:  # a stopped run's report files say why (UsageError.stopped)
        return _fail(str(exc))
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _fail(f"--report-dir {args.report_dir}: {exc.strerror}")
    argv = [
        str(suites_dir()),
        "--report-dir",
        str(report_dir),
        "-p",
        "no:cacheprovider",
        # The run's own plugins, and no others: the plugins of the environment around it
        # (pytest-django, whose session fixture cannot run twice in one process; pytest-randomly)
        # take no part, and inside another project's test run (README, "Check an ASGI
        # application in-process") the suites' modules cannot clash with its test_*.py by name.
        "--disable-plugin-autoload",
        *(arg for name in RUN_PLUGINS for arg in ("-p", name)),
        "--import-mode=importlib",
        "--conformance-progress",
        "-o",
        "console_output_style=classic",
        "--html",
        str(report_dir / "compliance.html"),
        "--self-contained-html",
    ]
    if not args.verbose:
        argv += ["-q", "--no-header", "--no-summary", "-p", "no:logging"]
    if args.strict:
        argv += ["--strict"]
    if args.only:
        argv += ["--only", args.only]
    if args.baseline:
        argv += ["--baseline", args.baseline]
    if args.examples:
        argv += ["--examples", str(args.examples)]
    if args.concurrency is not None:
        argv += ["--concurrency", str(args.concurrency)]
    if args.time_budget is not None:
        argv += ["--time-budget", repr(args.time_budget)]
    if args.workers:
        argv += ["-p", "xdist", "-n", args.workers]
    argv += args.pytest_args
    # The plugin takes the run as it is, and hands its target on to pytest-xdist workers; the
    # bundled reference server (no target file) starts now, while pytest collects, unless
    # workers each start their own.
    bundled = contextlib.nullcontext() if args.workers else run.start_bundled()
    with bundled, hypothesis_cache():
        code = pytest.main(argv, plugins=[ConformancePlugin(run)])
    result = run.result
    if result is not None and result.finished:
        return result.exit_status  # 0, 1 or 2 (INCOMPLETE: a MUST in scope was not tested)
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        return _fail("no test selected (check --only)")
    if code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    if code == pytest.ExitCode.INTERRUPTED and run.interrupted:
        print("edusphere-conformance: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if code == pytest.ExitCode.INTERRUPTED:
        return EXIT_USAGE  # a harness error ended the run; its line is printed
    return _fail(f"the test run stopped (pytest exit status {int(code)})")


# --- entry point --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # serve and client-check hand their arguments over untouched (their own --help included).
    if args_list and args_list[0] in ("serve", "provision"):
        from reference_server.cli import main as serve_main

        return serve_main(args_list, prog="edusphere-conformance")
    if args_list and args_list[0] == "client-check":
        from harness.client.cli import main as check_main

        return check_main(args_list[1:])
    if args_list and args_list[0] == "load":
        from harness.load.cli import main as load_main

        return load_main(args_list[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        if args.command == "list":
            return cmd_list(args)
        if args.command == "run":
            return cmd_run(args)
    except KeyboardInterrupt:
        print("edusphere-conformance: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        with contextlib.suppress(Exception):
            sys.stdout = io.StringIO()
        return EXIT_OK
    return _fail(f"unknown command {args.command!r}")


def entry() -> None:  # pragma: no cover - the console script; tests call main()
    """The console script: :func:`main`, then out at once. The run is over and every report is
    written; tearing down the interpreter's objects (hypothesis' caches, the suites' modules)
    would cost half a second more of a user's wait, for nothing."""
    code = main()
    if sys.gettrace() is not None or sys.getprofile() is not None:
        sys.exit(code)  # a profiler, coverage or a debugger wants its own ending
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
