"""Run the server in a daemon thread with its own event loop (for tests, fixtures, scripts).

Protocol-independent plumbing: ``ServerThread(config).start()`` returns once the server listens;
``restart()`` keeps the port and the database; exceptions raised in the thread are logged and
re-raised by ``start()`` / ``stop()`` / ``raise_errors()``, never swallowed. ``ServerProcess``
runs ``serve`` in a process; ``ClusterProcess`` runs ``serve --nodes N --broker URL`` on a
``RedisServer`` of its own. Those three are child processes started and stopped the same way
(``_ChildProcess``: a ready handshake with a timeout; SIGTERM, then SIGKILL; the last log line in
the error when one does not start). Everything binds to 127.0.0.1 and stops with its ``with``
block.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from reference_server.cluster import TARGET_END, TARGET_START
from reference_server.config import ServerConfig
from reference_server.server import ChatServer, serve

__all__ = [
    "ClusterProcess",
    "MissingProgram",
    "RedisServer",
    "ServerProcess",
    "ServerThread",
    "serve",
]

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


class _ChildProcess:
    """A program run in a child process: started with a handshake, stopped for sure, its logs kept.

    A subclass spawns it (``start_new_session=self._own_group``) and waits for its own sign
    that it is ready: a line on its stdout (:meth:`_stdout_lines`, read by a daemon thread so
    that the wait has a timeout) or an answer on the free port it was given. :meth:`_stop_child`
    stops it: SIGTERM, up to ``timeout`` to exit, then SIGKILL (to every process left in its
    group when it has one of its own, so no node outlives it). When it does not start, the
    error quotes the last line of its log (:meth:`_last_log_line`). ``start()`` returns once it
    is ready and ``stop()`` stops it: a ``with`` block does both.
    """

    #: Whether the child leads a process group of its own (SIGKILL then reaches its children).
    _own_group = False

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        self._proc: subprocess.Popen[Any] | None = None

    def start(self) -> Self:
        """Start the child and return once it is ready (or raise why it is not)."""
        raise NotImplementedError

    def stop(self) -> int | None:
        """Stop the child; its exit status when the subclass reports one."""
        raise NotImplementedError

    def _stdout_lines(self, limit: int | None = None) -> queue.Queue[str]:
        """The child's stdout line by line ("" at its end), read by a daemon thread; with
        ``limit``, the thread stops after that many lines (and reads no further)."""
        lines: queue.Queue[str] = queue.Queue()
        stream = self._proc.stdout if self._proc is not None else None
        threading.Thread(target=_read_lines, args=(stream, lines, limit), daemon=True).start()
        return lines

    def _last_log_line(self) -> str:
        """The last line the child logged, for the error when it does not start ("": none)."""
        return ""

    def _stop_child(self) -> int | None:
        """SIGTERM the child, wait up to ``timeout``, then SIGKILL: every process left in its
        group (even after a clean exit) when it has one of its own, else the child if it has
        not exited; close its stdout. The child's exit status (None if none ran)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
        try:
            status: int | None = proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            status = None
        if self._own_group:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        elif status is None:
            proc.kill()
        if status is None:
            status = proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        return status

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ServerProcess(_ChildProcess):
    """A reference server in a process of its own (``python -m reference_server serve``): a
    harness run against the bundled server then has this machine's other core for itself.

    ::

        srv = ServerProcess(["--demo", "--db", path]).launch()   # returns at once
        srv.wait_ready()        # the URL template, once it listens
        srv.restart(); srv.stop()

    The same port and database across restarts, like :class:`ServerThread`. The first launch
    asks for port 0; the ready line (``listening on URL``) says which port it got.
    """

    def __init__(self, args: list[str], *, timeout: float = 20.0) -> None:
        super().__init__(timeout=timeout)
        self.args = args
        self._url: str | None = None
        self._port = 0

    def launch(self) -> Self:
        argv = [sys.executable, "-m", "reference_server", "serve", "--host", "127.0.0.1"]
        argv += [f"--port={self._port}", "--log-level", "WARNING", *self.args]
        self._url = None
        self._proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=self._own_group,
        )
        return self

    def start(self) -> Self:
        """:meth:`launch`, then :meth:`wait_ready`."""
        self.launch().wait_ready()
        return self

    def wait_ready(self) -> str:
        """The URL template once the server listens; raises RuntimeError if it never does."""
        if self._url is not None:
            return self._url
        if self._proc is None or self._proc.stdout is None:
            raise RuntimeError("reference server not launched")
        try:
            line = self._stdout_lines(limit=1).get(timeout=self.timeout)
        except queue.Empty:
            line = ""
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"reference server did not start: {line.strip()}")
        self._url = line.removeprefix("listening on ").strip()
        self._port = int(self._url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        return self._url

    @property
    def pid(self) -> int | None:
        """The server process's id, while it runs."""
        return self._proc.pid if self._proc is not None else None

    def stop(self) -> None:
        self._stop_child()

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


class MissingProgram(RuntimeError):
    """A program a fixture runs is not installed; the message names the package to install."""


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer(_ChildProcess):
    """A throwaway Redis server on a free port of 127.0.0.1 (the broker of a test cluster)::

        with RedisServer() as redis:
            redis.url   # "redis://127.0.0.1:PORT"

    Nothing is saved to disk. It runs in a process group of its own and stops with the block
    (killed if it does not stop within ``timeout``). Raises MissingProgram when ``redis-server``
    is not installed (Debian package ``redis-server``).
    """

    _own_group = True

    def __init__(self, *, timeout: float = 10.0) -> None:
        super().__init__(timeout=timeout)
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The port it listens on."""
        if self._port is None:
            raise RuntimeError("redis-server not started")
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT``."""
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start it and return once it answers PING (another port if the first one was taken
        meanwhile)."""
        program = shutil.which("redis-server")
        if program is None:
            raise MissingProgram(
                "redis-server is not installed: install the Debian package redis-server"
                " (apt-get install -y redis-server)"
            )
        self._dir = tempfile.TemporaryDirectory(prefix="edusphere-redis-")
        log = Path(self._dir.name, "redis.log")
        for _ in range(5):
            port = free_port()
            argv = [program, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            argv += ["--appendonly", "no", "--dir", self._dir.name, "--logfile", str(log)]
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=self._own_group,
            )
            self._proc = proc
            if self._answers_ping(proc, port):
                self._port = port
                return self
            self._stop_child()
        tail = self._last_log_line()
        self.stop()
        raise RuntimeError(f"redis-server did not start: {tail or 'no log'}")

    def _answers_ping(self, proc: subprocess.Popen[bytes], port: int) -> bool:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and proc.poll() is None:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), 1) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return True
            time.sleep(0.02)  # not listening yet: redis-server says so nowhere we can await
        return False

    def _last_log_line(self) -> str:
        """The last line of ``redis.log`` (redis-server's ``--logfile``)."""
        if self._dir is None:
            return ""
        log = Path(self._dir.name, "redis.log")
        return _last_line(log.read_text(errors="replace")) if log.exists() else ""

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``) and remove its directory."""
        self._stop_child()
        self._port = None
        directory, self._dir = self._dir, None
        if directory is not None:
            directory.cleanup()


class ClusterProcess(_ChildProcess):
    """``python -m reference_server serve --nodes N --broker URL *args``: N node processes
    under one parent, in a process group of their own::

        with RedisServer() as redis, ClusterProcess(["--demo", "--db", path], 2, redis.url) as c:
            c.urls          # ["ws://127.0.0.1:PORT/ws/chat/{host}/{room}", ...], node 1 first
            c.target_text   # the target file the parent printed (TOML)

    ``stop()`` sends SIGTERM to the parent, which stops its nodes, and kills whatever of the
    group is left after ``timeout``; it returns the parent's exit status.
    """

    _own_group = True

    def __init__(self, args: list[str], nodes: int, broker: str, *, timeout: float = 30.0) -> None:
        super().__init__(timeout=timeout)
        self.args = args
        self.nodes = nodes
        self.broker = broker
        self.urls: list[str] = []
        self.target_text = ""
        self._stderr: IO[str] | None = None
        self.returncode: int | None = None
        """The parent's exit status once it has exited (``stop()``, ``wait()``)."""

    @property
    def pid(self) -> int:
        """The parent's process id (also the process group of the nodes)."""
        if self._proc is None:
            raise RuntimeError("cluster not started")
        return self._proc.pid

    def start(self) -> Self:
        """Start the cluster and return once every node listens and the target is printed;
        RuntimeError (with the last line of its stderr) if it does not within ``timeout``."""
        argv = [sys.executable, "-m", "reference_server", "serve", "--log-level", "WARNING"]
        argv += ["--nodes", str(self.nodes), "--broker", self.broker, *self.args]
        # Open while the cluster runs and for ``stderr`` after it: closed by __exit__.
        self._stderr = tempfile.TemporaryFile("w+", prefix="edusphere-cluster-")  # noqa: SIM115
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
            start_new_session=self._own_group,
        )
        lines = self._stdout_lines()
        try:
            self._read_output(lines)
        except BaseException:
            self.stop()
            raise
        return self

    def _read_output(self, lines: queue.Queue[str]) -> None:
        deadline = time.monotonic() + self.timeout
        target: list[str] | None = None
        while target is None or target[-1].rstrip("\n") != TARGET_END:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(self._failure("did not start in time")) from None
            if not line:
                raise RuntimeError(self._failure("exited before it listened"))
            if target is not None:
                target.append(line)
            elif line.startswith(TARGET_START):
                target = [line]
            elif " listening on " in line:
                self.urls.append(line.split(" listening on ", 1)[1].strip())
        if len(self.urls) != self.nodes:
            raise RuntimeError(self._failure(f"printed {len(self.urls)} nodes, not {self.nodes}"))
        self.target_text = "".join(target)

    def _failure(self, what: str) -> str:
        return f"reference cluster {what}: {self._last_log_line() or 'no error output'}"

    def _last_log_line(self) -> str:
        """The last line of the parent's and its nodes' stderr."""
        return _last_line(self.stderr)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the parent to exit by itself (a node died); its exit status."""
        if self._proc is None:
            raise RuntimeError("cluster not started")
        self.returncode = self._proc.wait(self.timeout if timeout is None else timeout)
        return self.returncode

    @property
    def stderr(self) -> str:
        """What the parent and its nodes wrote to stderr so far."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read()

    def stop(self) -> int | None:
        """SIGTERM to the parent, which stops its nodes; whatever is left of the group is killed
        after ``timeout``. The parent's exit status."""
        if self._proc is not None:
            self.returncode = self._stop_child()
        return self.returncode

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        super().__exit__(exc_type, exc, tb)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


def _read_lines(stream: IO[str] | None, lines: queue.Queue[str], limit: int | None = None) -> None:
    """Put each line of ``stream`` on ``lines``, then "" at its end; with ``limit``, stop after
    that many lines (a process that only prints its ready line is not read while it runs)."""
    if stream is not None:
        with contextlib.suppress(ValueError, OSError):  # closed by stop()
            for count, line in enumerate(stream, 1):
                lines.put(line)
                if count == limit:
                    return
    lines.put("")


def _last_line(text: str) -> str:
    """The last non-blank line of a log ("" if it is empty)."""
    return " ".join(text.strip().splitlines()[-1:])
