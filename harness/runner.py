"""Running one async conformance test: in its own event loop, bounded, connections closed after."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from harness.client import Chat
from harness.core.failures import (
    ConformanceFailure,
    ConformanceTimeout,
    HarnessError,
    NotTested,
    ResourceLimit,
)
from harness.target import Target


def whole_test_bound(item: pytest.Item, target: Target | None) -> float:
    """A test's whole-test bound: its ``test_timeout`` mark, else from the target's timeouts."""
    mark = item.get_closest_marker("test_timeout")
    if mark is not None:
        return float(mark.args[0])
    receive = target.receive_timeout if target else 5.0
    return max(30.0, 8 * receive)


def run_bounded(
    func: Callable[..., Awaitable[Any]],
    kwargs: dict[str, Any],
    *,
    chat: Chat | None,
    bound: float,
    requirement: str,
) -> None:
    """Run ``func(**kwargs)`` to its end or its bound; a test that could not run is skipped
    with its reason, and a harness error ends the run with one line (exit status 2)."""

    async def run() -> None:
        scope = asyncio.timeout(bound)
        try:
            async with scope:
                await func(**kwargs)
        except TimeoutError:
            if not scope.expired():
                raise
            raise ConformanceTimeout(
                requirement, "the test to finish", f"it did not finish within {bound:.0f} s"
            ) from None
        except (ConformanceFailure, ResourceLimit):
            if chat is not None:  # what came and was never read tells what the endpoint is
                await chat.count_pending()
            raise
        finally:
            if chat is not None:
                await chat.close_all()

    try:
        asyncio.run(run())
    except NotTested as exc:
        pytest.skip(f"not tested: {exc}")
    except HarnessError as exc:
        pytest.exit(str(exc), returncode=2)
