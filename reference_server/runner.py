"""Run the server in a daemon thread with its own event loop (for tests, fixtures, scripts).

Protocol-independent plumbing: ``ServerThread(config).start()`` returns once the server listens;
``restart()`` keeps the port and the database; exceptions raised in the thread are logged and
re-raised by ``start()`` / ``stop()`` / ``raise_errors()``, never swallowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import subprocess
import sys
import threading
import time
from types import TracebackType
from typing import Self

from reference_server.config import ServerConfig
from reference_server.server import ChatServer, serve

__all__ = ["ServerProcess", "ServerThread", "serve"]

logger = logging.getLogger("reference_server.runner")


class ServerThread:
    """A reference server running in a background thread.

    ::

        srv = ServerThread(demo_config(database=":memory:")).start()
        srv.port; srv.url_template
        srv.restart()   # same port, same database file (":memory:" loses everything)
        srv.stop()

    Also a context manager (``with ServerThread(config) as srv:``).
    """

    def __init__(self, config: ServerConfig, *, timeout: float = 10.0) -> None:
        self.config = config
        self.timeout = timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._server: ChatServer | None = None
        self._failure: BaseException | None = None
        self._port: int | None = None
        self._errors: list[BaseException] = []

    # -- public API --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on (kept across restarts)."""
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url_template(self) -> str:
        """``ws://127.0.0.1:PORT/ws/chat/{host}/{room}``."""
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.url_template

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions raised while serving frames, across restarts."""
        current = self._server.errors if self._server is not None else []
        return [*self._errors, *current]

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        """Start the thread and return once the server listens (or raise why it could not)."""
        if self.running:
            raise RuntimeError("server already running")
        self._ready.clear()
        self._failure = None
        self._thread = threading.Thread(
            target=self._run, name=f"reference-server:{self.config.port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(self.timeout):
            raise TimeoutError(f"reference server did not start within {self.timeout} s")
        if self._failure is not None:
            self._thread.join(self.timeout)
            raise RuntimeError("reference server failed to start") from self._failure
        return self

    def stop(self) -> None:
        """Close every connection, stop the server and join the thread."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(self.timeout)
        if thread.is_alive():
            raise TimeoutError(f"reference server did not stop within {self.timeout} s")
        self._thread = None
        if self._server is not None:
            self._errors.extend(self._server.errors)
            self._server = None
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise RuntimeError("reference server thread failed") from failure

    def restart(self) -> Self:
        """Stop, then start again on the same port and database."""
        port = self.port
        self.stop()
        self.config = dataclasses.replace(self.config, port=port)
        return self.start()

    def raise_errors(self) -> None:
        """Raise the first unexpected exception the server met, if any (pytest-httpserver's
        ``check_assertions``)."""
        errors = self.errors
        if errors:
            raise RuntimeError(f"{len(errors)} error(s) in the reference server") from errors[0]

    def __enter__(self) -> Self:
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._failure = exc
            logger.exception("reference server thread failed", extra={"fields": {}})
        finally:
            self._ready.set()  # never leave start() waiting

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        async with serve(self.config) as server:
            self._server = server
            self._port = server.port
            self._ready.set()
            await self._stop_event.wait()


class ServerProcess:
    """A reference server in a process of its own (``python -m reference_server serve``): a
    harness run against the bundled server then has this machine's other core for itself.

    ::

        srv = ServerProcess(["--demo", "--db", path]).launch()   # returns at once
        srv.wait_ready()        # the URL template, once it listens
        srv.restart(); srv.stop()

    The same port and database across restarts, like :class:`ServerThread`.
    """

    def __init__(self, args: list[str], *, timeout: float = 20.0) -> None:
        self.args = args
        self.timeout = timeout
        self._proc: subprocess.Popen[str] | None = None
        self._url: str | None = None
        self._port = 0

    def launch(self) -> Self:
        argv = [sys.executable, "-m", "reference_server", "serve", "--host", "127.0.0.1"]
        argv += [f"--port={self._port}", "--log-level", "WARNING", *self.args]
        self._url = None
        self._proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        return self

    def wait_ready(self) -> str:
        """The URL template once the server listens; raises RuntimeError if it never does."""
        if self._url is not None:
            return self._url
        proc = self._proc
        if proc is None or proc.stdout is None:
            raise RuntimeError("reference server not launched")
        ready = threading.Event()
        line: list[str] = []

        def read() -> None:
            assert proc.stdout is not None
            line.append(proc.stdout.readline())
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(self.timeout) or not line[0].startswith("listening on "):
            self.stop()
            raise RuntimeError(f"reference server did not start: {line[0].strip() if line else ''}")
        self._url = line[0].removeprefix("listening on ").strip()
        self._port = int(self._url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        return self._url

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def restart(self) -> Self:
        """Stop, then start again on the same port (retried while the port lingers)."""
        self.wait_ready()
        self.stop()
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self.launch().wait_ready()
                return self
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
