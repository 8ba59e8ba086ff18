"""Real-world habits of a conformant server, each a setting off by default: heartbeat, idle
close, rate limit, history and presence frames, fragments, compression, refusal codes per
cause, an audience; the twin room of the demo data and the two faults that go with them.

Every server listens on a free port of 127.0.0.1; timing assertions leave the machine slack
(lower bounds where a habit must not act early, TIMEOUT where it must act at all).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from refserver_support import (
    TIMEOUT,
    Client,
    client,
    is_error,
    is_new,
    lagging_reader,
    make_token,
    refusal,
    run,
)
from websockets.exceptions import ConnectionClosed

import reference_server.server as server_module
from reference_server.cli import build_parser, main, serve_config
from reference_server.config import ConfigError, ServerConfig
from reference_server.demo import (
    DEMO_ROOMS,
    DEMO_TWIN_HOST,
    demo_config,
    demo_room_id,
    demo_user_id,
    seed_demo,
)
from reference_server.framing import pieces
from reference_server.runner import ServerThread
from reference_server.server import serve
from reference_server.store import Store, open_store

RATE_ERROR = "Rate limit exceeded. Slow down."
NEW_EVENT_KEYS = {
    "type", "action", "id", "user", "user_id", "body", "created", "edited", "updated",
    "userAvatar",
}  # fmt: skip


def nonce(label: str = "m") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


def text(body: str) -> dict[str, str]:
    return {"type": "text", "message": body}


async def closed_by(conn: Client, timeout: float = TIMEOUT) -> tuple[int, str]:
    """Read until the server closes ``conn``: the close code and reason it sent."""
    with pytest.raises(ConnectionClosed) as info:
        await conn.until(lambda f: False, timeout)
    rcvd = info.value.rcvd
    assert rcvd is not None, info.value
    return int(rcvd.code), rcvd.reason


# -- the settings and their options ---------------------------------------------------------------


def test_every_habit_is_off_by_default() -> None:
    config = ServerConfig()
    assert (config.ping_interval, config.ping_timeout, config.idle_timeout) == (None,) * 3
    assert (config.rate_limit, config.history, config.refusal_close_codes) == (None,) * 3
    assert (config.presence, config.fragment, config.compression) == (False,) * 3
    assert config.audience is None
    assert config.rate_limit_error == RATE_ERROR


def test_serve_options_give_the_settings() -> None:
    argv = [
        "serve", "--demo", "--ping-interval", "0.2", "--ping-timeout", "2", "--idle-timeout",
        "30", "--rate-limit", "5", "--rate-limit-error", "Too fast.", "--history", "10",
        "--presence", "--fragment", "--compression", "--refusal", "close", "--refusal-codes",
        "4401,4403,4404", "--audience", "chat",
    ]  # fmt: skip
    config = serve_config(build_parser().parse_args(argv))
    assert (config.ping_interval, config.ping_timeout, config.idle_timeout) == (0.2, 2.0, 30.0)
    assert (config.rate_limit, config.rate_limit_error, config.history) == (5, "Too fast.", 10)
    assert (config.presence, config.fragment, config.compression) == (True, True, True)
    assert config.refusal_close_codes == (4401, 4403, 4404)
    assert config.audience == "chat"
    plain = serve_config(build_parser().parse_args(["serve", "--demo"]))
    assert plain == demo_config(database="edusphere.sqlite3")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--ping-interval", "0"], "ping_interval"),
        (["--ping-timeout", "-1"], "ping_timeout"),
        (["--idle-timeout", "inf"], "idle_timeout"),
        (["--ping-interval", "x"], "--ping-interval"),
        (["--rate-limit", "0"], "rate_limit"),
        (["--rate-limit", "2.5"], "--rate-limit"),
        (["--rate-limit-error", ""], "rate_limit_error"),
        (["--history", "0"], "history"),
        (["--refusal-codes", "4401,4403"], "--refusal-codes"),
        (["--refusal-codes", "4401,4403,x"], "--refusal-codes"),
        (["--refusal-codes", "4401,1000,4404"], "refusal_close_codes"),
        (["--audience", ""], "audience"),
    ],
)
def test_bad_habit_options_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    assert main(["serve", "--demo", *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert needle in lines[0]
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"ping_interval": 0}, "ping_interval"),
        ({"ping_timeout": float("nan")}, "ping_timeout"),
        ({"idle_timeout": True}, "idle_timeout"),
        ({"rate_limit": 0}, "rate_limit"),
        ({"rate_limit": 1.5}, "rate_limit"),
        ({"rate_limit_error": ""}, "rate_limit_error"),
        ({"history": -1}, "history"),
        ({"presence": 1}, "presence"),
        ({"refusal_close_codes": (4401, 4403)}, "refusal_close_codes"),
        ({"refusal_close_codes": (4401, 4403, 999)}, "refusal_close_codes"),
        ({"refusal_close_codes": (4401, True, 4404)}, "refusal_close_codes"),
        ({"audience": ""}, "audience"),
    ],
)
def test_bad_habit_settings_are_one_line_config_errors(
    settings: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ConfigError) as info:
        ServerConfig(**settings)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_refusal_close_codes_accept_a_list() -> None:
    assert ServerConfig(refusal_close_codes=[4401, 1008, 4404]).refusal_close_codes == (  # type: ignore[arg-type]
        4401,
        1008,
        4404,
    )


def test_pieces_cut_at_characters_into_at_most_three() -> None:
    assert pieces("abcdefg") == ["abc", "de", "fg"]
    assert pieces("ab") == ["a", "b"]
    assert pieces("a") == ["a"]
    assert pieces("") == [""]
    assert "".join(pieces("\U0001f600é" * 5)) == "\U0001f600é" * 5


# -- heartbeat ------------------------------------------------------------------------------------


def _recorded_serve_options(
    monkeypatch: pytest.MonkeyPatch, config: ServerConfig
) -> dict[str, Any]:
    """The keyword arguments ChatServer.start gives websockets' serve for ``config``."""
    seen: dict[str, Any] = {}
    real = server_module.ws_serve

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(server_module, "ws_serve", recording)

    async def scenario() -> None:
        async with serve(config):
            pass

    run(scenario())
    return seen


