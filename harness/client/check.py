"""Running client-check as a library: settings in, judged result out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from harness import catalogue as cat_mod
from harness import redact
from harness.client.play import run_scenarios
from harness.client.results import ClientRun, evaluate, summarise
from harness.client.scenarios import Settings
from harness.core.frames import now_rfc3339

__all__ = ["check_client", "run_client_check"]


def _quiet(line: str) -> None:
    del line


async def check_client(settings: Settings, announce: Callable[[str], None] = _quiet) -> ClientRun:
    """Run the selected scenarios and judge them (in the running event loop).

    Raises :class:`harness.client.play.SetupError` when the run cannot be done at all.
    ``announce`` receives the lines meant for a person (listen-only instructions).
    """
    redact.register(settings.token)
    catalogue = cat_mod.load()
    requirements = catalogue.scoped("client")
    started = now_rfc3339(timespec="seconds")
    t0 = time.monotonic()
    runs, incomplete, interrupted = await run_scenarios(settings, announce)
    scenarios = [evaluate(run, settings, requirements) for run in runs]
    return summarise(
        settings,
        catalogue,
        scenarios,
        incomplete,
        started=started,
        duration_s=time.monotonic() - t0,
        interrupted=interrupted,
    )


def run_client_check(settings: Settings, announce: Callable[[str], None] = _quiet) -> ClientRun:
    """:func:`check_client` in a fresh event loop."""
    return asyncio.run(check_client(settings, announce))
