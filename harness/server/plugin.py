"""The pytest plugin: hooks and fixtures, the run's state in a :class:`~harness.server.run.Run`.

Loaded through the ``pytest11`` entry point. :func:`pytest_configure` declares the markers and
registers a :class:`ConformancePlugin` holding the run: the CLI's (``edusphere-conformance run``
builds the run and hands it over), else one :func:`harness.server.run.build` makes from pytest's
options (``pytest suites --target FILE``; on a pytest-xdist worker, with the target its controller
loaded). Each hook is a few lines that hand the work on: to the run (the target, the bundled
reference server, the preflight, the call step, the verdict), to :mod:`harness.server.records` (a
test's record), :mod:`harness.server.progress` (the CLI's output) and :mod:`harness.server.sharing`
(what workers receive).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import __version__, redact
from harness.core.failures import UsageError
from harness.core.results import RunResult
from harness.render.terminal import summary_lines
from harness.server.chat import Chat
from harness.server.options import add_options, requirement_ids, strict_mode
from harness.server.progress import Progress
from harness.server.records import CHAT, RESULT, SETUP_ERROR, attach, brief_failures
from harness.server.run import Run, build
from harness.server.sharing import distributed
from harness.target import Target

PLUGIN_NAME = "edusphere-conformance-run"


def _refused(exc: UsageError) -> pytest.UsageError:
    """pytest's own usage error (exit status 4, one line) for the harness's."""
    return pytest.UsageError(redact.redact(str(exc)))


class ConformancePlugin:
    """The hooks of one conformance run; its state is :attr:`run`'s."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def configure(self, config: pytest.Config) -> None:
        """pytest's side of the run: the report directory, and the HTML compliance report
        (with pytest-html only)."""
        run = self.run
        run.strict = run.strict or strict_mode(config)  # pytest's own --strict counts too
        if run.report_dir and not run.worker:
            out = Path(run.report_dir)
            out.mkdir(parents=True, exist_ok=True)
            if hasattr(config.option, "htmlpath") and not config.option.htmlpath:
                config.option.htmlpath = str(out / "compliance.html")
                config.option.self_contained_html = True
        plugins = config.pluginmanager  # the HTML compliance report, with pytest-html only
        if plugins.hasplugin("html") and not plugins.hasplugin("edusphere-report"):
            plugins.register(
                importlib.import_module("harness.render.server_report"), "edusphere-report"
            )

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """pytest-xdist, on the controller: hand each worker the loaded target and the run's
        lock directory."""
        node.workerinput.update(self.run.worker_input())

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.run.close()

    # --- the session ----------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """On the main process: the target answers (unless the CLI probed it), then the
        progress output takes over from pytest's (``--conformance-progress``)."""
        run = self.run
        if run.worker:
            return
        try:
            run.probe()
        except UsageError as exc:
            # pytest calls no sessionfinish for a session that ends in its start: the report
            # files of a stopped run are written by the probe.
            run.stop(redact.redact(str(exc)))
        if session.config.getoption("conformance_progress"):
            run.progress = Progress.take_over(session.config, run.lacking)
            Progress.write(
                f"edusphere-conformance {__version__}: running the suites against {run.described}"
            )

    @pytest.hookimpl(trylast=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and self.run.progress is not None:
            self.run.progress.collect_failed(report)

    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        try:
            dropped = self.run.select(items)
        except UsageError as exc:
            raise _refused(exc) from None
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        for item in items:
            if requirement_ids(item):
                brief_failures(item)
        if self.run.progress is not None:
            self.run.progress.collected(items)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Iterator[None]:
        """Before the loop: the preflight and the scheduler (not with pytest-xdist, which hands
        tests to workers one by one); after it, the scheduler stopped."""
        if not session.config.option.collectonly and not distributed(session.config):
            self.run.begin(session.items)
        try:
            yield
        finally:
            self.run.end()

    # --- each test ------------------------------------------------------------------------

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self.run.before_test(item)

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        return self.run.call(pyfuncitem)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Iterator[None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined, unused-ignore]
        attach(item, report, call)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        """A conformance test whose set-up raised something other than a verdict (a fixture's
        bug, the environment): nothing after it can be trusted to run; the run stops with the
        cause (its requirements are not tested, the run INCOMPLETE)."""
        yield
        line = item.stash.get(SETUP_ERROR, None)
        if line is not None:
            self.run.stop(line)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.run.reported(report)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Ctrl-C, or ``pytest.exit`` (a harness error ended the run: its line is kept)."""
        self.run.ended_by(excinfo.value)

    # --- the verdict ----------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        run = self.run
        if run.worker or session.config.option.collectonly:
            return  # --collect-only runs nothing: there is no verdict to give
        if not run.active and run.stopped_because is None:
            return
        result: RunResult = run.finish(exitstatus)
        session.config.stash[RESULT] = result
        if result.finished:
            # 0 conformant, 1 not conformant, 2 incomplete (README, "Exit status").
            session.exitstatus = result.exit_status
        if run.progress is not None:
            run.progress.finish(result, run.report_dir)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.run.result is None:
            return
        terminalreporter.section("conformance")
        for line in summary_lines(self.run.result):
            terminalreporter.write_line(line)


def plugin_of(config: pytest.Config) -> ConformancePlugin:
    """The run's plugin object (registered by :func:`pytest_configure` or by the CLI)."""
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, ConformancePlugin):
            return plugin
    raise LookupError("the conformance plugin is not registered")


def run_of(config: pytest.Config) -> Run:
    """The run of this pytest session."""
    return plugin_of(config).run


# --- entry point: options, markers, registration ------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


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
        plugin = plugin_of(config)  # the CLI's, with the run it built
    except LookupError:
        plugin = ConformancePlugin(_run_from_options(config))
        config.pluginmanager.register(plugin, PLUGIN_NAME)
    plugin.configure(config)


def _run_from_options(config: pytest.Config) -> Run:
    """``pytest suites`` without the CLI: the run of pytest's options (:func:`build`)."""
    try:
        return build(
            target=config.getoption("target"),
            only=config.getoption("only"),
            baseline=config.getoption("baseline"),
            strict=strict_mode(config),
            report_dir=config.getoption("report_dir"),
            examples=config.getoption("examples"),
            concurrency=config.getoption("concurrency"),
            time_budget=config.getoption("time_budget"),
            workerinput=getattr(config, "workerinput", None),
        )
    except UsageError as exc:
        raise _refused(exc) from None


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def conformance_target(pytestconfig: pytest.Config) -> Iterator[Target]:
    """The target under test: the --target file, or the bundled reference server."""
    yield run_of(pytestconfig).target_under_test()


@pytest.fixture
def chat(request: pytest.FixtureRequest, conformance_target: Target) -> Chat:
    """A recording client session for one test; its transcript goes into the report (the one
    the scheduler made, for a test it runs)."""
    existing: Chat | None = request.node.stash.get(CHAT, None)
    if existing is not None:
        return existing
    return run_of(request.config).new_chat(request.node)


@pytest.fixture
def examples(pytestconfig: pytest.Config, conformance_target: Target) -> int:
    """Examples per property: --examples, else the target's [properties] examples."""
    value = run_of(pytestconfig).examples
    return int(value) if value else conformance_target.examples
