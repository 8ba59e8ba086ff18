"""One conformance run, built once: its target, gate, catalogue, selection, baseline, records
and result, and what is the run's to do with them.

:func:`build` is the one place where a run's inputs are checked (``--only``, ``--baseline``,
``--concurrency``, ``--examples``, ``--time-budget``, the target file, loaded and provisioned
once): the CLI calls it with its arguments, the plugin with pytest's options when pytest runs
the suites without the CLI, and a pytest-xdist worker with the target its controller handed
over (it never reads the file nor runs its commands). Every mistake is a
:class:`~harness.core.failures.UsageError` with one line; a run that stops before its tests (its
provision command fails, the target does not answer) first writes its report files, which say
why.

Without a target file the run's target is the bundled reference server, in a process of its
own: started by :meth:`Run.start_bundled` (the CLI, around the whole run), else on first use
(:meth:`Run.target_under_test`, one per process: each xdist worker starts its own), and stopped
when the run closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import math
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from harness import __version__, commands, redact
from harness import catalogue as cat_mod
from harness import target as target_mod
from harness.baseline import Baseline, BaselineError, load_baseline
from harness.core.catalogue import Catalogue
from harness.core.failures import ConformanceFailure, HarnessError, UsageError
from harness.core.gate import Gate
from harness.core.results import RunResult, TestRecord, aggregate
from harness.render.files import write_junit, write_results_json, write_stopped_run
from harness.server import preflight as preflight_mod
from harness.server.calls import call_sync, run_bounded, settle, whole_test_bound
from harness.server.chat import Chat
from harness.server.options import DEFAULT_CONCURRENCY, DEFAULT_TIME_BUDGET_S, requirement_ids
from harness.server.progress import Progress
from harness.server.records import CHAT, DURATION, record_of
from harness.server.scheduler import Scheduler, exclusive, run_alone_note, schedulable
from harness.server.sharing import RunLock, for_workers, from_controller
from harness.target import Target, TargetError
from harness.tokens import Minter
from harness.wire import apphost

if TYPE_CHECKING:
    from reference_server.runner import ServerProcess

#: How reports name the bundled reference server before it listens.
BUNDLED = "<bundled reference server>"
#: What the bundled reference server does not offer (catalogue ``needs``): it is one node.
BUNDLED_LACKS = frozenset({"nodes"})


def build(
    *,
    target: str | None = None,
    only: str | None = None,
    baseline: str | None = None,
    strict: bool = False,
    report_dir: str | None = None,
    examples: int | None = None,
    concurrency: int | None = None,
    time_budget: float | None = None,
    workerinput: Mapping[str, Any] | None = None,
) -> Run:
    """The run of these inputs, each checked here and nowhere else; raises
    :class:`~harness.core.failures.UsageError` with one line. ``target``: the target file
    (None: the bundled reference server), loaded and provisioned here, unless ``workerinput``
    (a pytest-xdist worker's) holds the target the controller loaded."""
    catalogue = cat_mod.load()
    selected = None
    if only:
        try:
            selected = catalogue.select(only)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    known = Baseline()
    if baseline:
        try:
            known = load_baseline(baseline, catalogue)
        except BaselineError as exc:
            raise UsageError(str(exc)) from None
    if concurrency is not None and concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if examples is not None and examples < 1:
        raise UsageError("--examples must be at least 1")
    if time_budget is not None and not (math.isfinite(time_budget) and time_budget > 0):
        raise UsageError("--time-budget must be a number of seconds more than 0")
    run = Run(
        catalogue,
        selected=selected,
        baseline=known,
        strict=strict,
        report_dir=report_dir,
        examples=examples,
        concurrency=DEFAULT_CONCURRENCY if concurrency is None else concurrency,
        source=target,
        time_budget_s=DEFAULT_TIME_BUDGET_S if time_budget is None else time_budget,
    )
    if workerinput is not None:
        run.worker = True
        run.target, run.lock = from_controller(workerinput)
        run.probed = True  # the controller probed it
    if run.target is None and target:
        run.target = run.load(target)
    return run


class Run:
    """The state of one conformance run (see the module's docstring). Built by :func:`build`."""

    def __init__(
        self,
        catalogue: Catalogue,
        *,
        selected: set[str] | None = None,
        baseline: Baseline | None = None,
        strict: bool = False,
        report_dir: str | None = None,
        examples: int | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        source: str | None = None,
        time_budget_s: float = DEFAULT_TIME_BUDGET_S,
    ) -> None:
        self.catalogue = catalogue
        #: The requirements ``--only`` selected (None: all of them).
        self.selected = selected
        self.baseline = baseline or Baseline()
        self.strict = strict
        self.report_dir = report_dir
        self.examples = examples
        self.concurrency = concurrency
        #: How long the run may take, in seconds (``--time-budget``).
        self.time_budget_s = time_budget_s
        #: The target as the user named it (the file): how a stopped run's reports name it.
        self.source = source
        #: The loaded target (None: the bundled reference server).
        self.target: Target | None = None
        self.probed = False
        #: The preflight's findings and the breaker, shared by every test of the run.
        self.gate = Gate()
        self.records: dict[str, TestRecord] = {}
        self.result: RunResult | None = None
        self.started = datetime.now(UTC)
        self.t0 = time.monotonic()
        #: Why the run stopped before its tests finished, in one line (a harness error: the
        #: target unreachable, TLS, a fixture that raised): the terminal, results.json and the
        #: report's banner all say it.
        self.stopped_because: str | None = None
        self.interrupted = False  # Ctrl-C (not a harness error that ended the run)
        self.active = False  # conformance tests were collected or reported
        self.worker = False  # a pytest-xdist worker's run: the controller reports
        self.bundled = BundledServer()
        self.progress: Progress | None = None
        self.scheduler: Scheduler | None = None
        #: The test run last (pytest's order, after the collection's sorting).
        self.last_test: str | None = None
        #: pytest-xdist: on a worker, the lock that keeps exclusive tests alone across workers;
        #: on the controller, the lock directory it hands them (:mod:`harness.server.sharing`).
        self.lock: RunLock | None = None
        self._lock_dir: tempfile.TemporaryDirectory[str] | None = None

    # --- the target -----------------------------------------------------------------------

    def load(self, path: str) -> Target:
        """The target file, loaded and provisioned (its ``[provision] command`` run) once."""
        if "://" in path:
            raise UsageError(str(target_mod.refuse_bare_url(path)))
        try:
            return commands.load_target(path)
        except (target_mod.ProvisionError, HarnessError) as exc:
            self.stop_before_tests(redact.redact(str(exc)))
        except TargetError as exc:  # a mistake in the file: the reports stay as they were
            raise UsageError(str(exc)) from None

    def probe(self) -> None:
        """The loaded target answers a handshake (once per run: the CLI's, else pytest's main
        process at the session's start; never a worker)."""
        if self.probed or self.target is None:
            return
        try:
            preflight_mod.reachable(self.target)
        except HarnessError as exc:
            self.stop_before_tests(redact.redact(str(exc)))
        except TargetError as exc:  # an asgi.app that cannot be imported: a mistake in the file
            raise UsageError(str(exc)) from None
        self.probed = True

    @contextlib.contextmanager
    def start_bundled(self) -> Iterator[None]:
        """Without a target file: the bundled reference server, launched now (it starts while
        pytest collects) and stopped at the end."""
        if self.target is None:
            self.bundled.launch()
        try:
            yield
        finally:
            self.bundled.stop()

    def target_under_test(self) -> Target:
        """The loaded target, else the bundled reference server (started on first use, one per
        process, on a free port)."""
        if self.target is not None:
            return self.target
        try:
            return self.bundled.ready()
        except RuntimeError as exc:
            self.stop(f"the bundled reference server: {exc}")

    @property
    def lacking(self) -> frozenset[str]:
        """What the target under test does not offer (catalogue ``needs``)."""
        if self.target is not None:
            return self.target.lacking
        if self.bundled.target is not None:
            return self.bundled.target.lacking
        return BUNDLED_LACKS

    @property
    def label(self) -> str:
        """How the run's result names its target."""
        if self.target is not None:
            return self.target.label
        return self.bundled.target.url if self.bundled.target is not None else BUNDLED

    @property
    def described(self) -> str:
        """What the run's first line says it runs against."""
        return self.target.source if self.target else "the bundled reference server"

    def new_chat(self, item: pytest.Item) -> Chat:
        """A recording client session for one test, with the run's gate."""
        target = self.target_under_test()
        session = Chat(target, Minter(target.auth))
        session.own = requirement_ids(item)
        session.gate = self.gate
        item.stash[CHAT] = session
        return session

    def worker_input(self) -> dict[str, Any]:
        """pytest-xdist, on the controller: what each worker gets (:func:`for_workers`)."""
        if self._lock_dir is None:
            self._lock_dir = tempfile.TemporaryDirectory(prefix="edusphere-locks-")
        return for_workers(self.target, self._lock_dir.name)

    def close(self) -> None:
        """The end of the run: what it started, stopped; what it made, removed."""
        apphost.stop_all()  # an [asgi] application's lifespan ends with the run
        self.bundled.stop()
        if self._lock_dir is not None:
            self._lock_dir.cleanup()
            self._lock_dir = None

    # --- the tests ------------------------------------------------------------------------

    def say(self, line: str) -> None:
        if self.progress is not None:
            Progress.write(line)

    def select(self, items: list[pytest.Item]) -> list[pytest.Item]:
        """Order the collected tests, in place, and return those ``--only`` leaves out.
        Exclusive tests first, alone: the scheduler starts after them (nothing runs beside
        them, and a room they leave broken is found by what follows, not before they ran); then
        the tests pytest's own thread runs (the property-based ones), while the scheduler works
        through the others (:mod:`harness.server.scheduler`)."""
        keep, drop = [], []
        for item in items:
            ids = requirement_ids(item)
            unknown = [i for i in ids if i not in self.catalogue]
            if unknown:
                raise UsageError(f"{item.nodeid}: requirement {unknown[0]} is not in the catalogue")
            if ids and self.selected is not None and not (set(ids) & self.selected):
                drop.append(item)
            else:
                keep.append(item)

        def rank(item: pytest.Item) -> int:
            if exclusive(item):
                return 0
            return 1 if requirement_ids(item) and not schedulable(item) else 2

        items[:] = sorted(keep, key=rank)
        self.last_test = items[-1].nodeid if items else None
        if any(requirement_ids(i) for i in items):
            self.active = True
        return drop

    def begin(self, items: list[pytest.Item]) -> None:
        """Before the tests of a run in one process (pytest-xdist hands tests to workers one by
        one: no preflight, no running ahead there): the preflight, then the scheduler, unless
        the tests run one at a time; it starts once the exclusive tests are done
        (:meth:`before_test`)."""
        if not any(requirement_ids(i) for i in items):
            return
        self.preflight()
        lanes = self.lanes()
        if lanes > 1:
            self.scheduler = Scheduler(
                items,
                target=self.target_under_test(),
                gate=self.gate,
                lanes=lanes,
                make_chat=self.new_chat,
            )

    def preflight(self) -> None:
        """What the target does, found once before the tests (:mod:`harness.server.preflight`)."""
        try:
            asyncio.run(preflight_mod.preflight(self.target_under_test(), self.gate))
        except HarnessError as exc:
            self.stop(redact.redact(str(exc)))
        if self.gate.failed:
            self.say(self.gate.summary())
        rate = self.gate.rate_line()
        if rate is not None:
            self.say(rate)

    def lanes(self) -> int:
        """How many tests run at once: ``--concurrency``, unless the preflight found that
        tests side by side would see one another's frames."""
        if self.concurrency > 1 and not self.gate.errors_private:
            self.say(
                "preflight: error frames reach other connections of the room (ERR-001):"
                " the tests run one at a time"
            )  # an error frame names no message: only its sender can own it
            return 1
        if self.concurrency > 1 and not self.gate.accounts_shared:
            self.say(
                "preflight: a second connection of an account receives no events"
                " (BCAST-001): the tests run one at a time"
            )  # tests side by side would open second connections for one another
            return 1
        return self.concurrency

    def before_test(self, item: pytest.Item) -> None:
        scheduler = self.scheduler
        if scheduler is not None and not scheduler.started and not exclusive(item):
            scheduler.start()

    def end(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()

    def call(self, item: pytest.Function) -> bool | None:
        """pytest's call step for a conformance test (None: pytest calls it): the outcome the
        scheduler recorded, else one bounded run, under the run's lock across xdist workers."""
        ids = requirement_ids(item)
        if self.scheduler is not None and item in self.scheduler:
            outcome = self.scheduler.outcome(item)
            item.stash[DURATION] = outcome.duration_s
            if outcome.error is not None:
                settle(outcome.error)
            return True
        kwargs = {name: item.funcargs[name] for name in item._fixtureinfo.argnames}
        if not inspect.iscoroutinefunction(item.obj) and not ids:
            return None
        lock = self.lock
        if lock is None or not ids:
            self._call(item, kwargs)
        else:
            with lock.alone() if exclusive(item) else lock.shared():
                start = time.monotonic()  # its duration, without the wait for its turn
                try:
                    self._call(item, kwargs)
                finally:
                    item.stash[DURATION] = time.monotonic() - start
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
        first = kwargs.get("chat")
        if scheduler is not None and isinstance(first, Chat):
            first.crowded = lambda: scheduler.crowded_since(mark)
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

    def reported(self, report: pytest.TestReport) -> None:
        """A test's report (from any worker): its record joins the run's."""
        record = record_of(report)
        if record is not None:
            self.records[report.nodeid] = record
            self.active = True
        if self.progress is not None:
            self.progress.record(report)

    # --- stopping -------------------------------------------------------------------------

    def stop(self, line: str) -> NoReturn:
        """End the run at once with one line: the cause, kept for results.json and the report."""
        if self.stopped_because is None:
            self.stopped_because = line
        pytest.exit(line, returncode=2)

    def stop_before_tests(self, line: str) -> NoReturn:
        """The inputs were right but the target cannot be tested: the report files say why,
        then :class:`~harness.core.failures.UsageError` (``stopped``) ends the run."""
        self.write_stopped(line)
        raise UsageError(line, stopped=True) from None

    def write_stopped(self, line: str) -> None:
        """The report files of a run that stopped before its tests could run (pytest's session,
        which writes them, did not run or ended in its start): they say why."""
        if self.report_dir is None or self.worker:
            return
        write_stopped_run(
            line,
            Path(self.report_dir),
            started=self.started,
            target=self.source or BUNDLED,
            selected=self.selected,
            strict=self.strict,
            catalogue=self.catalogue,
            time_budget_s=self.time_budget_s,
        )

    def ended_by(self, exc: BaseException) -> None:
        """Ctrl-C, or ``pytest.exit`` (a harness error ended the run: its line is kept)."""
        self.interrupted = isinstance(exc, KeyboardInterrupt)
        if not self.interrupted and self.stopped_because is None:
            message = getattr(exc, "msg", None) or str(exc)
            self.stopped_because = redact.redact(message) or None

    # --- the verdict ----------------------------------------------------------------------

    def build_result(self) -> RunResult:
        result = aggregate(
            [*self.gate.records(), *self.records.values()],
            catalogue=self.catalogue,
            selected=self.selected,
            baseline=self.baseline.known,
            not_applicable=self.baseline.not_applicable,
            target=self.label,
            started=self.started.isoformat(timespec="seconds").replace("+00:00", "Z"),
            duration_s=time.monotonic() - self.t0,
            harness_version=__version__,
            strict=self.strict,
            lacking=self.lacking,
            time_budget_s=self.time_budget_s,
        )
        result.warnings = list(self.target.warnings) if self.target else []
        rate = self.gate.rate_warning()
        if rate is not None:
            result.warnings.append(rate)
        return result

    def finish(self, exitstatus: int) -> RunResult:
        """The run's result once pytest's session ended with ``exitstatus``; results.json and
        junit.xml written."""
        result = self.build_result()
        result.finished = exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
        if not result.finished:
            result.stopped_because = self.stopped_because
        if self.gate.tripped is not None:
            result.finished, result.stopped_because = False, self.gate.tripped
        if self.interrupted:
            result.interrupted, result.stopped_because = True, "interrupted (Ctrl-C)"
        self.result = result
        if self.report_dir:
            write_results_json(result, Path(self.report_dir) / "results.json")
            write_junit(result, Path(self.report_dir) / "junit.xml")
        return result


class BundledServer:
    """The bundled reference server: demo data, a free port and a temporary database file, in a
    process of its own (:class:`reference_server.runner.ServerProcess`)."""

    def __init__(self) -> None:
        self.process: ServerProcess | None = None
        #: Its target, once it listens.
        self.target: Target | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    def launch(self) -> ServerProcess:
        """Launch it, without waiting for it to listen (once)."""
        from reference_server.runner import ServerProcess

        if self.process is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="edusphere-")
            database = os.path.join(self._tmpdir.name, "reference.sqlite3")
            self.process = ServerProcess(["--demo", "--db", database]).launch()
        return self.process

    def ready(self) -> Target:
        """Its target, once it listens (launched now if it was not); RuntimeError if it
        cannot start."""
        from reference_server.demo import demo_config, demo_target_dict

        if self.target is None:
            process = self.launch()
            data = demo_target_dict(process.wait_ready())
            data["limits"]["max_frame_bytes"] = demo_config(database=":memory:").max_frame_bytes
            target = target_mod.parse(data, where=BUNDLED)
            self.target = dataclasses.replace(target, restart_hook=process.restart)
        return self.target

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None