def test_unset_heartbeat_and_compression_keep_websockets_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options = _recorded_serve_options(monkeypatch, demo_config(database=":memory:"))
    assert "ping_interval" not in options
    assert "ping_timeout" not in options
    assert options["compression"] is None


def test_set_heartbeat_and_compression_reach_websockets(monkeypatch: pytest.MonkeyPatch) -> None:
    config = demo_config(database=":memory:", ping_interval=0.2, ping_timeout=2.0, compression=True)
    options = _recorded_serve_options(monkeypatch, config)
    # The server's own heartbeat replaces websockets' keepalive (which starts a pong's clock
    # only once its ping is written: never, behind a reader's full buffer).
    assert options["ping_interval"] is None
    assert options["compression"] == "deflate"


def test_heartbeat_fails_a_client_that_stops_reading_and_keeps_one_that_reads(
    make_server: Callable[..., ServerThread],
) -> None:
    """Pings every 0.2 s; a pong 2 s late ends the connection without a close frame (as
    aiohttp's heartbeat: a close frame would queue behind what the client does not read)."""
    srv = make_server(ping_interval=0.2, ping_timeout=2.0)

    async def scenario() -> None:
        url = srv.url_template
        async with client(url, "bob") as deaf, client(url, "carol") as reader:
            deaf.ws.transport.pause_reading()
            await asyncio.sleep(0.2 + 2.0 + 0.6)  # its first ping's pong is 2 s late by now
            body = nonce()
            await reader.say(body)  # 14 pings later, the reading client is served
            deaf.ws.transport.resume_reading()
            with pytest.raises(ConnectionClosed) as info:
                await deaf.until(lambda f: False, TIMEOUT)
            assert info.value.rcvd is None, info.value
            await reader.say(nonce())

    run(scenario())


# -- idle close -----------------------------------------------------------------------------------


