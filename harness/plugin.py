"""The pytest plugin: a :class:`ConformancePlugin` object that holds the run's state.

Loaded through the ``pytest11`` entry point; this module only declares the options, the markers
and the fixtures, and registers the plugin object. Who does what:

- the target is loaded, provisioned and probed **once per run**: by the CLI (which hands the
  loaded target to the plugin), else by the plugin on pytest's main process; pytest-xdist
  workers receive it from the controller and never run its commands or the probe again;
- options: :mod:`harness.options`; progress lines: :mod:`harness.progress`; the probe:
  :mod:`harness.handshake`; running an async test: :mod:`harness.runner`; test records:
  :mod:`harness.records`; the verdict: :func:`harness.core.results.aggregate`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import os
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import pytest

from harness import __version__, asgi, redact
from harness import preflight as preflight_mod
from harness import target as target_mod
from harness.baseline import Baseline, BaselineError, load_baseline
from harness.client import Chat
from harness.core import catalogue as cat_mod
from harness.core.failures import (
    ConformanceFailure,
    HarnessError,
    ResourceLimit,
)
from harness.core.gate import Gate
from harness.core.results import RunResult, TestRecord, aggregate
from harness.options import add_options, requirement_ids, strict_mode
from harness.preflight import preflight
from harness.progress import Progress
from harness.records import CHAT, RESULT, build_record, record_of
from harness.render.files import write_junit, write_results_json, write_stopped_run
from harness.render.terminal import summary_lines
from harness.runner import call_sync, run_bounded, settle, whole_test_bound
from harness.scheduler import Scheduler, exclusive, run_alone_note, schedulable
from harness.sharing import RunLock
from harness.target import Target, TargetError
from harness.tokens import Minter

PLUGIN_NAME = "edusphere-conformance-run"
#: The key under which the controller hands the loaded target to pytest-xdist workers.
WORKER_TARGET = "edusphere_target"
#: The key under which it hands them the run's lock directory (:mod:`harness.sharing`).
WORKER_LOCKS = "edusphere_locks"
#: How long a test run by the scheduler really took (its call only waits for the outcome).
DURATION = pytest.StashKey[float]()
#: The line of a conformance test whose set-up raised (not a verdict): the run stops after it.
SETUP_ERROR = pytest.StashKey[str]()
#: What the bundled reference server does not offer (catalogue ``needs``): it is one node.
BUNDLED_LACKS = frozenset({"nodes"})


def setup_error(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
    """One line for a set-up that raised something other than a verdict or a skip: the
    fixture that raised (when it can be told), the exception, the test. None for a verdict
    (a ConformanceFailure raised while setting up is the server's) or pytest's own outcomes."""
    exc = excinfo.value
    if isinstance(exc, ConformanceFailure | ResourceLimit | pytest.skip.Exception):
        return None
    if not isinstance(exc, Exception):
        return None  # pytest.exit, KeyboardInterrupt: they end the run on their own
    fixture = _raising_fixture(item, excinfo)
    where = f"the fixture {fixture!r} of {item.nodeid}" if fixture else f"setting up {item.nodeid}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return redact.redact(f"{where} raised {type(exc).__name__}" + (f": {text}" if text else ""))


def _raising_fixture(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
    """The name of the fixture whose function raised (the innermost one in the traceback)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    codes = {}
    for name, defs in info.name2fixturedefs.items():
        for fixturedef in defs:
            func = inspect.unwrap(fixturedef.func)
            code = getattr(func, "__code__", None)
            if code is not None:
                codes[code] = name
    found = None
    for entry in excinfo.traceback:
        name = codes.get(entry.frame.code.raw)
        if name is not None:
            found = name
    return found


def _usage_error(message: str) -> pytest.UsageError:
    return pytest.UsageError(redact.redact(message))


class ConformancePlugin:
    """The state of one conformance run, and the hooks that need it.

    Built by the CLI with the target it loaded (``target=``), or by :func:`pytest_configure`
    from the options. On an xdist worker the target comes from the controller.
    """

    def __init__(self, target: Target | None = None, *, probed: bool = False) -> None:
        self.target = target
        self.probed = probed or target is None
        self.records: dict[str, TestRecord] = {}
        self.started = datetime.now(UTC)
        self.t0 = time.monotonic()
        self.selected: set[str] | None = None
        self.baseline = Baseline()
        self.result: RunResult | None = None
        self.active = False
        self.progress: Progress | None = None
        self.config: pytest.Config | None = None
        self.interrupted = False  # Ctrl-C (not a harness error that ended the run)
        self.bundled_url = ""  # the bundled reference server's URL, once started
        self._bundled: Any = None
        self._bundled_target: Target | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        #: The preflight's findings and the breaker, shared by every test of the run.
        self.gate = Gate()
        self.scheduler: Scheduler | None = None
        #: The test run last (pytest's order, after the collection's sorting).
        self.last_test: str | None = None
        #: pytest-xdist: the run's lock directory (made on the controller), and on a worker the
        #: lock that keeps exclusive tests alone across workers (:mod:`harness.sharing`).
        self._lock_dir: tempfile.TemporaryDirectory[str] | None = None
        self.run_lock: RunLock | None = None
        #: Why the run stopped before its tests finished, in one line (a harness error: the
        #: target unreachable, TLS, a fixture that raised): the terminal, results.json and the
        #: report's banner all say it.
        self.stopped_because: str | None = None

    # --- configuration --------------------------------------------------------------------

    def configure(self, config: pytest.Config) -> None:
        """Read the options; load the target unless it was handed over (CLI, xdist)."""
        self.config = config
        catalogue = cat_mod.load()
        only = config.getoption("only")
        if only:
            try:
                self.selected = catalogue.select(only)
            except ValueError as exc:
                raise _usage_error(str(exc)) from None
        baseline = config.getoption("baseline")
        if baseline:
            try:
                self.baseline = load_baseline(baseline, catalogue)
            except BaselineError as exc:
                raise _usage_error(str(exc)) from None
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None and WORKER_LOCKS in workerinput:
            self.run_lock = RunLock(workerinput[WORKER_LOCKS])
        if self.target is None and workerinput is not None and WORKER_TARGET in workerinput:
            self.target = target_mod.from_data(workerinput[WORKER_TARGET])
            self.probed = True  # the controller probed it
        option = config.getoption("target")
        if self.target is None and option:
            if "://" in option:
                raise _usage_error(str(target_mod.refuse_bare_url(option)))
            try:
                self.target = target_mod.load(option)
            except TargetError as exc:
                if isinstance(exc, target_mod.ProvisionError):
                    self._write_stopped(redact.redact(str(exc)), label=option)
                raise _usage_error(str(exc)) from None
            self.probed = False
        report_dir = config.getoption("report_dir")
        if report_dir and workerinput is None:
            out = Path(report_dir)
            out.mkdir(parents=True, exist_ok=True)
            if hasattr(config.option, "htmlpath") and not config.option.htmlpath:
                config.option.htmlpath = str(out / "compliance.html")
                config.option.self_contained_html = True
        plugins = config.pluginmanager  # the HTML compliance report, with pytest-html only
        if plugins.hasplugin("html") and not plugins.hasplugin("edusphere-report"):
            plugins.register(importlib.import_module("harness.report"), "edusphere-report")

    @property
    def is_worker(self) -> bool:
        return self.config is not None and hasattr(self.config, "workerinput")

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """pytest-xdist, on the controller: hand each worker the loaded target and the run's
        lock directory."""
        if self.target is not None and self.target.restart_hook is None:
            node.workerinput[WORKER_TARGET] = target_mod.to_data(self.target)
        if self._lock_dir is None:
            self._lock_dir = tempfile.TemporaryDirectory(prefix="edusphere-locks-")
        node.workerinput[WORKER_LOCKS] = self._lock_dir.name

    # --- the target -----------------------------------------------------------------------

    @property
    def lacking(self) -> frozenset[str]:
        """What the target under test does not offer (catalogue ``needs``): the loaded
        target's, else the bundled reference server's. That one is a network server of one
        node, started on first use (with ``-n``, by each worker only): it lacks ``nodes``."""
        if self.target is not None:
            return self.target.lacking
        if self._bundled_target is not None:
            return self._bundled_target.lacking
        return BUNDLED_LACKS

    def run_target(self) -> Target:
        """The target under test: the loaded one, else the bundled reference server (started
        on first use, one per process, on a free port; stopped when pytest unconfigures)."""
        if self.target is not None:
            return self.target
        if self._bundled_target is None:
            self._bundled_target = self._start_bundled()
        return self._bundled_target

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        asgi.stop_all()  # an [asgi] application's lifespan ends with the run
        if self._bundled is not None:
            self._bundled.stop()
            self._bundled = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None
        if self._lock_dir is not None:
            self._lock_dir.cleanup()
            self._lock_dir = None

    def new_chat(self, item: pytest.Item) -> Chat:
        """A recording client session for one test, with the run's gate."""
        target = self.run_target()
        session = Chat(target, Minter(target.auth))
        session.own = requirement_ids(item)
        session.gate = self.gate
        item.stash[CHAT] = session
        return session

    def _launch_bundled(self) -> None:
        """Launch the reference server (demo data, a free port, a temp database file) in a
        process of its own, without waiting: it starts while pytest collects."""
        from reference_server.runner import ServerProcess

        if self._bundled is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="edusphere-")
            database = os.path.join(self._tmpdir.name, "reference.sqlite3")
            self._bundled = ServerProcess(["--demo", "--db", database]).launch()

    def _start_bundled(self) -> Target:
        """The bundled reference server's target, once it listens."""
        from reference_server.demo import demo_config, demo_target_dict

        self._launch_bundled()
        try:
            url = self._bundled.wait_ready()
        except RuntimeError as exc:
            self.stop(f"the bundled reference server: {exc}")
        data = demo_target_dict(url)
        data["limits"]["max_frame_bytes"] = demo_config(database=":memory:").max_frame_bytes
        target = target_mod.parse(data, where="<bundled reference server>")
        self.bundled_url = target.url
        return dataclasses.replace(target, restart_hook=self._bundled.restart)

    # --- collection -----------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        config = session.config
        if (
            self.target is None
            and not config.option.collectonly
            and (self.is_worker or not self._distributed(config))
        ):
            self._launch_bundled()  # one per process: pytest-xdist workers start their own
        if self.is_worker:
            return
        if not self.probed and self.target is not None:
            try:
                preflight_mod.reachable(self.target)
            except (HarnessError, TargetError) as exc:
                # pytest calls no sessionfinish for a session that ends in its start: the
                # report files are written here.
                line = redact.redact(str(exc))
                self._write_stopped(line, label=self.target.label)
                self.stop(line)
            self.probed = True
        if config.getoption("conformance_progress"):
            reporter = config.pluginmanager.getplugin("terminalreporter")
            if reporter is not None:
                config.pluginmanager.unregister(reporter)
            self.progress = Progress(config, self.lacking)
            what = self.target.source if self.target else "the bundled reference server"
            Progress.write(
                f"edusphere-conformance {__version__}: running the suites against {what}"
            )

    @pytest.hookimpl(trylast=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and self.progress is not None:
            Progress.write(
                f"error collecting {report.nodeid}: {redact.redact(str(report.longrepr))[-800:]}"
            )

    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        catalogue = cat_mod.load()
        keep, drop = [], []
        for item in items:
            ids = requirement_ids(item)
            if not ids:
                keep.append(item)
                continue
            unknown = [i for i in ids if i not in catalogue]
            if unknown:
                raise _usage_error(
                    f"{item.nodeid}: requirement {unknown[0]} is not in the catalogue"
                )
            if self.selected is not None and not (set(ids) & self.selected):
                drop.append(item)
            else:
                keep.append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)

        # Exclusive tests first, alone: the scheduler starts after them (nothing runs beside
        # them, and a room they leave broken is found by what follows, not before they ran);
        # then the tests pytest's own thread runs (the property-based ones), while the scheduler
        # works through the others (harness.scheduler).
        def rank(item: pytest.Item) -> int:
            if exclusive(item):
                return 0
            return 1 if requirement_ids(item) and not schedulable(item) else 2

        items[:] = sorted(keep, key=rank)
        self.last_test = items[-1].nodeid if items else None
        for item in items:
            if requirement_ids(item):
                _brief_failures(item)
        if any(requirement_ids(i) for i in items):
            self.active = True
        if self.progress is not None:
            self.progress.collected(items)

    # --- running --------------------------------------------------------------------------

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Iterator[None]:
        """Before the loop: the preflight, then the scheduler (unless one at a time, or
        pytest-xdist distributes the tests); after it, the scheduler stopped."""
        config = session.config
        conformance = [i for i in session.items if requirement_ids(i)]
        if conformance and not config.option.collectonly and not self._distributed(config):
            self._preflight()
            lanes = int(config.getoption("concurrency") or 1)
            if lanes > 1 and not self.gate.errors_private:
                lanes = 1  # an error frame names no message: only its sender can own it
                if self.progress is not None:
                    Progress.write(
                        "preflight: error frames reach other connections of the room (ERR-001):"
                        " the tests run one at a time"
                    )
            if lanes > 1 and not self.gate.accounts_shared:
                lanes = 1  # tests side by side would open second connections for one another
                if self.progress is not None:
                    Progress.write(
                        "preflight: a second connection of an account receives no events"
                        " (BCAST-001): the tests run one at a time"
                    )
            if lanes > 1:
                self.scheduler = Scheduler(
                    session.items,
                    target=self.run_target(),
                    gate=self.gate,
                    lanes=lanes,
                    make_chat=self.new_chat,
                )  # started once the exclusive tests are done (pytest_runtest_setup)
        try:
            yield
        finally:
            if self.scheduler is not None:
                self.scheduler.stop()

    @staticmethod
    def _distributed(config: pytest.Config) -> bool:
        """pytest-xdist hands tests to workers one by one: no running ahead there."""
        return hasattr(config, "workerinput") or bool(getattr(config.option, "numprocesses", 0))

    def _preflight(self) -> None:
        try:
            target = self.run_target()
            asyncio.run(preflight(target, self.gate))
        except HarnessError as exc:
            self.stop(redact.redact(str(exc)))
        if self.progress is not None and self.gate.failed:
            Progress.write(self.gate.summary())
        rate = self.gate.rate_line()
        if self.progress is not None and rate is not None:
            Progress.write(rate)

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        scheduler = self.scheduler
        if scheduler is not None and not scheduler.started and not exclusive(item):
            scheduler.start()

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        ids = requirement_ids(pyfuncitem)
        if self.scheduler is not None and pyfuncitem in self.scheduler:
            outcome = self.scheduler.outcome(pyfuncitem)
            pyfuncitem.stash[DURATION] = outcome.duration_s
            if outcome.error is not None:
                settle(outcome.error)
            return True
        func = pyfuncitem.obj
        kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        if not inspect.iscoroutinefunction(func) and not ids:
            return None
        lock = self.run_lock
        if lock is None or not ids:
            self._call(pyfuncitem, kwargs)
        else:
            with lock.alone() if exclusive(pyfuncitem) else lock.shared():
                self._call(pyfuncitem, kwargs)
        return True

    def _call(self, item: pytest.Function, kwargs: dict[str, Any]) -> None:
        """One run of a conformance test: a property test in pytest's thread, an async one on
        its own event loop, bounded."""
        if not inspect.iscoroutinefunction(item.obj):
            self._call_sync(item, kwargs)
            return
        ids = requirement_ids(item)
        chat: Chat | None = item.stash.get(CHAT, None)
        run_bounded(
            item.obj,
            kwargs,
            chat=chat,
            bound=whole_test_bound(item, chat.target if chat else None),
            requirement=ids[0] if ids else "CONN-001",
            gate=self.gate if ids else None,
            name=item.nodeid,
            # After the last test a probe would block nothing: the test's own verdict stands.
            probe=item.nodeid != self.last_test,
        )

    def _call_sync(self, item: pytest.Function, kwargs: dict[str, Any]) -> None:
        """A sync (property) test, in pytest's thread while the scheduler runs others beside it.
        A wait for a frame that ran out while scheduled tests ran is not its verdict (the server
        may not take the crowd): the scheduler stops starting tests, and the test runs again
        alone, with a fresh session; from then on the scheduler runs one test at a time."""
        scheduler = self.scheduler
        mark = scheduler.activity() if scheduler is not None else 0
        try:
            call_sync(item.obj, kwargs, self.gate)
            return
        except ConformanceFailure as exc:
            if scheduler is None or not exc.frame_awaited or not scheduler.crowded_since(mark):
                raise
        scheduler.alone()
        try:
            chat = self.new_chat(item)
            chat.observe(requirement_ids(item)[0], run_alone_note("scheduled tests ran beside it"))
            if "chat" in kwargs:
                kwargs = {**kwargs, "chat": chat}
            call_sync(item.obj, kwargs, self.gate)
        finally:
            scheduler.resume()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Iterator[None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined, unused-ignore]
        if report.when == "call" and DURATION in item.stash:
            report.duration = item.stash[DURATION]
        ids = requirement_ids(item)
        if not ids or not (report.when == "call" or (report.when == "setup" and not report.passed)):
            return
        chat = item.stash.get(CHAT, None)
        if report.when == "setup" and report.failed and call.excinfo is not None:
            line = setup_error(item, call.excinfo)
            if line is not None:
                item.stash[SETUP_ERROR] = line
                report.outcome = "skipped"  # not tested: the harness, not the server, failed
                report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {line}")
        record = build_record(ids, report, call, chat)
        if SETUP_ERROR in item.stash:
            record["message"] = f"not tested: {item.stash[SETUP_ERROR]}"
        # The record rides on the report as a plain attribute: pytest serialises it for xdist
        # workers, and it stays out of junit.xml, which gets the short properties below.
        report.conformance = record  # type: ignore[attr-defined]
        report.user_properties.append(("requirements", " ".join(ids)))
        if report.failed and record.get("failed"):
            report.user_properties.append(("failed_requirements", " ".join(record["failed"])))
        if report.failed and chat is not None and "expected" in record:
            report.sections.append(("transcript", chat.transcript.render()))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = record_of(report)
        if record is not None:
            self.records[report.nodeid] = record
            self.active = True
        if self.progress is not None:
            self.progress.record(report)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Ctrl-C, or ``pytest.exit`` (a harness error ended the run: its line is kept)."""
        self.interrupted = excinfo.errisinstance(KeyboardInterrupt)
        if not self.interrupted and self.stopped_because is None:
            message = getattr(excinfo.value, "msg", None) or str(excinfo.value)
            self.stopped_because = redact.redact(message) or None

    def stop(self, line: str) -> NoReturn:
        """End the run at once with one line: the cause, kept for results.json and the report."""
        if self.stopped_because is None:
            self.stopped_because = line
        pytest.exit(line, returncode=2)

    def _write_stopped(self, line: str, *, label: str) -> None:
        """The report files of a run that stops before pytest's session (which writes them)
        could run: they say why."""
        if self.config is None or self.is_worker:
            return
        report_dir = self.config.getoption("report_dir")
        if not report_dir:
            return
        write_stopped_run(
            line,
            Path(report_dir),
            started=self.started,
            target=label,
            selected=self.selected,
            strict=strict_mode(self.config),
        )

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        """A conformance test whose set-up raised something other than a verdict (a fixture's
        bug, the environment): nothing after it can be trusted to run; the run stops with the
        cause (its requirements are not tested, the run INCOMPLETE)."""
        yield
        line = item.stash.get(SETUP_ERROR, None)
        if line is not None:
            self.stop(line)

    # --- the verdict ----------------------------------------------------------------------

    def build_result(self) -> RunResult:
        label = self.target.label if self.target else self.bundled_url
        result = aggregate(
            [*self.gate.records(), *self.records.values()],
            selected=self.selected,
            baseline=self.baseline.known,
            not_applicable=self.baseline.not_applicable,
            target=label or "<bundled reference server>",
            started=self.started.isoformat(timespec="seconds").replace("+00:00", "Z"),
            duration_s=time.monotonic() - self.t0,
            harness_version=__version__,
            strict=strict_mode(self.config) if self.config else False,
            lacking=self.lacking,
        )
        result.warnings = list(self.target.warnings) if self.target else []
        rate = self.gate.rate_warning()
        if rate is not None:
            result.warnings.append(rate)
        return result

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker or session.config.option.collectonly:
            return  # --collect-only runs nothing: there is no verdict to give
        if not self.active and self.stopped_because is None:
            return
        result = self.build_result()
        result.finished = exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
        if not result.finished:
            result.stopped_because = self.stopped_because
        if self.gate.tripped is not None:
            result.finished, result.stopped_because = False, self.gate.tripped
        if self.interrupted:
            result.interrupted, result.stopped_because = True, "interrupted (Ctrl-C)"
        self.result = result
        session.config.stash[RESULT] = result
        report_dir = session.config.getoption("report_dir")
        if report_dir:
            write_results_json(result, Path(report_dir) / "results.json")
            write_junit(result, Path(report_dir) / "junit.xml")
        if result.finished:
            # 0 conformant, 1 not conformant, 2 incomplete (README, "Exit status").
            session.exitstatus = result.exit_status
        if self.progress is not None:
            self.progress.finish(result, report_dir)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.result is None:
            return
        terminalreporter.section("conformance")
        for line in summary_lines(self.result):
            terminalreporter.write_line(line)


def plugin_of(config: pytest.Config) -> ConformancePlugin:
    """The run's plugin object (registered by :func:`pytest_configure` or by the CLI)."""
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, ConformancePlugin):
            return plugin
    raise LookupError("the conformance plugin is not registered")


