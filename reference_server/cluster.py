"""``serve --nodes N --broker URL``: N node processes that behave as one server.

Protocol notes, "Several nodes": "A deployment behind a load balancer must behave as one server:
an event reaches connections on every node, errors stay with their sender, rooms stay isolated
[...] The harness can only see this when the target names the nodes one by one." This module
plays such a deployment on one machine. The parent prepares the shared database once (its
tables, and with ``--demo`` the demo data, so that no two nodes seed it at once), checks that the
broker answers, starts each node as ``serve --broker URL --node-name node-K --port P+K-1`` with
the parent's other options, prints where each one listens and a target file that names them all,
and waits for SIGINT or SIGTERM. A node that dies on its own stops the cluster (exit status 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from collections.abc import Iterable, Sequence
from contextlib import suppress
from typing import Any, Final

from reference_server.broker import check_broker
from reference_server.config import ServerConfig
from reference_server.demo import demo_target_dict, seed_demo
from reference_server.store import open_store

START_TIMEOUT: Final = 30.0
"""Seconds a node has to print where it listens."""
STOP_GRACE: Final = 10.0
"""Seconds a node has to stop after SIGTERM before it is killed."""
TARGET_START: Final = (
    "# target file of these nodes (save it, then: edusphere-conformance run --target FILE)"
)
TARGET_END: Final = "# end of target file"
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class ClusterError(RuntimeError):
    """The cluster could not start, or a node died; the message is one line."""


def node_name(index: int) -> str:
    """The name of node ``index`` (1-based): ``node-1``, ``node-2``, ..."""
    return f"node-{index}"


def node_argv(serve_args: Sequence[str], index: int, port: int) -> list[str]:
    """The command line of node ``index``: the parent's ``serve`` arguments without
    ``--nodes``, then the node's name and port (argparse keeps the last of a repeated option)."""
    nodes = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    nodes.add_argument("--nodes")
    _, rest = nodes.parse_known_args(list(serve_args))
    return [
        sys.executable,
        "-m",
        "reference_server",
        "serve",
        *rest,
        "--node-name",
        node_name(index),
        f"--port={port}",
    ]


def target_text(urls: Sequence[str], demo: bool) -> str:
    """The target file of a cluster (TOML), between its start and end comment lines: with the
    demo data, ``demo_target_dict``'s keys and ``nodes``; otherwise ``url`` and ``nodes`` with a
    comment on what to add."""
    if demo:
        described = demo_target_dict(urls[0])
        body = toml_text({"url": described.pop("url"), "nodes": list(urls), **described})
    else:
        body = "\n".join(
            [
                "# add [auth], [accounts.*] and [rooms] for your database (targets/example.toml)",
                toml_text({"url": urls[0], "nodes": list(urls)}),
            ]
        )
    return f"{TARGET_START}\n{body}\n{TARGET_END}\n"


def toml_text(data: dict[str, Any]) -> str:
    """``data`` (strings, numbers, booleans, lists of them, nested dicts) as TOML: a table's
    plain keys first, then its sub-tables under ``[dotted.headers]``."""
    return "\n".join(_toml_lines(data, ()))


def _toml_lines(table: dict[str, Any], path: tuple[str, ...]) -> list[str]:
    plain = [(key, value) for key, value in table.items() if not isinstance(value, dict)]
    tables = [(key, value) for key, value in table.items() if isinstance(value, dict)]
    lines = []
    if plain and path:
        lines += ["", f"[{'.'.join(_toml_key(part) for part in path)}]"]
    lines += [
        f"{_toml_key(key)} = {_toml_value(value)}" for key, value in plain if value is not None
    ]
    for key, value in tables:
        lines += _toml_lines(value, (*path, key))
    return lines


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def prepare(config: ServerConfig) -> None:
    """Create the shared database's tables (and the demo data with ``demo``) before any node
    starts. Raises DatabaseError when the database cannot be opened."""
    store = open_store(config.database, persist_messages=config.behaviour().persists_messages())
    try:
        if config.demo:
            seed_demo(store)
    finally:
        store.close()


async def run_cluster(serve_args: Sequence[str], config: ServerConfig, nodes: int) -> None:
    """Run ``nodes`` node processes until SIGINT or SIGTERM (then stop them all and return).
    Raises ClusterError when a node does not start or dies on its own (the others are stopped
    first), BrokerError when the broker does not answer, DatabaseError for the database."""
    if config.broker is not None:
        await check_broker(config.broker)
    prepare(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    processes: dict[str, asyncio.subprocess.Process] = {}
    try:
        for index in range(1, nodes + 1):
            port = config.port + index - 1 if config.port else 0
            processes[node_name(index)] = await asyncio.create_subprocess_exec(
                *node_argv(serve_args, index, port),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
            )
        urls = [await _listening(name, process) for name, process in processes.items()]
        for name, url in zip(processes, urls, strict=True):
            print(f"{name} listening on {url}")
        print(target_text(urls, config.demo), end="", flush=True)
        await _until_stopped_or_dead(stop, processes)
    finally:
        await _stop_all(processes.values())


async def _listening(name: str, process: asyncio.subprocess.Process) -> str:
    """The URL template a node prints once it listens (``listening on URL``)."""
    assert process.stdout is not None
    try:
        async with asyncio.timeout(START_TIMEOUT):
            line = (await process.stdout.readline()).decode(errors="replace").strip()
    except TimeoutError:
        raise ClusterError(f"{name} did not listen within {START_TIMEOUT:g} s") from None
    if not line.startswith("listening on "):
        status = await process.wait()
        raise ClusterError(f"{name} did not start (exit status {status})")
    return line.removeprefix("listening on ")


async def _until_stopped_or_dead(
    stop: asyncio.Event, processes: dict[str, asyncio.subprocess.Process]
) -> None:
    """Return on SIGINT / SIGTERM; raise ClusterError naming the first node that died."""
    stopped = asyncio.create_task(stop.wait())
    exits = {asyncio.create_task(process.wait()): name for name, process in processes.items()}
    try:
        done, _ = await asyncio.wait([stopped, *exits], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (stopped, *exits):
            task.cancel()
    if stop.is_set():
        return
    name = next(name for task, name in exits.items() if task in done)
    status = processes[name].returncode
    raise ClusterError(f"{name} exited with status {status}; the other nodes were stopped")


async def _stop_all(processes: Iterable[asyncio.subprocess.Process]) -> None:
    """SIGTERM every node still running, then SIGKILL those that outlive STOP_GRACE."""
    running = [process for process in processes if process.returncode is None]
    for process in running:
        with suppress(ProcessLookupError):  # it exited a moment ago
            process.terminate()
    try:
        async with asyncio.timeout(STOP_GRACE):
            await asyncio.gather(*(process.wait() for process in running))
    except TimeoutError:
        for process in running:
            if process.returncode is None:
                with suppress(ProcessLookupError):
                    process.kill()
        await asyncio.gather(*(process.wait() for process in running))