def test_idle_timeout_closes_with_1001_only_once_traffic_stops(
    make_server: Callable[..., ServerThread],
) -> None:
    """Bob sends every 0.15 s for more than twice the timeout, carol only receives his events:
    both stay open; once nothing goes either way, both are closed with 1001 "idle"."""
    srv = make_server(idle_timeout=0.5)

    async def scenario() -> None:
        url = srv.url_template
        async with client(url, "bob") as bob, client(url, "carol") as carol:
            for _ in range(8):
                await bob.say(nonce())
                await asyncio.sleep(0.15)
            quiet = time.monotonic()
            assert (await closed_by(bob)) == (1001, "idle")
            assert (await closed_by(carol)) == (1001, "idle")
            assert time.monotonic() - quiet >= 0.3  # not before (the timeout less the last hop)

    run(scenario())


def test_idle_timeout_is_off_by_default(make_server: Callable[..., ServerThread]) -> None:
    srv = make_server()

    async def scenario() -> None:
        async with client(srv.url_template, "bob") as bob:
            await asyncio.sleep(0.6)
            await bob.say(nonce())

    run(scenario())


# -- rate limit -----------------------------------------------------------------------------------


def test_rate_limit_refuses_frames_over_it_and_processes_none_of_them(
    make_server: Callable[..., ServerThread],
) -> None:
    """3 frames a second: the 4th to 6th (a malformed one among them) get the rate error and
    nothing else; frames refused half a second later do not count, so that once the first
    three are a second old three more are served."""
    srv = make_server(rate_limit=3)

    async def scenario() -> None:
        url = srv.url_template
        async with client(url, "bob") as bob, client(url, "carol") as carol:
            first, refused = [nonce("a") for _ in range(3)], [nonce("x") for _ in range(4)]
            for body in first:
                await bob.send(text(body))
            await bob.send("not json")  # refused before it is parsed
            for body in refused[:2]:
                await bob.send(text(body))
            answers = [await bob.recv() for _ in range(6)]
            accepted = time.monotonic()  # the first three were accepted before this
            assert [f.get("body") for f in answers[:3]] == first
            assert answers[3:] == [{"error": RATE_ERROR}] * 3
            await asyncio.sleep(0.5)
            for body in refused[2:]:  # the first three are still within the second
                await bob.send(text(body))
            assert [await bob.recv() for _ in range(2)] == [{"error": RATE_ERROR}] * 2
            await asyncio.sleep(max(0.0, accepted + 1.2 - time.monotonic()))
            later = [nonce("b") for _ in range(3)]
            for body in later:  # refused frames did not count: all three are served
                await bob.send(text(body))
            seen = await bob.until(lambda f: is_new(f, later[-1]))
            assert [f.get("body") for f in seen] == later
            room = await carol.until(lambda f: is_new(f, later[-1]))
            assert [f.get("body") for f in room] == [*first, *later]  # no error, no refused

    run(scenario())


def test_rate_limit_error_text_is_configurable(make_server: Callable[..., ServerThread]) -> None:
    srv = make_server(rate_limit=1, rate_limit_error="Too fast.")

    async def scenario() -> None:
        async with client(srv.url_template, "bob") as bob:
            body = nonce()
            await bob.send(text(body))
            await bob.send(text(nonce()))
            assert is_new(await bob.recv(), body)
            assert await bob.recv() == {"error": "Too fast."}

    run(scenario())


# -- history and presence -------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["z-micro", "z-milli", "offset-seconds"])
def test_history_holds_the_rooms_most_recent_messages_as_new_events(
    make_server: Callable[..., ServerThread], style: str
) -> None:
    """N = 2 of m1, m2 (deleted), m3 (edited): [m1, m3 as edited], shaped as their new events;
    the other room's message and the twin room's are not in it."""
    srv = make_server(history=2, timestamp_style=style)

    async def scenario() -> None:
        url = srv.url_template
        async with client(url, "bob") as bob:
            assert await bob.recv() == {"type": "history", "messages": []}
            m1, m2, m3 = [await bob.say(nonce()) for _ in range(3)]
            await bob.send({"type": "update", "messageId": m3["id"], "message": "edited"})
            update = await bob.expect(lambda f: f.get("action") == "update")
            await bob.send({"type": "delete", "messageId": m2["id"]})
            await bob.expect(lambda f: f.get("action") == "delete")
        async with client(url, "carol", "random") as other:
            await other.say(nonce())
        async with client(url, "carol", "general", DEMO_TWIN_HOST) as twin:
            await twin.say(nonce())
        async with client(url, "carol") as carol:
            history = await carol.recv()
            assert history["type"] == "history"
            assert all(set(m) == NEW_EVENT_KEYS for m in history["messages"])
            edited = {**m3, "body": "edited", "edited": True, "updated": update["updated"]}
            assert history == {"type": "history", "messages": [m1, edited]}

    run(scenario())


