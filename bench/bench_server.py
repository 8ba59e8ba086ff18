"""Benchmark the reference server against a bare websockets broadcast server.

Run: ``python bench/bench_server.py`` (options: ``--connections``, ``--rounds``, ``--handshakes``).

Measures, with the clients in this process and each server in its own subprocess:

* handshake: time to open one connection, token check and participant lookup included
  (median over ``--handshakes``, target < 2 ms);
* fan-out: one message sent, stored and delivered to every one of ``--connections`` connections of
  one room (median over ``--rounds``, target < 60 ms);

and prints the same figures for a bare websockets server (no auth, no storage, the message
broadcast as received) with our figures as a ratio to it (aim < 1.5x).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import jwt
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, broadcast, serve

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reference_server.demo import DEMO_SECRET, demo_user_id  # noqa: E402

OPEN_BATCH = 50  # connections opened concurrently (below the listen backlog)
STARTUP_TIMEOUT = 20.0
ROUND_TIMEOUT = 10.0


@dataclass
class Figures:
    """Medians and 90th percentiles, in milliseconds."""

    handshake_median: float
    handshake_p90: float
    fanout_median: float
    fanout_p90: float


def raise_fd_limit(needed: int) -> None:
    """Two descriptors per connection on this machine when both ends live here; ask for plenty."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < needed:
        sys.exit(f"bench: the open-file limit {wanted} is below the {needed} needed")


def token(username: str) -> str:
    now = int(time.time())
    claims = {"sub": demo_user_id(username), "iat": now, "exp": now + 3600}
    return jwt.encode(claims, DEMO_SECRET, algorithm="HS256")


# -- the servers ----------------------------------------------------------------------------------


@asynccontextmanager
async def subprocess_server(argv: list[str]) -> AsyncIterator[str]:
    """Start a server subprocess; yield the URL template it prints."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            line = (await process.stdout.readline()).decode().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"server did not start: {line!r}")
        yield line.removeprefix("listening on ")
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(STARTUP_TIMEOUT):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def bare_server() -> None:
    """A websockets server that broadcasts every message to every connection, nothing more."""
    connections: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        connections.add(ws)
        try:
            async for message in ws:
                broadcast(connections, message)
        finally:
            connections.discard(ws)

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on ws://127.0.0.1:{port}/ws/chat/{{host}}/{{room}}", flush=True)
        await asyncio.Future()  # until terminated


# -- the measurements ----------------------------------------------------------------------------


def url_for(template: str, username: str) -> str:
    return template.format(host="alice", room="general") + f"?token={token(username)}"


async def handshake(url: str) -> float:
    start = time.perf_counter()
    ws = await connect(url, proxy=None, compression=None)
    elapsed = time.perf_counter() - start
    await ws.close()
    return elapsed


class Counter:
    """Counts deliveries of the current round's nonce across all receivers of one server."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.nonce = "\x00"
        self.count = 0
        self.done = asyncio.Event()

    def start(self, nonce: str) -> None:
        self.nonce, self.count = nonce, 0
        self.done.clear()

    async def receive(self, ws: ClientConnection) -> None:
        async for message in ws:
            if self.nonce in message:
                self.count += 1
                if self.count == self.expected:
                    self.done.set()


class Room:
    """``connections`` receivers and one sender, all in alice/general of one server."""

    def __init__(self, template: str, connections: int) -> None:
        self.template = template
        self.connections = connections
        self.counter = Counter(connections)
        self.sender: ClientConnection | None = None

    async def open(self, stack: AsyncExitStack) -> list[asyncio.Task[None]]:
        users = ["alice", "bob", "carol"]
        urls = [url_for(self.template, users[i % 3]) for i in range(self.connections)]
        receivers: list[ClientConnection] = []
        for first in range(0, len(urls), OPEN_BATCH):
            receivers += await asyncio.gather(
                *(
                    stack.enter_async_context(
                        connect(url, proxy=None, compression=None, max_queue=None, open_timeout=30)
                    )
                    for url in urls[first : first + OPEN_BATCH]
                )
            )
        self.sender = await stack.enter_async_context(
            connect(url_for(self.template, "bob"), proxy=None, compression=None, max_queue=None)
        )
        tasks = [asyncio.create_task(self.counter.receive(ws)) for ws in receivers]
        tasks.append(asyncio.create_task(Counter(1).receive(self.sender)))  # drain the echo
        return tasks

    async def round(self) -> float:
        assert self.sender is not None
        nonce = f"bench-{uuid.uuid4().hex}"
        self.counter.start(nonce)
        start = time.perf_counter()
        await self.sender.send(json.dumps({"type": "text", "message": nonce}))
        async with asyncio.timeout(ROUND_TIMEOUT):
            await self.counter.done.wait()
        return time.perf_counter() - start