# --- entry point: options, markers, registration ------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _brief_failures(item: pytest.Item) -> None:
    """A conformance test's failure is reported by what it found (requirement, expected, actual:
    its record, the HTML, JUnit), not by the harness's call stack. pytest's traceback of it
    would parse the source of every frame: half the wall time of a run against a server that
    fails most tests. Other exceptions (a bug in the harness) keep their traceback."""
    full = item.repr_failure

    def repr_failure(excinfo: pytest.ExceptionInfo[BaseException], *args: Any) -> Any:
        if isinstance(excinfo.value, ConformanceFailure | ResourceLimit):
            return redact.redact(f"{type(excinfo.value).__name__}: {excinfo.value}")
        return full(excinfo, *args)

    setattr(item, "repr_failure", repr_failure)  # noqa: B010 - an instance's own, on purpose


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requirement(*ids): the catalogue requirement(s) a conformance test checks"
    )
    config.addinivalue_line(
        "markers",
        "test_timeout(seconds, per_receive=k): bound for one conformance test, at least k x "
        "the target's receive_timeout",
    )
    config.addinivalue_line(
        "markers", "exclusive: a conformance test that runs alone, before the others"
    )
    try:
        plugin = plugin_of(config)
    except LookupError:
        plugin = ConformancePlugin()
        config.pluginmanager.register(plugin, PLUGIN_NAME)
    plugin.configure(config)


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def conformance_target(pytestconfig: pytest.Config) -> Iterator[Target]:
    """The target under test: the --target file, or the bundled reference server."""
    yield plugin_of(pytestconfig).run_target()


@pytest.fixture
def chat(request: pytest.FixtureRequest, conformance_target: Target) -> Chat:
    """A recording client session for one test; its transcript goes into the report (the one
    the scheduler made, for a test it runs)."""
    existing: Chat | None = request.node.stash.get(CHAT, None)
    if existing is not None:
        return existing
    return plugin_of(request.config).new_chat(request.node)


@pytest.fixture
def examples(pytestconfig: pytest.Config, conformance_target: Target) -> int:
    """Examples per property: --examples, else the target's [properties] examples."""
    value = pytestconfig.getoption("examples")
    return int(value) if value else conformance_target.examples