def test_no_history_frame_by_default(server: ServerThread) -> None:
    async def scenario() -> None:
        async with client(server.url_template, "bob") as bob:
            body = nonce()
            await bob.send(text(body))
            assert is_new(await bob.recv(), body)

    run(scenario())


def test_presence_lists_the_room_and_tells_the_others_of_joins_and_leaves(
    make_server: Callable[..., ServerThread],
) -> None:
    srv = make_server(presence=True)

    def join(user: str) -> dict[str, str]:
        return {"type": "presence", "action": "join", "user": user}

    def leave(user: str) -> dict[str, str]:
        return {"type": "presence", "action": "leave", "user": user}

    async def scenario() -> None:
        url = srv.url_template
        async with (
            client(url, "carol", "random") as elsewhere,
            client(url, "carol", "general", DEMO_TWIN_HOST) as twin,
            client(url, "alice") as alice,
        ):
            assert await alice.recv() == {"type": "presence", "users": ["alice"]}
            async with client(url, "bob") as bob:
                assert await bob.recv() == {"type": "presence", "users": ["alice", "bob"]}
                assert await alice.recv() == join("bob")
                async with client(url, "bob") as again:  # one account twice: listed once
                    assert await again.recv() == {"type": "presence", "users": ["alice", "bob"]}
                    assert await alice.recv() == join("bob")
                    assert await bob.recv() == join("bob")
                assert await alice.recv() == leave("bob")
                assert await bob.recv() == leave("bob")
                [seen_bob, seen_alice] = await bob.sentinel(alice)
                assert [f.get("type") for f in seen_bob] == ["chat_message"]  # not its own join
                assert [f.get("type") for f in seen_alice] == ["chat_message"]
            assert await alice.recv() == leave("bob")
            for other in (elsewhere, twin):  # other rooms hear of no one
                [seen] = await other.sentinel()
                assert [f["type"] for f in seen] == ["presence", "chat_message"], seen

    run(scenario())


def test_history_then_presence_come_before_any_event_even_in_a_busy_room(
    make_server: Callable[..., ServerThread],
) -> None:
    """A flood of events while connections join: each new connection's first frames are its
    history and its presence, in that order."""
    srv = make_server(history=3, presence=True)

    async def scenario() -> None:
        url = srv.url_template
        async with client(url, "alice") as flooder:
            stop = asyncio.Event()

            async def flood() -> None:
                while not stop.is_set():
                    await flooder.send(text(nonce("flood")))
                    await asyncio.sleep(0.001)

            task = asyncio.create_task(flood())
            try:
                for _ in range(8):
                    async with client(url, "carol") as carol:
                        first, second = await carol.recv(), await carol.recv()
                        assert first["type"] == "history", first
                        assert len(first["messages"]) <= 3
                        assert second["type"] == "presence" and "users" in second, second
            finally:
                stop.set()
                await task

    run(scenario())


# -- fragments and compression --------------------------------------------------------------------


async def fragments(conn: Client) -> list[str]:
    """The fragments of the next message, as they arrived."""
    async with asyncio.timeout(TIMEOUT):
        return [str(piece) async for piece in conn.ws.recv_streaming()]


@pytest.mark.parametrize("fragment", [True, False])
def test_fragment_sends_every_server_message_in_fragments(
    make_server: Callable[..., ServerThread], fragment: bool
) -> None:
    srv = make_server(fragment=fragment, history=1, presence=True)

    async def scenario() -> list[int]:
        counts = []
        async with client(srv.url_template, "bob") as bob:
            for kind in ("history", "presence"):
                parts = await fragments(bob)
                assert json.loads("".join(parts))["type"] == kind
                counts.append(len(parts))
            body = nonce()
            await bob.send(text(body))
            parts = await fragments(bob)
            assert is_new(json.loads("".join(parts)), body)
            counts.append(len(parts))
            await bob.send("not json")
            parts = await fragments(bob)
            assert json.loads("".join(parts)) == {"error": "Invalid JSON."}
            counts.append(len(parts))
        return counts

    counts = run(scenario())
    assert counts == ([3] * 4 if fragment else [1] * 4)


