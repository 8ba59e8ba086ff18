"""Running one conformance test: bounded, its connections closed after, its outcome mapped.

:func:`run_test` is the coroutine (used by the scheduler's event loop and by :func:`run_bounded`
for a test run on its own); :func:`settle` turns what a test raised into pytest's terms.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import pytest

from harness.core.failures import (
    ConformanceFailure,
    ConformanceTimeout,
    HarnessError,
    NotTested,
    ResourceLimit,
)
from harness.core.gate import Gate
from harness.server.chat import Chat
from harness.server.preflight import probe as probe_server
from harness.target import Target


def whole_test_bound(item: pytest.Item, target: Target | None) -> float:
    """A test's whole-test bound: its ``test_timeout`` mark (a multiple of the target's
    ``receive_timeout``), else ``max(30, 8 x receive_timeout)`` seconds (README, "Timeouts")."""
    receive = target.receive_timeout if target else 5.0
    mark = item.get_closest_marker("test_timeout")
    if mark is not None:
        return max(float(mark.args[0]), float(mark.kwargs.get("per_receive", 0)) * receive)
    return max(30.0, 8 * receive)


def too_slow(chat: Chat | None, bound: float) -> NotTested | None:
    """A test that ran out of its bound while the server was still answering is not tested
    (slowness is not non-conformance): the answer is ``NotTested`` with what was measured."""
    if chat is None or chat.last_frame_at is None:
        return None
    quiet = time.monotonic() - chat.last_frame_at
    if quiet > chat.target.receive_timeout:
        return None  # the server had gone quiet: that is a timeout, judged as one
    return NotTested(
        f"the server answered too slowly to finish in {bound:.0f} s (raise receive_timeout): "
        f"{chat.traffic.received:,} frames received, an awaited one {quiet:.1f} s before the "
        "bound"
    )


async def run_test(
    func: Callable[..., Awaitable[Any]],
    kwargs: dict[str, Any],
    *,
    chat: Chat | None,
    bound: float,
    requirement: str,
    gate: Gate | None = None,
    name: str = "",
    quiet: Callable[[ConformanceTimeout], Awaitable[None]] | None = None,
    probe: bool = True,
) -> None:
    """Run ``func(**kwargs)`` to its end or its bound, then close its connections.

    With the run's ``gate``: nothing runs once the breaker tripped; a test that timed out makes
    a probe look at the server (:func:`harness.server.preflight.probe`), once ``quiet`` says nothing
    else runs (other tests' connections must not be what the probe finds missing); not after
    the run's last test (``probe`` False), where it would block nothing."""
    if gate is not None:
        gate.check_breaker()
    scope = asyncio.timeout(bound)
    timed_out: ConformanceTimeout | None = None
    try:
        try:
            async with scope:
                await func(**kwargs)
        except TimeoutError:
            if not scope.expired():
                raise
            slow = too_slow(chat, bound)
            if slow is not None:
                raise slow from None
            raise ConformanceTimeout(
                requirement, "the test to finish", f"it did not finish within {bound:.0f} s"
            ) from None
    except (ConformanceFailure, ResourceLimit) as exc:
        if chat is not None:  # what came and was never read tells what the endpoint is
            await chat.count_pending()
        if isinstance(exc, ConformanceTimeout) and not exc.from_gate:
            timed_out = exc
        raise
    finally:
        if chat is not None:
            await chat.close_all()
        # Probed once the test's own connections are gone: they must not be what starves the
        # probe's connection (a server that caps a room's or an account's connections).
        if probe and timed_out is not None and gate is not None and chat is not None:
            if quiet is not None:
                await quiet(timed_out)  # the scheduler's: no other test beside the probe
            await probe_server(chat.target, gate, name or "a test")


def settle(exc: BaseException) -> NoReturn:
    """Raise what a test raised, in pytest's terms: "not tested" is a skip with its reason, a
    harness error ends the run with one line (exit status 2), the rest as it is."""
    if isinstance(exc, NotTested):
        pytest.skip(f"not tested: {exc}")
    if isinstance(exc, HarnessError):
        pytest.exit(str(exc), returncode=2)
    raise exc


def run_bounded(
    func: Callable[..., Awaitable[Any]], kwargs: dict[str, Any], **options: Any
) -> None:
    """Run one async test on its own event loop (:func:`run_test`, which takes ``options``),
    outcome settled."""
    try:
        asyncio.run(run_test(func, kwargs, **options))
    except (NotTested, HarnessError) as exc:
        settle(exc)


def call_sync(func: Callable[..., Any], kwargs: dict[str, Any], gate: Gate | None = None) -> None:
    """A sync conformance test (the property-based ones): "not tested" raised anywhere in it,
    inside hypothesis included, or by the tripped breaker, is a skip with its reason, never a
    failure."""
    try:
        if gate is not None:
            gate.check_breaker()
        func(**kwargs)
    except NotTested as exc:
        settle(exc)
