"""In-process ASGI targets (``[asgi] app``, :mod:`harness.wire.apphost` and
:mod:`harness.wire.asgi`): what the application is handed, what the harness sees of what it
does, and the one-line errors of a bad one.

The applications are in tests/asgi_apps.py; the suites against a whole chat application, in
process and over the network, are in tests/test_asgi_alt.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from harness.core.failures import ConformanceTimeout, ResourceLimit
from harness.server.chat import Chat, Conn, Refusal
from harness.target import Target, TargetError, parse
from harness.wire import apphost
from reference_server.demo import demo_target_dict
from tests import asgi_apps
from tests.support import ROOT, assert_usage_error, cli, write_target


def _data(app: str, **changes: Any) -> dict[str, Any]:
    data = demo_target_dict("ws://unused/ws/chat/{host}/{room}")
    del data["url"]
    data["asgi"] = {"app": f"tests.asgi_apps:{app}"}
    data["connect_timeout"] = data["receive_timeout"] = 1.0
    data.update(changes)
    return data


def _target(app: str, **changes: Any) -> Target:
    return parse(_data(app, **changes), where="t.toml")


@pytest.fixture(autouse=True)
def _stop_apps() -> Any:
    yield
    apphost.stop_all()


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- what the application is handed ------------------------------------------------------


@pytest.mark.parametrize("transport", ["query", "cookie", "header", "subprotocol"])
def test_the_scope_carries_the_request_as_a_server_would(transport: str) -> None:
    target = _target(
        "recorder",
        auth={**_data("recorder")["auth"], "transport": transport},
        origin="https://app.example",
        headers={"X-Api-Key": "gateway-key-42"},
    )

    async def go() -> tuple[dict[str, Any], str]:
        chat = Chat(target)
        conn = await chat.connect("member")
        await conn.send_raw("hello")
        frame, _, _ = await conn.recv_judged(1.0)
        await chat.close_all()
        assert isinstance(frame, dict)
        return frame, "eyJ"  # the start of every JWT the target mints

    seen, token = _run(go())
    assert seen["path"] == "/ws/chat/alice/general"
    assert seen["scheme"] == "ws"
    assert seen["text"] == "hello"
    headers = seen["headers"]
    assert headers["host"] == "testserver"  # the default url's host
    assert headers["upgrade"] == "websocket"
    assert headers["origin"] == "https://app.example"
    assert headers["x-api-key"] == "gateway-key-42"
    name = target.auth.param_name.lower()
    token_places = {
        "query": token in seen["query"],
        "cookie": token in headers.get("cookie", ""),
        "header": token in headers.get(name, ""),
        "subprotocol": any(token in p for p in seen["subprotocols"])
        and headers["sec-websocket-protocol"] == ", ".join(seen["subprotocols"]),
    }
    assert token_places == {t: t == transport for t in token_places}


def test_the_lifespan_runs_once_and_its_state_reaches_every_connection() -> None:
    app = asgi_apps.with_lifespan
    before = (app.started, app.stopped)
    target = _target("with_lifespan")

    async def go() -> list[Any]:
        chat = Chat(target)
        states = []
        for _ in range(2):
            conn = await chat.connect("member")
            await conn.send_raw("x")
            frame, _, _ = await conn.recv_judged(1.0)
            assert isinstance(frame, dict)
            states.append(frame["state"])
        await chat.close_all()
        return states

    assert _run(go()) == [["pool"], ["pool"]]
    assert (app.started, app.stopped) == (before[0] + 1, before[1])
    apphost.stop_all()
    assert app.stopped == before[1] + 1


# --- what the harness sees ----------------------------------------------------------------


def _attempt(app: str) -> tuple[Conn | Refusal, Chat]:
    async def go() -> tuple[Conn | Refusal, Chat]:
        chat = Chat(_target(app))
        outcome = await chat.attempt(chat.token("member"), room="general", label="t")
        return outcome, chat

    return _run(go())


@pytest.mark.parametrize(
    ("app", "status"), [("closing_before_accept", 403), ("denying", 401), ("raising", 500)]
)
def test_a_refusal_is_an_http_status_as_an_asgi_server_answers(app: str, status: int) -> None:
    outcome, chat = _attempt(app)
    assert isinstance(outcome, Refusal)
    assert (outcome.style, outcome.status) == ("http", status)
    assert chat.traffic.refused == {f"HTTP {status}": 1}
    if app == "raising":  # the traceback is in the transcript
        texts = [e["text"] for e in chat.transcript.as_list()]
        assert any("RuntimeError: boom at the handshake" in t for t in texts), texts


def test_a_subprotocol_the_client_did_not_offer_fails_the_handshake() -> None:
    outcome, _ = _attempt("wrong_subprotocol")
    assert isinstance(outcome, Refusal)
    assert outcome.status is None
    assert "'never-offered', which the client did not offer" in outcome.detail


def test_an_exception_in_the_application_is_a_close_1011_with_its_traceback_redacted() -> None:
    async def go() -> tuple[Conn, Chat]:
        chat = Chat(_target("raising_after_accept"))
        conn = await chat.connect("member")
        await conn.send_raw("x")
        await conn.wait_closed(1.0)
        return conn, chat

    conn, chat = _run(go())
    assert conn.closed == (1011, "")
    texts = [e["text"] for e in chat.transcript.as_list()]
    assert "close 1011 ''" in texts
    (trace,) = [t for t in texts if t.startswith("the application raised:")]
    assert "ValueError: the database said no to token=<redacted>" in trace
    assert "tests/asgi_apps.py" in trace and "harness/wire/" not in trace
    assert chat.token("member") not in json.dumps(chat.transcript.as_list())


def test_after_its_close_the_application_receives_disconnect_and_cannot_send() -> None:
    asgi_apps.AFTER_CLOSE.clear()

    async def go() -> Conn:
        chat = Chat(_target("closing"))
        conn = await chat.connect("member")
        await conn.send_raw("x")
        await conn.send_raw("y")  # crosses the close: dropped, as a server would
        await conn.wait_closed(1.0)
        for _ in range(100):
            if len(asgi_apps.AFTER_CLOSE) == 2:
                break
            await asyncio.sleep(0.01)
        return conn

    conn = _run(go())
    assert conn.closed == (4000, "bye")
    assert asgi_apps.AFTER_CLOSE == [
        {"type": "websocket.disconnect", "code": 4000, "reason": "bye"},
        "ClientDisconnected",
    ]


@pytest.mark.parametrize(("how", "code"), [("close", 1000), ("abort", 1006)])
def test_the_application_hears_a_close_and_a_vanished_client(how: str, code: int) -> None:
    """A clean close is ``websocket.disconnect`` 1000; a TCP reset (``Conn.abort``), 1006."""
    asgi_apps.DISCONNECTS.clear()

    async def go() -> None:
        chat = Chat(_target("recorder"))
        conn = await chat.connect("member")
        if how == "close":
            await conn.close()
        else:
            conn.abort()
        for _ in range(100):
            if asgi_apps.DISCONNECTS:
                return
            await asyncio.sleep(0.01)

    _run(go())
    assert [m["code"] for m in asgi_apps.DISCONNECTS] == [code]


def test_an_application_that_never_answers_times_out_at_connect_timeout() -> None:
    async def go() -> float:
        chat = Chat(_target("silent"))
        start = time.monotonic()
        with pytest.raises(ConformanceTimeout, match=r"no answer within 1\.0 s"):
            await chat.connect("member")
        return time.monotonic() - start

    assert 0.9 < _run(go()) < 5


def test_a_frame_over_the_bound_is_refused_with_1009() -> None:
    async def go() -> tuple[Conn, ResourceLimit]:
        chat = Chat(_target("huge"))
        conn = await chat.connect("member")
        with pytest.raises(ResourceLimit) as raised:
            await conn.wait_closed(1.0)
        await chat.close_all()
        return conn, raised.value

    conn, limit = _run(go())
    assert "a frame of 2,097,152 bytes" in limit.actual
    assert conn.closed == (None, "frame too big: close 1009 sent by the harness")


def test_a_flooding_application_waits_for_the_reader_and_is_bounded() -> None:
    """The application's send waits once the client holds apphost.WINDOW bytes unread (as a TCP
    peer's buffers would make it): the harness's memory stays bounded, and the connection's
    frame bound ends the flood."""

    async def go() -> int:
        chat = Chat(_target("flooding", limits={"max_buffered_frames": 5000}))
        conn = await chat.connect("member")
        await asyncio.sleep(0.3)  # the application fills the window, then waits
        link = conn.ws.link  # type: ignore[attr-defined]
        held = link.pending
        with pytest.raises(ResourceLimit):
            await conn.wait_closed(5.0)
        await chat.close_all()
        return held

    held = _run(go())
    assert apphost.WINDOW < held <= apphost.WINDOW + 2000


# --- a bad [asgi] -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({"asgi": {"app": "no_colon"}}, "asgi.app: must be 'package.module:attribute'"),
        ({"asgi": {}}, "asgi.app: missing"),
        ({"nodes": ["ws://a/{room}", "ws://b/{room}"]}, "nodes: cannot be used with [asgi]"),
        ({"restart": {"command": "true"}}, "restart: cannot be used with [asgi]"),
    ],
)
def test_a_bad_asgi_section_is_one_line_naming_the_key(changes: dict[str, Any], line: str) -> None:
    with pytest.raises(TargetError, match=r"^t\.toml: ") as raised:
        parse({**_data("recorder"), **changes}, where="t.toml")
    assert line in str(raised.value)


def test_the_default_url_is_the_seeds_path_on_testserver() -> None:
    target = _target("recorder")
    assert target.url == "ws://testserver/ws/chat/{host}/{room}"
    assert target.label == "asgi:tests.asgi_apps:recorder"
    assert target.lacking == {"nodes", "network"}


@pytest.mark.parametrize(
    ("app", "line"),
    [
        ("tests.no_such_module:app", "cannot import 'tests.no_such_module': ModuleNotFoundError"),
        ("tests.asgi_apps:nothing", "'tests.asgi_apps' has no attribute 'nothing'"),
        ("tests.asgi_apps:NOT_CALLABLE", "is a dict, not an ASGI application"),
        ("tests.asgi_apps:wsgi", "not an ASGI 3 application: it takes (environ, start_response)"),
        ("tests.asgi_apps:WithLifespan", "is a class (WithLifespan), not an application"),
        ("tests.asgi_apps:failing_startup", "its lifespan startup failed: cannot reach the db"),
        ("tests.asgi_apps:raising", "raised while answering a handshake: RuntimeError: boom"),
    ],
)
def test_a_bad_application_stops_the_run_with_one_line(app: str, line: str, tmp_path: Path) -> None:
    data = _data("x")
    data["asgi"] = {"app": app}
    target = write_target(tmp_path / "t.toml", data)
    done = cli("run", "--target", str(target), "--report-dir", str(tmp_path / "r"), cwd=ROOT)
    error = assert_usage_error(done)
    assert "asgi.app" in error
    assert line.replace("the db", "the database") in error, error


def test_the_load_mode_refuses_an_in_process_target(tmp_path: Path) -> None:
    target = write_target(tmp_path / "t.toml", _data("recorder"))
    done = cli("load", "--target", str(target), "--duration", "1", cwd=ROOT)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("edusphere-conformance load: error: ")
    assert "asgi.app: the load mode needs a server on the network" in line
