"""Running client-check as a library: settings in, judged result out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from harness import redact
from harness.clientcheck.requirements import load_client_catalogue
from harness.clientcheck.results import RunResult, evaluate, summarise
from harness.clientcheck.runner import run_scenarios
from harness.clientcheck.scenarios import Settings

__all__ = ["check_client", "run_client_check"]


def _quiet(line: str) -> None:
    del line


async def check_client(settings: Settings, announce: Callable[[str], None] = _quiet) -> RunResult:
    """Run the selected scenarios and judge them (in the running event loop).

    Raises :class:`harness.clientcheck.runner.SetupError` when the run cannot be done at all.
    ``announce`` receives the lines meant for a person (listen-only instructions).
    """
    redact.register(settings.token)
    catalogue = load_client_catalogue()
    runs, incomplete = await run_scenarios(settings, announce)
    scenarios = [evaluate(run, settings, catalogue.ids) for run in runs]
    return summarise(settings, catalogue, scenarios, incomplete)


def run_client_check(settings: Settings, announce: Callable[[str], None] = _quiet) -> RunResult:
    """:func:`check_client` in a fresh event loop."""
    return asyncio.run(check_client(settings, announce))