def test_fragmented_events_still_reach_the_others_while_a_reader_lags(
    make_server: Callable[..., ServerThread],
) -> None:
    """A reader that stops reading with ~2 MB of fragmented events sent to its room: the
    sender's own echoes keep coming meanwhile, and the reader gets every event once it reads
    again (LOAD-002, RECON-002 with fragments)."""
    srv = make_server(fragment=True)
    url = srv.url_template
    sent, got = run(lagging_reader(url, url), 20 * TIMEOUT)
    assert got == sent


def test_compression_negotiates_permessage_deflate(
    make_server: Callable[..., ServerThread],
) -> None:
    srv = make_server(compression=True)
    plain = make_server()

    async def extensions(srv: ServerThread) -> list[str]:
        async with client(srv.url_template, "bob") as bob:
            await bob.say(nonce() + "x" * 400)
            return [extension.name for extension in bob.ws.protocol.extensions]

    assert run(extensions(srv)) == ["permessage-deflate"]
    assert run(extensions(plain)) == []


# -- refusal codes and audience -------------------------------------------------------------------


def test_refusal_close_codes_depend_on_the_cause(make_server: Callable[..., ServerThread]) -> None:
    srv = make_server(refusal="close", refusal_close_codes=(4401, 4403, 4404))
    url = srv.url_template
    unknown = make_token(claims={"sub": demo_user_id("nobody"), "exp": int(time.time()) + 60})
    cases = {
        "no token": client(url, token="", transport="none"),
        "bad token": client(url, token="garbage"),
        "expired": client(url, token=make_token("bob", lifetime=-60)),
        "unknown user": client(url, token=unknown),
        "not a participant": client(url, "dave"),
        "no such room": client(url, "bob", "no-such-room"),
        "no such host": client(url, "bob", "random", DEMO_TWIN_HOST),
        "admitted": client(url, "bob"),
    }
    outcomes = {name: run(refusal(connecting)) for name, connecting in cases.items()}
    assert outcomes == {
        "no token": "close 4401",
        "bad token": "close 4401",
        "expired": "close 4401",
        "unknown user": "close 4401",
        "not a participant": "close 4403",
        "no such room": "close 4404",
        "no such host": "close 4404",
        "admitted": "open",
    }


def test_one_refusal_close_code_for_every_cause_by_default(
    make_server: Callable[..., ServerThread],
) -> None:
    srv = make_server(refusal="close", refusal_close_code=4000)
    url = srv.url_template
    for connecting in (client(url, token="garbage"), client(url, "dave"), client(url, room="x")):
        assert run(refusal(connecting)) == "close 4000"


def _aud_token(audience: Any = None, *, lifetime: int = 3600, **options: Any) -> str:
    claims: dict[str, Any] = {"sub": demo_user_id("bob"), "exp": int(time.time()) + lifetime}
    if audience is not None:
        claims["aud"] = audience
    return make_token(claims=claims, **options)


def test_audience_is_required_and_must_match(make_server: Callable[..., ServerThread]) -> None:
    srv = make_server(audience="chat")
    url = srv.url_template
    for token, outcome in [
        (_aud_token("chat"), "open"),
        (_aud_token(["other", "chat"]), "open"),
        (_aud_token(), "http 403"),
        (_aud_token("other"), "http 403"),
        (_aud_token("chat", secret="x" * 64), "http 403"),
    ]:
        assert run(refusal(client(url, token=token))) == outcome, jwt.decode(
            token, options={"verify_signature": False}
        )
    plain = make_server()  # without an audience, aud is not looked at
    assert run(refusal(client(plain.url_template, token=_aud_token("anything")))) == "open"


