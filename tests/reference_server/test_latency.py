"""``serve --latency LO-HI``: a processing delay per client frame, in order per connection.

Timing assertions are lower bounds only (the machine is shared); independence and ping answers
are asserted as orderings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable

import pytest
from refserver_support import client, is_error, is_new, run

from reference_server.cli import build_parser, main, serve_config
from reference_server.config import ConfigError, ServerConfig
from reference_server.demo import demo_config
from reference_server.runner import ServerThread
from reference_server.server import ChatServer
from reference_server.store import Store


def nonce(label: str = "m") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


def text(body: str) -> dict[str, str]:
    return {"type": "text", "message": body}


# -- the option and the setting -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("20-80", (20.0, 80.0)), ("50", (50.0, 50.0)), ("0", (0.0, 0.0)), ("2.5-7.5", (2.5, 7.5))],
)
def test_latency_option_gives_lo_and_hi(value: str, expected: tuple[float, float]) -> None:
    args = build_parser().parse_args(["serve", "--demo", "--latency", value])
    config = serve_config(args)
    assert config.latency_ms == expected
    assert config.latency_seed is None


def test_latency_seed_option_and_default() -> None:
    args = build_parser().parse_args(["serve", "--demo", "--latency", "5", "--latency-seed", "7"])
    assert serve_config(args).latency_seed == 7
    assert serve_config(build_parser().parse_args(["serve", "--demo"])).latency_ms is None


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("80-20", "LO must not exceed HI"),
        ("-5", "expected LO-HI or MS"),
        ("x", "expected LO-HI or MS"),
        ("20-", "expected LO-HI or MS"),
        ("20-80-90", "expected LO-HI or MS"),
        ("", "expected LO-HI or MS"),
    ],
)
def test_bad_latency_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], value: str, needle: str
) -> None:
    assert main(["serve", "--demo", "--latency", value]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "--latency" in lines[0]
    assert needle in lines[0]
    assert "Traceback" not in captured.err


def test_bad_latency_seed_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--demo", "--latency", "5", "--latency-seed", "x"]) == 2
    assert "--latency-seed" in capsys.readouterr().err


@pytest.mark.parametrize(
    "value", [(80, 20), (-5, 5), (5,), (1, 2, 3), ("5", "9"), (0, float("nan"))]
)
def test_config_refuses_bad_latency(value: object) -> None:
    with pytest.raises(ConfigError, match="latency_ms"):
        ServerConfig(latency_ms=value)  # type: ignore[arg-type]


def test_demo_config_takes_latency_as_floats() -> None:
    config = demo_config(database=":memory:", latency_ms=[20, 80], latency_seed=3)
    assert config.latency_ms == (20.0, 80.0)
    assert config.latency_seed == 3


def test_seeded_draws_repeat_and_stay_in_range() -> None:
    config = demo_config(database=":memory:", latency_ms=(20, 80), latency_seed=11)

    def draws() -> list[float]:
        store = Store(":memory:")
        try:
            server = ChatServer(config, store)
            return [server.latency_draw() for _ in range(50)]
        finally:
            store.close()

    first = draws()
    assert first == draws()
    assert all(0.020 <= d <= 0.080 for d in first)
    assert len(set(first)) > 1


# -- over sockets ---------------------------------------------------------------------------------


def test_frames_of_one_connection_are_handled_in_order_each_after_its_delay(
    make_server: Callable[..., ServerThread],
) -> None:
    srv = make_server(latency_ms=(100, 100))

    async def scenario() -> None:
        async with client(srv.url_template, "bob") as bob:
            bodies = [nonce(str(i)) for i in range(3)]
            sent = time.monotonic()
            for body in bodies:
                await bob.send(text(body))
            seen = await bob.until(lambda f: is_new(f, bodies[-1]))
            elapsed = time.monotonic() - sent
            news = [f["body"] for f in seen if isinstance(f, dict) and f.get("action") == "new"]
            assert news == bodies
            assert elapsed >= 0.29  # three 100 ms delays one after the other; no upper bound

    run(scenario())


def test_every_kind_of_client_frame_waits_its_turn(
    make_server: Callable[..., ServerThread],
) -> None:
    """Binary and malformed frames are delayed and answered in order too."""
    srv = make_server(latency_ms=(100, 100))

    async def scenario() -> None:
        async with client(srv.url_template, "bob") as bob:
            body = nonce()
            sent = time.monotonic()
            await bob.send(b"\x00\x01")
            await bob.send("not json")
            await bob.send(text(body))
            first, second, third = [await bob.recv() for _ in range(3)]
            elapsed = time.monotonic() - sent
            assert is_error(first) and is_error(second), (first, second)
            assert is_new(third, body)
            assert elapsed >= 0.29

    run(scenario())


def seed_drawing(config: ServerConfig, first: float, second: float) -> int:
    """A latency seed whose server draws at least ``first`` seconds, then at most ``second``."""
    store = Store(":memory:")
    try:
        for seed in range(10_000):
            server = ChatServer(dataclasses.replace(config, latency_seed=seed), store)
            if server.latency_draw() >= first and server.latency_draw() <= second:
                return seed
    finally:
        store.close()
    raise AssertionError("no such seed")


def test_connections_are_delayed_independently(
    make_server: Callable[..., ServerThread],
) -> None:
    """Bob's frame draws a long delay, then alice's (sent once bob's is in) a short one: alice's
    event comes first. Any server-wide serialisation (one queue, one lock) would put bob's first,
    whatever the machine's speed: an ordering, no time bound (the margin is about a second)."""
    config = demo_config(database=":memory:", latency_ms=(50, 1500))
    seed = seed_drawing(config, first=1.2, second=0.15)
    srv = make_server(latency_ms=config.latency_ms, latency_seed=seed)

    async def scenario() -> None:
        url = srv.url_template
        async with (
            client(url, "bob") as bob,
            client(url, "alice") as alice,
            client(url, "carol") as carol,
        ):
            slow, fast = nonce("bob"), nonce("alice")
            await bob.send(text(slow))
            await (await bob.ws.ping())  # bob's frame is in: its delay is drawn first
            await alice.send(text(fast))
            seen = await carol.until(lambda f: is_new(f, slow))
            assert any(is_new(f, fast) for f in seen), seen

    run(scenario())


def test_pings_are_answered_before_delayed_frames(
    make_server: Callable[..., ServerThread],
) -> None:
    srv = make_server(latency_ms=(300, 300))

    async def scenario() -> None:
        async with client(srv.url_template, "bob") as bob:
            bodies = [nonce(str(i)) for i in range(3)]
            for body in bodies:
                await bob.send(text(body))
            order: list[str] = []
            pong = await bob.ws.ping()

            async def events() -> None:
                for body in bodies:
                    await bob.expect(lambda f, body=body: is_new(f, body))
                    order.append(body)

            reader = asyncio.create_task(events())
            await pong
            order.append("pong")
            await reader
            assert order == ["pong", *bodies]

    run(scenario())


def test_stopping_does_not_wait_for_delayed_frames() -> None:
    """A queue of three 20 s frames would keep a handler busy for a minute; stopping cuts the
    delays short (ServerThread.stop raises TimeoutError after 10 s otherwise)."""
    srv = ServerThread(demo_config(database=":memory:", latency_ms=(20_000, 20_000))).start()
    try:

        async def scenario() -> None:
            async with client(srv.url_template, "bob") as bob:
                for i in range(3):
                    await bob.send(text(nonce(str(i))))
                await asyncio.sleep(0.2)
                await asyncio.to_thread(srv.stop)

        run(scenario())
    finally:
        srv.stop()
    srv.raise_errors()