async def measure(args: argparse.Namespace, database: str) -> tuple[Figures, Figures]:
    """Both servers run at once and the rounds alternate, so both see the same machine noise."""
    ours_argv = [sys.executable, "-m", "reference_server", "serve", "--demo", "--db", database]
    ours_argv += ["--log-level", "WARNING"]
    bare_argv = [sys.executable, __file__, "--bare-server"]
    async with subprocess_server(ours_argv) as ours, subprocess_server(bare_argv) as bare:
        templates = (ours, bare)
        handshakes: tuple[list[float], list[float]] = ([], [])
        for _ in range(args.handshakes):
            for template, times in zip(templates, handshakes, strict=True):
                times.append(await handshake(url_for(template, "bob")))
        fanouts: tuple[list[float], list[float]] = ([], [])
        async with AsyncExitStack() as stack:
            rooms = [Room(template, args.connections) for template in templates]
            tasks = [task for room in rooms for task in await room.open(stack)]
            for round_number in range(args.rounds + 2):  # two warm-up rounds
                for room, times in zip(rooms, fanouts, strict=True):
                    elapsed = await room.round()
                    if round_number >= 2:
                        times.append(elapsed)
                    await asyncio.sleep(0.02)  # let the servers settle between rounds
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def figures(handshake_times: list[float], fanout_times: list[float]) -> Figures:
        def p90(values: list[float]) -> float:
            return statistics.quantiles(values, n=10)[-1] * 1000

        return Figures(
            statistics.median(handshake_times) * 1000,
            p90(handshake_times),
            statistics.median(fanout_times) * 1000,
            p90(fanout_times),
        )

    return figures(handshakes[0], fanouts[0]), figures(handshakes[1], fanouts[1])


def table(ours: Figures, bare: Figures, args: argparse.Namespace) -> str:
    rows = [
        ("metric (ms)", "reference", "bare", "ratio", "target"),
        (
            "handshake median",
            f"{ours.handshake_median:.2f}",
            f"{bare.handshake_median:.2f}",
            f"{ours.handshake_median / bare.handshake_median:.2f}x",
            "< 2 ms",
        ),
        (
            "handshake p90",
            f"{ours.handshake_p90:.2f}",
            f"{bare.handshake_p90:.2f}",
            f"{ours.handshake_p90 / bare.handshake_p90:.2f}x",
            "",
        ),
        (
            f"fan-out to {args.connections} median",
            f"{ours.fanout_median:.1f}",
            f"{bare.fanout_median:.1f}",
            f"{ours.fanout_median / bare.fanout_median:.2f}x",
            "< 60 ms, < 1.5x",
        ),
        (
            f"fan-out to {args.connections} p90",
            f"{ours.fanout_p90:.1f}",
            f"{bare.fanout_p90:.1f}",
            f"{ours.fanout_p90 / bare.fanout_p90:.2f}x",
            "",
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--handshakes", type=int, default=200)
    parser.add_argument("--bare-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_fd_limit(4 * args.connections + 256)
    if args.bare_server:
        asyncio.run(bare_server())
        return
    with tempfile.TemporaryDirectory() as tmp:
        ours, bare = asyncio.run(measure(args, os.path.join(tmp, "bench.sqlite3")))
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; clients in one process,"
        " each server in its own; rounds alternate between the servers"
    )
    print(table(ours, bare, args))


if __name__ == "__main__":
    main()