@pytest.mark.parametrize(
    ("fault", "broken"),
    [
        ("accept-expired", {"lifetime": -60}),
        ("skip-signature", {"secret": "y" * 64}),
        ("accept-alg-none", {"secret": None, "algorithm": "none"}),
    ],
)
def test_token_faults_still_break_their_check_with_an_audience(
    make_server: Callable[..., ServerThread], fault: str, broken: dict[str, Any]
) -> None:
    """Each fault still lets its broken token in when it names the audience, and the audience is
    still checked."""
    srv = make_server(audience="chat", faults=frozenset({fault}))
    url = srv.url_template
    assert run(refusal(client(url, token=_aud_token("chat", **broken)))) == "open"
    assert run(refusal(client(url, token=_aud_token("other", **broken)))) == "http 403"
    assert run(refusal(client(url, token=_aud_token(None, **broken)))) == "http 403"


# -- the twin room of the demo data ---------------------------------------------------------------


def test_the_twin_room_is_another_hosts_room_of_the_main_slug(server: ServerThread) -> None:
    """erin/general: bob and carol take part, dave does not; it is not alice/general."""
    url = server.url_template
    main_slug = DEMO_ROOMS[0]

    async def scenario() -> None:
        assert await refusal(client(url, "bob", main_slug, DEMO_TWIN_HOST)) == "open"
        assert await refusal(client(url, "dave", main_slug, DEMO_TWIN_HOST)) == "http 403"
        async with (
            client(url, "bob", main_slug, DEMO_TWIN_HOST) as twin,
            client(url, "carol", main_slug) as main_room,
        ):
            created = await main_room.say(nonce())
            await main_room.send({"type": "update", "messageId": created["id"], "message": "e"})
            await main_room.expect(lambda f: f.get("action") == "update")
            await main_room.send({"type": "delete", "messageId": created["id"]})
            await main_room.expect(lambda f: f.get("action") == "delete")
            [seen_twin] = await twin.sentinel()
            assert len(seen_twin) == 1, seen_twin  # its own sentinel only
            await twin.send({"type": "delete", "messageId": created["id"]})  # not its message
            assert await twin.error() == {"error": "Message not found."}

    run(scenario())


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        database = str(tmp_path / "db.sqlite3")
    else:
        database = request.getfixturevalue("postgres_url")
    opened = open_store(database)
    try:
        yield opened
    finally:
        opened.close()


def test_seeding_twice_keeps_two_rooms_of_one_slug_under_two_hosts(store: Store) -> None:
    seed_demo(store)
    seed_demo(store)
    main_slug = DEMO_ROOMS[0]
    main, twin = store.room("alice", main_slug), store.room(DEMO_TWIN_HOST, main_slug)
    assert main is not None and twin is not None
    assert main.id == demo_room_id(main_slug) != twin.id == demo_room_id(main_slug, "erin")
    assert twin.host_id == demo_user_id("erin")
    assert store.participants(twin.id) == ["bob", "carol", "erin"]
    assert store.participants(main.id) == ["alice", "bob", "carol"]
    assert store.same_slug_room_ids(main.id) == sorted([main.id, twin.id])
    assert twin.id not in store.sibling_room_ids(main.id)
    erin = store.user("username", "erin")
    assert erin is not None and (erin.email, erin.avatar) == ("erin@example.test", None)


def test_recent_messages_are_the_last_n_oldest_first(store: Store) -> None:
    from reference_server.store import Message

    seed_demo(store)
    room = demo_room_id(DEMO_ROOMS[0])
    bob = demo_user_id("bob")
    stamp = "2026-01-01T00:00:0{}.000000Z"
    for i in range(5):
        store.add_message(
            Message(str(uuid.uuid4()), room, bob, f"b{i}", stamp.format(i), "", False)
        )
    store.add_message(
        Message(str(uuid.uuid4()), demo_room_id("random"), bob, "x", stamp.format(9), "", False)
    )
    assert [m.body for m in store.recent_messages(room, 3)] == ["b2", "b3", "b4"]
    assert [m.body for m in store.recent_messages(room, 10)] == [f"b{i}" for i in range(5)]


# -- the faults -----------------------------------------------------------------------------------


