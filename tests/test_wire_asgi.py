"""The in-process wire (:mod:`harness.wire.asgi`) on its own, without a Chat: an
:class:`~harness.wire.asgi.AsgiSocket` opened from a :class:`~harness.wire.plan.Plan` on the
applications of tests/asgi_apps.py, and how each way a connection ends reaches the harness
(:class:`~harness.wire.closed.Closed`, never a library's exception).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from harness.core.session import Refusal
from harness.target import Target, parse
from harness.wire import apphost
from harness.wire.asgi import AsgiSocket, open_asgi
from harness.wire.closed import Closed, TooBig
from harness.wire.plan import Plan
from reference_server.demo import demo_target_dict
from tests import asgi_apps

URL = "ws://testserver/ws/chat/alice/general?room=1"
MAX_SIZE = 1024 * 1024


def _target(app: str) -> Target:
    data = demo_target_dict("ws://unused/ws/chat/{host}/{room}")
    del data["url"]
    data["asgi"] = {"app": f"tests.asgi_apps:{app}"}
    return parse(data, where="t.toml")


def _plan(**changes: Any) -> Plan:
    fields: dict[str, Any] = {
        "url": URL,
        "headers": {"X-Api-Key": "k-1"},
        "subprotocols": None,
        "origin": "https://app.example",
        "connect_timeout": 1.0,
        "close_timeout": 1.0,
        "max_size": MAX_SIZE,
        "receive_buffer": None,
    }
    fields.update(changes)
    return Plan(**fields)


@pytest.fixture(autouse=True)
def _stop_apps() -> Iterator[None]:
    yield
    apphost.stop_all()


async def _open(app: str, plan: Plan | None = None) -> AsgiSocket:
    opened = await open_asgi(_target(app), plan or _plan())
    assert not isinstance(opened, Refusal), opened
    sock, status = opened
    assert status == 101
    return sock


def test_a_socket_sends_a_text_receives_a_frame_and_closes() -> None:
    asgi_apps.DISCONNECTS.clear()

    async def go() -> tuple[dict[str, Any], Closed]:
        sock = await _open("recorder", _plan(subprotocols=["chat", "v2"]))
        await sock.send("hello")
        frame = await sock.recv()
        await sock.close()
        with pytest.raises(Closed) as closed:
            await sock.recv()
        with pytest.raises(Closed):
            await sock.send("after")
        for _ in range(100):
            if asgi_apps.DISCONNECTS:
                break
            await asyncio.sleep(0.01)
        assert isinstance(frame, str)
        return json.loads(frame), closed.value

    seen, closed = asyncio.run(go())
    assert seen["text"] == "hello"
    assert seen["path"] == "/ws/chat/alice/general"
    assert seen["query"] == "room=1"
    assert seen["headers"]["origin"] == "https://app.example"
    assert seen["headers"]["x-api-key"] == "k-1"
    assert seen["subprotocols"] == ["chat", "v2"]
    assert (closed.code, closed.reason, closed.too_big, closed.app_error) == (1000, "", None, None)
    assert [m["code"] for m in asgi_apps.DISCONNECTS] == [1000]


def test_the_applications_close_is_the_close_frame_received() -> None:
    async def go() -> Closed:
        sock = await _open("closing")
        await sock.send("x")
        with pytest.raises(Closed) as closed:
            await sock.recv()
        return closed.value

    closed = asyncio.run(go())
    assert (closed.code, closed.reason) == (4000, "bye")
    assert (closed.too_big, closed.app_error) == (None, None)
    assert closed.describe() == "close 4000 'bye'"


def test_a_frame_over_max_size_is_refused_with_too_big_and_no_close_received() -> None:
    async def go() -> Closed:
        sock = await _open("huge")
        with pytest.raises(Closed) as closed:
            await sock.recv()
        return closed.value

    closed = asyncio.run(go())
    assert closed.code is None
    assert closed.too_big == TooBig(size=2 * 1024 * 1024, max_size=MAX_SIZE, read=0)
    assert closed.app_error is None


def test_an_exception_in_the_application_is_a_close_1011_with_its_traceback() -> None:
    async def go() -> Closed:
        sock = await _open("raising_after_accept")
        await sock.send("x")
        with pytest.raises(Closed) as closed:
            await sock.recv()
        return closed.value

    closed = asyncio.run(go())
    assert (closed.code, closed.reason, closed.too_big) == (1011, "", None)
    assert closed.app_error is not None
    assert closed.app_error.startswith("the application raised:\n")
    assert "ValueError: the database said no to room=1" in closed.app_error
    assert "tests/asgi_apps.py" in closed.app_error
    assert "harness/wire/" not in closed.app_error
    assert isinstance(closed.__cause__, apphost.AppError)
    assert str(closed.__cause__) == closed.app_error


def test_a_vanished_client_is_a_lost_connection_and_a_1006_for_the_application() -> None:
    asgi_apps.DISCONNECTS.clear()

    async def go() -> Closed:
        sock = await _open("recorder")
        sock.transport.abort()
        with pytest.raises(Closed) as closed:
            await sock.recv()
        for _ in range(100):
            if asgi_apps.DISCONNECTS:
                break
            await asyncio.sleep(0.01)
        return closed.value

    closed = asyncio.run(go())
    assert closed.code is None
    assert closed.describe() == "connection lost (no close frame)"
    assert [m["code"] for m in asgi_apps.DISCONNECTS] == [1006]


@pytest.mark.parametrize(
    ("app", "status"), [("closing_before_accept", 403), ("denying", 401), ("raising", 500)]
)
def test_a_refusal_is_a_refusal_with_its_http_status(app: str, status: int) -> None:
    answer = asyncio.run(open_asgi(_target(app), _plan()))
    assert isinstance(answer, Refusal)
    assert (answer.style, answer.status) == ("http", status)
    if app == "raising":
        assert answer.detail.startswith("the application raised before answering the handshake")


def test_a_subprotocol_the_client_did_not_offer_is_a_refusal() -> None:
    answer = asyncio.run(open_asgi(_target("wrong_subprotocol"), _plan()))
    assert isinstance(answer, Refusal)
    assert answer.status is None
    assert "'never-offered', which the client did not offer" in answer.detail


def test_an_application_that_never_answers_times_out_at_connect_timeout() -> None:
    with pytest.raises(TimeoutError):
        asyncio.run(open_asgi(_target("silent"), _plan(connect_timeout=0.2)))


def test_receive_buffer_is_the_window_of_frames_held_unread() -> None:
    async def go() -> int:
        sock = await _open("flooding", _plan(receive_buffer=64 * 1024))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if sock.link.blocked:
                break
        held = sock.link.pending
        sock.transport.abort()
        return held

    held = asyncio.run(go())
    assert 64 * 1024 < held <= 64 * 1024 + 2000
