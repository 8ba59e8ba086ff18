"""Running the scenarios: start the fake server, launch the client, follow the plan, clean up.

This is the I/O side; it records and never judges (see :mod:`harness.client.policy`).
Every wait is bounded: by the plan's own bound (``2 x n x base + 2 x tolerance + 500 ms`` after
the trigger for attempt n, the frame wait for an action, the quiet period) and by the run's
overall deadline. The client process is always ended when its scenario ends, whatever happened
(a cancellation included: the cleanup runs to its end first, see :func:`finish`).

The scenarios run concurrently when they can (:attr:`Settings.concurrent`): each on its own free
port, with its own fake server and its own client process, all bounded by one overall deadline;
their records come back in the scenarios' order whatever order they end in. Otherwise (listen-only,
a fixed port, ``sequential``) they run one after another, as before.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from harness.client.process import ClientProcess, LaunchError, finish
from harness.client.scenarios import Scenario, Settings, worst_case_s
from harness.wire.serve import AttemptRecord, FakeServer, Signal

__all__ = ["ScenarioRun", "SetupError", "run_scenario", "run_scenarios"]


_SLACK_MS = 500.0
"""Added to the wait for attempt n, so a late attempt is recorded as late, not as missing."""


class SetupError(Exception):
    """The run cannot go on (the client cannot be started, never connects, ...): one line."""


class _OverallTimeout(Exception):
    pass


@dataclass
class ScenarioRun:
    """What one scenario recorded (raw; judged by :func:`harness.client.results.evaluate`)."""

    scenario: Scenario
    url: str
    port: int
    plan: tuple[str, ...]
    attempts: list[AttemptRecord]
    observed_until_ms: float
    client_exit_status: int | None = None
    client_exited_ms: float | None = None
    incomplete: str | None = None
    notes: list[str] = field(default_factory=list)


class _Clock:
    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()

    def now_ms(self) -> float:
        return (self._loop.time() - self._t0) * 1000

    def loop_time(self, ms: float) -> float:
        return self._t0 + ms / 1000


def client_env(settings: Settings, url: str) -> dict[str, str]:
    """The launched client's environment: ours, the user's ``--env`` and the EDUSPHERE_* ones."""
    env = dict(os.environ)
    env.update(settings.env)
    env["EDUSPHERE_WS_URL"] = url
    env["EDUSPHERE_RECONNECT_DELAY_MS"] = f"{settings.base_ms:g}"
    env["EDUSPHERE_MAX_RECONNECT_ATTEMPTS"] = str(settings.max_attempts)
    if settings.token:
        env["EDUSPHERE_TOKEN"] = settings.token
    return env


async def run_scenario(
    scenario: Scenario,
    settings: Settings,
    deadline: float,
    announce: Callable[[str], None],
) -> ScenarioRun:
    """Run one scenario until its plan and quiet period are done (or ``deadline``, loop time)."""
    loop = asyncio.get_running_loop()
    clock = _Clock()
    signal = Signal()
    plan = scenario.plan(settings.max_attempts)
    server = FakeServer(
        plan, scenario.default, clock.now_ms, settings.frame_wait_ms / 1000, signal.notify
    )
    try:
        port = await server.start(settings.host, settings.port)
    except OSError as exc:
        raise SetupError(f"cannot listen on {settings.host}:{settings.port}: {exc}") from None
    url = f"ws://{settings.host}:{port}{settings.path}"
    run = ScenarioRun(scenario, url, port, tuple(plan), server.attempts, 0.0)
    proc: ClientProcess | None = None
    base, tol = settings.base_ms, settings.tolerance

    def bounded(ms: float) -> float:
        return min(clock.loop_time(ms), deadline)

    def exited() -> bool:
        return proc is not None and proc.exited

    async def wait(predicate: Callable[[], bool], until_ms: float) -> bool:
        ok = await signal.wait_until(predicate, bounded(until_ms))
        if not ok and loop.time() >= deadline:
            raise _OverallTimeout
        return ok

    try:
        if settings.command is not None:
            try:
                proc = await ClientProcess.launch(
                    settings.command, client_env(settings, url), clock.now_ms, signal.notify
                )
            except LaunchError as exc:
                raise SetupError(str(exc)) from None
        else:
            announce(
                f"[{scenario.name}] start the client under test now, pointed at {url} "
                f"(waiting up to {settings.connect_timeout_s:g} s)"
            )

        attempts = server.attempts
        connect_ms = settings.connect_timeout_s * 1000
        await wait(lambda: bool(attempts) or exited(), clock.now_ms() + connect_ms)
        if not attempts:
            if proc is not None and proc.exited:
                tail = proc.output_tail()
                raise SetupError(
                    f"the client command exited with status {proc.returncode} before "
                    f"connecting to {url}" + (f" (output: {tail})" if tail else "")
                )
            raise SetupError(
                f"no client connected to {url} within {settings.connect_timeout_s:g} s"
            )

        counter = 0
        last_event_ms = attempts[0].at_ms
        hold: AttemptRecord | None = None
        missing = False
        for k, action in enumerate(plan):
            if k > 0:
                bound = last_event_ms + 2 * base * max(counter, 1) + 2 * tol + _SLACK_MS
                await wait(_arrived(attempts, k, exited), bound)
                if len(attempts) <= k:
                    missing = True  # the policy says which requirement that fails
                    break
            record = attempts[k]
            if action == "hold":
                hold = record
                last_event_ms = record.at_ms
                await wait(_first_frame(record, exited), clock.now_ms() + settings.frame_wait_ms)
                continue
            ends_by = clock.now_ms() + settings.frame_wait_ms + 6000
            await wait(_ended(record), ends_by)
            if record.end_ms is None:
                run.notes.append(f"attempt #{record.index} did not reach its planned {action}")
                break
            if record.outcome == "accepted":
                counter = 0
            if record.end in ("refused", "dropped"):
                counter += 1
                last_event_ms = record.end_ms
            elif record.end == "closed":
                last_event_ms = record.end_ms
            else:
                run.notes.append(
                    f"attempt #{record.index} ended as {record.end!r}, not by the planned {action}"
                )
                break
        if hold is not None:
            last_event_ms = max(last_event_ms, hold.at_ms)
        if not missing:  # after a missing attempt the wait for it was the quiet period
            await wait(exited, last_event_ms + scenario.quiet(settings))
    except _OverallTimeout:
        run.incomplete = "the overall timeout was reached during this scenario"
    finally:
        run.observed_until_ms = clock.now_ms()
        server.begin_stop()
        await finish(_end(run, proc, server))
    return run


async def _end(run: ScenarioRun, proc: ClientProcess | None, server: FakeServer) -> None:
    """End the client (recording its exit if it had exited by itself) and close the server."""
    if proc is not None:
        was_running = not proc.exited
        await proc.kill()
        if not was_running:
            run.client_exit_status = proc.returncode
            run.client_exited_ms = proc.exited_ms
    await server.stop()


def _arrived(
    attempts: list[AttemptRecord], k: int, exited: Callable[[], bool]
) -> Callable[[], bool]:
    return lambda: len(attempts) > k or exited()


def _first_frame(record: AttemptRecord, exited: Callable[[], bool]) -> Callable[[], bool]:
    return lambda: bool(record.frames) or record.end_ms is not None or exited()


def _ended(record: AttemptRecord) -> Callable[[], bool]:
    return lambda: record.end_ms is not None


def default_timeout_s(settings: Settings) -> float:
    """The overall bound when none is given: every scenario's worst case, summed when they run
    one after another, the longest one when they run concurrently."""
    worst = [worst_case_s(s, settings) for s in settings.selected()]
    return max(worst, default=0.0) if settings.concurrent else sum(worst)


async def run_scenarios(
    settings: Settings, announce: Callable[[str], None] = print
) -> tuple[list[ScenarioRun], str | None, bool]:
    """Run the selected scenarios (concurrently when they can); stop at the overall deadline or
    at Ctrl-C.

    Returns the runs in the scenarios' order, why the run stopped early (None when every
    scenario ran to its end), and whether it was interrupted: the scenarios recorded before
    Ctrl-C are still judged and reported, as in the server mode. Raises :class:`SetupError`
    (concurrently: that of the first scenario in order that raised one, once every other
    scenario's client is ended).
    """
    loop = asyncio.get_running_loop()
    timeout = settings.timeout_s if settings.timeout_s is not None else default_timeout_s(settings)
    deadline = loop.time() + timeout
    if settings.concurrent:
        return await _run_concurrently(settings, announce, timeout, deadline)
    return await _run_in_turn(settings, announce, timeout, deadline)


async def _run_in_turn(
    settings: Settings, announce: Callable[[str], None], timeout: float, deadline: float
) -> tuple[list[ScenarioRun], str | None, bool]:
    loop = asyncio.get_running_loop()
    runs: list[ScenarioRun] = []
    for scenario in settings.selected():
        if loop.time() >= deadline:
            reason = f"the overall timeout ({timeout:g} s) was reached before {scenario.name}"
            return runs, reason, False
        try:
            run = await run_scenario(scenario, settings, deadline, announce)
        except asyncio.CancelledError:
            # asyncio.run cancels the main task on Ctrl-C; the scenario cleaned up on its way
            # out, and the ones recorded before it are reported.
            return runs, f"interrupted (Ctrl-C) during {scenario.name}", True
        runs.append(run)
        if settings.listen_only and settings.port == 0:
            # An external client is pointed at one address: keep it for the next scenarios.
            settings = replace(settings, port=run.port)
        if run.incomplete:
            return runs, _timed_out(timeout, scenario), False
    return runs, None, False


async def _run_concurrently(
    settings: Settings, announce: Callable[[str], None], timeout: float, deadline: float
) -> tuple[list[ScenarioRun], str | None, bool]:
    scenarios = settings.selected()
    tasks = [
        asyncio.create_task(
            run_scenario(scenario, settings, deadline, announce),
            name=f"client-check {scenario.name}",
        )
        for scenario in scenarios
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        # Ctrl-C: every scenario still running ends its client and closes its server; the ones
        # that had ended are reported, in order.
        await _stop(tasks)
        runs = [task.result() for task in tasks if _ran(task)]
        unfinished = [s.name for s, t in zip(scenarios, tasks, strict=True) if not _ran(t)]
        if unfinished:
            return runs, f"interrupted (Ctrl-C) during {unfinished[0]}", True
        # Every scenario had ended already: as one at a time, a Ctrl-C that comes after the
        # last scenario changes nothing.
    if not all(_ran(task) for task in tasks):
        # A scenario could not be set up (or failed): stop the others, report the first error.
        await _stop(tasks)
        errors = [task.exception() for task in tasks if not task.cancelled()]
        raise next((exc for exc in errors if exc is not None), asyncio.CancelledError())
    runs = [task.result() for task in tasks]
    cut = next((run for run in runs if run.incomplete), None)
    if cut is not None:
        return runs, _timed_out(timeout, cut.scenario), False
    return runs, None, False


def _timed_out(timeout: float, scenario: Scenario) -> str:
    return f"the overall timeout ({timeout:g} s) was reached during {scenario.name}"


def _ran(task: asyncio.Task[ScenarioRun]) -> bool:
    """The scenario ran to its end (or to the deadline) and left its record."""
    return task.done() and not task.cancelled() and task.exception() is None


async def _stop(tasks: list[asyncio.Task[ScenarioRun]]) -> None:
    """Cancel the scenarios still running and wait until each has ended its client and closed
    its server (a second cancellation waits for that too)."""
    for task in tasks:
        task.cancel()
    await finish(asyncio.gather(*tasks, return_exceptions=True))
