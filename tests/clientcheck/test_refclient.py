"""The reference client as a library, against small local servers (asyncio.run, short delays)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from reference_client import NotConnectedError, ReconnectingClient, State, main

Handler = Callable[[ServerConnection], Awaitable[None]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _with_server(
    handler: Handler,
    body: Callable[[str], Awaitable[None]],
    process_request: Callable[[ServerConnection, Request], Response | None] | None = None,
) -> None:
    async with serve(
        handler, "127.0.0.1", 0, process_request=process_request, ping_interval=None
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        await body(f"ws://127.0.0.1:{port}/ws/chat/alice/general")


def test_clean_close_ends_the_session_without_reconnecting() -> None:
    states: list[State] = []
    received: list[object] = []

    async def handler(ws: ServerConnection) -> None:
        received.append(json.loads(await ws.recv()))
        await ws.close(1000)

    async def body(url: str) -> None:
        client: ReconnectingClient

        async def hello(number: int) -> None:
            await client.send_text(f"hello {number}")

        client = ReconnectingClient(url, base_delay=0.05, on_state=states.append, on_open=hello)
        finish = await asyncio.wait_for(client.run(), 5)
        assert finish == "clean-close"
        assert client.connections_opened == 1

    asyncio.run(_with_server(handler, body))
    assert states == ["connected", "disconnected"]
    (frame,) = received
    assert isinstance(frame, dict)
    assert (frame["type"], frame["message"]) == ("text", "hello 0")
    assert "timestamp" in frame


def test_gives_up_after_max_attempts_when_nothing_listens() -> None:
    states: list[State] = []
    port = _free_port()  # nothing listens there any more

    async def body() -> None:
        client = ReconnectingClient(
            f"ws://127.0.0.1:{port}/ws/chat/alice/general",
            base_delay=0.01,
            max_attempts=3,
            on_state=states.append,
        )
        assert await asyncio.wait_for(client.run(), 5) == "gave-up"
        assert client.attempts == 3
        assert client.state == "error"

    asyncio.run(body())
    assert states == ["error"]


def test_reconnects_after_an_abort_and_resets_the_counter() -> None:
    opened: list[int] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        if len(opened) < 3:
            ws.transport.abort()
        else:
            await ws.close(1000)

    async def body(url: str) -> None:
        client: ReconnectingClient

        async def on_open(number: int) -> None:
            opened.append(number)
            assert client.attempts == 0  # reset as soon as the connection opened
            await client.send_text("hi")

        client = ReconnectingClient(url, base_delay=0.02, on_open=on_open)
        assert await asyncio.wait_for(client.run(), 5) == "clean-close"

    asyncio.run(_with_server(handler, body))
    assert opened == [0, 1, 2]


def test_close_stops_the_client_and_sends_1000() -> None:
    codes: list[int | None] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()
        codes.append(ws.close_code)

    async def body(url: str) -> None:
        client = ReconnectingClient(url, base_delay=0.02)
        task = asyncio.create_task(client.run())
        await client.wait_connected(timeout=5)
        assert client.state == "connected"
        await client.close()
        assert await asyncio.wait_for(task, 5) == "closed"
        with pytest.raises(NotConnectedError):
            await client.send_text("too late")

    asyncio.run(_with_server(handler, body))
    assert codes == [1000]


def test_the_token_travels_as_a_bearer_header_on_every_attempt() -> None:
    seen: list[str | None] = []
    tokens = iter(["token-one-aaaaaa", "token-two-bbbbbb"])

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        seen.append(request.headers.get("Authorization"))
        return None

    async def handler(ws: ServerConnection) -> None:
        if len(seen) == 1:
            ws.transport.abort()
        else:
            await ws.close(1000)

    async def body(url: str) -> None:
        client = ReconnectingClient(url, token_provider=lambda: next(tokens), base_delay=0.02)
        assert await asyncio.wait_for(client.run(), 5) == "clean-close"

    asyncio.run(_with_server(handler, body, process_request))
    assert seen == ["Bearer token-one-aaaaaa", "Bearer token-two-bbbbbb"]


def test_sending_before_connecting_raises() -> None:
    async def body() -> None:
        client = ReconnectingClient("ws://127.0.0.1:9/ws/chat/alice/general")
        with pytest.raises(NotConnectedError):
            await client.send_delete("123e4567-e89b-12d3-a456-426614174000")

    asyncio.run(body())


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="WebSocket URL"):
        ReconnectingClient("http://example.invalid/")
    with pytest.raises(ValueError, match="base_delay"):
        ReconnectingClient("ws://127.0.0.1:9/", base_delay=-1)


def test_command_line_needs_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([], environ={}) == 2
    assert "EDUSPHERE_WS_URL" in capsys.readouterr().err
    assert (
        main([], environ={"EDUSPHERE_WS_URL": "ws://x/", "EDUSPHERE_RECONNECT_DELAY_MS": "soon"})
        == 2
    )
    assert main(["--help"], environ={}) == 2
