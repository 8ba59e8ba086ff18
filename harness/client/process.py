"""Launching the client under test, and always ending it.

The command runs in its own session (process group), so the process and anything it spawned are
ended together: SIGTERM to the group, then SIGKILL after a grace period. Its output (stdout and
stderr together) is drained continuously (a full pipe would block the client) and the last lines
are kept for error messages.

Ending it must not be cut short: when several scenarios run at once, a Ctrl-C (or another
scenario's setup error) cancels the ones still running, maybe while one is starting its client or
ending it. :func:`finish` lets such work run to its end before the cancellation goes on, so no
client process outlives its scenario.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

__all__ = ["ClientProcess", "LaunchError", "finish"]

_T = TypeVar("_T")


class LaunchError(Exception):
    """The client command could not be started: one clear line."""


async def finish(work: Awaitable[_T]) -> _T:
    """Await ``work`` to its end even if the caller is cancelled meanwhile, then re-raise that
    cancellation (cleanup that must not stop halfway: a client left running, a port held)."""
    task = asyncio.ensure_future(work)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            cancelled = exc  # the work goes on; a cancelled work ends the loop too
    if cancelled is not None:
        raise cancelled
    return task.result()


async def _spawn(argv: Sequence[str], env: Mapping[str, str]) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )
    except FileNotFoundError:
        raise LaunchError(f"cannot run the client command: {argv[0]!r} not found") from None
    except PermissionError:
        raise LaunchError(f"cannot run the client command: {argv[0]!r} is not executable") from None
    except OSError as exc:
        raise LaunchError(f"cannot run the client command {argv[0]!r}: {exc}") from None


class ClientProcess:
    """A running client command."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        argv: Sequence[str],
        now_ms: Callable[[], float],
        on_exit: Callable[[], None],
    ) -> None:
        self._proc = proc
        self.argv = tuple(argv)
        self._now_ms = now_ms
        self._on_exit = on_exit
        self._tail: deque[str] = deque(maxlen=20)
        self.exited_ms: float | None = None
        self._reader = asyncio.create_task(self._drain())
        self._waiter = asyncio.create_task(self._wait())

    @classmethod
    async def launch(
        cls,
        argv: Sequence[str],
        env: Mapping[str, str],
        now_ms: Callable[[], float],
        on_exit: Callable[[], None],
    ) -> ClientProcess:
        """Start ``argv`` with ``env``; raises :class:`LaunchError` if it cannot be started."""
        if not argv:
            raise LaunchError("the client command is empty")
        spawn = asyncio.ensure_future(_spawn(argv, env))
        try:
            proc = await asyncio.shield(spawn)
        except asyncio.CancelledError:
            # Cancelled while starting: the process may be running already; end it (and its
            # group) before the cancellation goes on.
            async def abandon() -> None:
                with contextlib.suppress(LaunchError):
                    await cls(await spawn, argv, now_ms, on_exit).kill()

            await finish(abandon())
            raise
        return cls(proc, argv, now_ms, on_exit)

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    @property
    def exited(self) -> bool:
        return self.exited_ms is not None

    def output_tail(self, lines: int = 3) -> str:
        """The last ``lines`` non-empty lines of output, joined with `` | ``."""
        kept = [line for line in self._tail if line.strip()]
        return " | ".join(kept[-lines:])

    async def _drain(self) -> None:
        stream = self._proc.stdout
        if stream is None:  # pragma: no cover - always piped
            return
        while True:
            try:
                line = await stream.readline()
            except (ValueError, OSError):  # an overlong line, or the pipe went away
                continue
            if not line:
                return
            self._tail.append(line.decode("utf-8", "replace").rstrip())

    async def _wait(self) -> None:
        await self._proc.wait()
        self.exited_ms = self._now_ms()
        self._on_exit()

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signum)

    async def kill(self, grace_s: float = 1.0) -> None:
        """End the process and its group: SIGTERM, then SIGKILL after ``grace_s``."""
        if self._proc.returncode is None:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._waiter), grace_s)
        # Whatever is left in the group (the leader, or children a wrapper left behind).
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._waiter), 5)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._reader), 2)
        for task in (self._reader, self._waiter):
            if not task.done():
                task.cancel()