def test_history_leaks_other_room_sends_history_unasked_with_the_other_rooms(
    make_server: Callable[..., ServerThread],
) -> None:
    srv = make_server(faults=frozenset({"history-leaks-other-room"}))

    async def scenario() -> None:
        url = srv.url_template
        async with client(url, "carol", "random") as other:
            assert (await other.recv())["type"] == "history"
            leaked = (await other.say(nonce()))["body"]
        async with client(url, "carol", "general", DEMO_TWIN_HOST) as twin:
            await twin.say(nonce())  # another host's room: not the host's, not in it
        async with client(url, "bob") as bob:
            for _ in range(24):
                await bob.say(nonce())
        async with client(url, "bob") as bob:
            history = await bob.recv()
            bodies = [m["body"] for m in history["messages"]]
            assert len(bodies) == 20  # the fault's default, though history is unset
            assert leaked not in bodies  # the 20 most recent of both rooms: general's
        async with client(url, "carol", "random") as other:
            await other.say(nonce())
        async with client(url, "bob") as bob:
            history = await bob.recv()
            assert history["messages"][-1]["user"] == "carol"  # random's, in general's history

    run(scenario())


def test_rooms_by_slug_mixes_the_rooms_of_one_slug(
    make_server: Callable[..., ServerThread],
) -> None:
    srv = make_server(faults=frozenset({"rooms-by-slug"}))

    async def scenario() -> None:
        url = srv.url_template
        async with (
            client(url, "bob", "general", DEMO_TWIN_HOST) as twin,
            client(url, "carol", "general") as main_room,
            client(url, "carol", "random") as other,
        ):
            created = await main_room.say(nonce())
            await twin.expect(lambda f: is_new(f, created["body"]))
            await main_room.send({"type": "update", "messageId": created["id"], "message": "e"})
            await twin.expect(lambda f: f.get("action") == "update" and f["id"] == created["id"])
            back = await twin.say(nonce())
            await main_room.expect(lambda f: is_new(f, back["body"]))
            [seen_other] = await other.sentinel()
            assert len(seen_other) == 1, seen_other  # another slug: untouched

    run(scenario())


def test_rooms_by_slug_mixes_them_across_the_nodes_of_a_cluster(
    tmp_path: Path, redis_url: str
) -> None:
    database = str(tmp_path / "cluster.sqlite3")
    configs = [
        demo_config(
            database=database,
            broker=redis_url,
            node_name=f"node-{k}",
            faults=frozenset({"rooms-by-slug"}),
        )
        for k in (1, 2)
    ]

    async def scenario(first: str, second: str) -> None:
        async with (
            client(first, "carol", "general") as main_room,
            client(second, "bob", "general", DEMO_TWIN_HOST) as twin,
        ):
            body = nonce()
            await main_room.say(body)
            await twin.expect(lambda f: is_new(f, body))

    with ServerThread(configs[0]) as one, ServerThread(configs[1]) as two:
        run(scenario(one.url_template, two.url_template))
    one.raise_errors()
    two.raise_errors()


def test_the_correct_server_keeps_the_twin_rooms_apart_on_a_cluster(
    tmp_path: Path, redis_url: str
) -> None:
    database = str(tmp_path / "cluster.sqlite3")
    configs = [
        demo_config(database=database, broker=redis_url, node_name=f"node-{k}") for k in (1, 2)
    ]

    async def scenario(first: str, second: str) -> None:
        async with (
            client(first, "carol", "general") as main_room,
            client(second, "bob", "general", DEMO_TWIN_HOST) as twin,
        ):
            await main_room.say(nonce())
            [seen] = await twin.sentinel()
            assert len(seen) == 1, seen

    with ServerThread(configs[0]) as one, ServerThread(configs[1]) as two:
        run(scenario(one.url_template, two.url_template))


def test_the_new_faults_need_no_habit_and_change_nothing_else(
    make_server: Callable[..., ServerThread],
) -> None:
    """rooms-by-slug sends no history; history-leaks-other-room mixes no events."""
    slug = make_server(faults=frozenset({"rooms-by-slug"}))
    leaks = make_server(faults=frozenset({"history-leaks-other-room"}))

    async def scenario() -> None:
        async with client(slug.url_template, "bob") as bob:
            body = nonce()
            await bob.send(text(body))
            assert is_new(await bob.recv(), body)
        url = leaks.url_template
        async with client(url, "bob", "general", DEMO_TWIN_HOST) as twin, client(url) as bob:
            await bob.say(nonce())
            [seen] = await twin.sentinel()
            assert [f.get("type") for f in seen] == ["history", "chat_message"], seen
            assert not is_error(seen[-1])

    run(scenario())
