"""The fault registry: well formed, tied to the catalogue, and each fault changes behaviour."""

from __future__ import annotations

import ast
import asyncio
import re
import time
import tomllib
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import jwt
import pytest
from refserver_support import TIMEOUT, Client, client, is_error, is_new, make_token, refusal, run

import reference_server
from reference_server.behaviour import Behaviour
from reference_server.config import ConfigError, ServerConfig
from reference_server.demo import DEMO_SECRET, DEMO_TWIN_HOST, demo_config, demo_user_id
from reference_server.faults import FAULTS, Fault, fault_table
from reference_server.runner import ServerThread

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {
    "no-echo", "errors-broadcast", "edit-others", "delete-others", "host-can-edit",
    "host-can-delete", "limit-low", "limit-high", "limit-utf16", "not-found-typo",
    "length-error-text", "edited-stays-false", "updated-missing", "id-not-uuid", "admit-outsider",
    "accept-expired", "accept-alg-none", "skip-signature", "unknown-user-accepted",
    "leak-to-other-room", "cross-room-edit", "cross-room-delete", "delete-not-broadcast",
    "one-connection-per-user", "fanout-stops-on-dead", "close-on-malformed",
    "accept-then-silence", "require-timestamp", "escape-body", "unknown-type-broadcast",
    "nonstring-body", "binary-close", "error-not-json", "created-no-tz", "userid-per-message",
    "fanout-cap", "reconnect-refused", "churn-leak", "no-persist", "owner-by-connection",
    "drop-when-busy", "duplicate-under-load", "reorder-under-load", "skip-lagging-reader",
    "fanout-one-node", "errors-cross-nodes", "rooms-mixed-across-nodes",
    "history-leaks-other-room", "rooms-by-slug",
}  # fmt: skip
#: Faults whose defect needs a load or a second node: each is shown, and shown absent from the
#: correct server, in the module named here rather than by a smoke scenario below.
SHOWN_ELSEWHERE = {
    "resurrect-edited": "test_sequence_faults.py",
    "undelete-on-reconnect": "test_sequence_faults.py",
    "update-follows-reconnect": "test_sequence_faults.py",
    "twin-misses-edits": "test_sequence_faults.py",
    "replay-after-vanish": "test_sequence_faults.py",
    "drop-when-busy": "test_load_faults.py",
    "duplicate-under-load": "test_load_faults.py",
    "reorder-under-load": "test_load_faults.py",
    "skip-lagging-reader": "test_load_faults.py",
    "fanout-one-node": "test_cluster.py",
    "errors-cross-nodes": "test_cluster.py",
    "rooms-mixed-across-nodes": "test_cluster.py",
}
QUIET = 0.3  # bounded wait used only where no sentinel can prove an absence


def _catalogue() -> dict[str, dict[str, Any]]:
    data = tomllib.loads((ROOT / "harness" / "catalogue.toml").read_text())
    return {entry["id"]: entry for entry in data["requirement"]}


def test_every_required_fault_is_registered() -> None:
    assert set(FAULTS) >= REQUIRED
    for name, fault in FAULTS.items():
        assert isinstance(fault, Fault)
        assert fault.name == name
        assert fault.description
        assert fault.requirements


def test_fault_requirements_are_server_requirements_of_the_catalogue() -> None:
    catalogue = _catalogue()
    for fault in FAULTS.values():
        for requirement in fault.requirements:
            assert requirement in catalogue, (fault.name, requirement)
            assert catalogue[requirement].get("scope", "server") == "server"
        levels = {catalogue[r]["level"] for r in fault.requirements}
        assert fault.level == ("MUST" if "MUST" in levels else "SHOULD"), fault.name


def test_each_fault_overrides_a_decision_of_the_correct_behaviour() -> None:
    seams = {name for name in vars(Behaviour) if not name.startswith("__")}
    for fault in FAULTS.values():
        assert issubclass(fault.behaviour, Behaviour), fault.name
        overrides = {name for name in vars(fault.behaviour) if name in seams}
        assert overrides, f"{fault.name} overrides no decision of Behaviour"


def test_no_module_but_the_registry_names_a_fault() -> None:
    """The server, parser and verifier ask the Behaviour; they never test fault names."""
    package = Path(reference_server.__file__).parent
    for path in package.glob("*.py"):
        if path.name == "faults.py":
            continue
        strings = {
            node.value
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
        assert not strings & set(FAULTS), (path.name, sorted(strings & set(FAULTS)))


def test_the_correct_server_has_the_base_behaviour() -> None:
    assert ServerConfig().behaviour is Behaviour
    assert demo_config().behaviour is Behaviour
    assert ServerConfig(faults={"no-echo"}).behaviour is FAULTS["no-echo"].behaviour


def test_faults_combine_each_keeping_its_override() -> None:
    config = ServerConfig(faults={"limit-low", "not-found-typo", "error-not-json"})
    behaviour = config.behaviour()
    assert behaviour.length_limit(500) == 499
    assert behaviour.not_found_error() == "Message not found"
    assert behaviour.error_frame("x") == "Error: x"
    assert ServerConfig(faults={"limit-low", "limit-high"}).behaviour().length_limit(500) == 500
    assert issubclass(config.behaviour, FAULTS["limit-low"].behaviour)


def test_fanout_faults_combine_as_the_string_checks_did() -> None:
    """no-echo filters the sender before fanout-cap counts; delete-not-broadcast still answers
    the sender of a delete."""
    conns = [object() for _ in range(8)]
    sender = conns[0]
    both = ServerConfig(faults={"fanout-cap", "no-echo"}).behaviour()
    assert both.fanout_targets(conns, sender, "new") == conns[1:6]
    quiet = ServerConfig(faults={"no-echo", "delete-not-broadcast"}).behaviour()
    assert quiet.fanout_targets(conns, sender, "delete") == [sender]
    assert quiet.fanout_targets(conns, sender, "new") == conns[1:]


def test_collateral_failures_are_other_server_requirements_with_reasons() -> None:
    catalogue = _catalogue()
    for fault in FAULTS.values():
        for requirement, reason in fault.collateral.items():
            assert requirement in catalogue, (fault.name, requirement)
            assert requirement not in fault.requirements, (fault.name, requirement)
            assert len(reason.split()) >= 5, (fault.name, requirement)


def test_fault_table_lists_every_fault() -> None:
    table = fault_table()
    for fault in FAULTS.values():
        assert re.search(rf"^{re.escape(fault.name)}\s+{fault.level}\s", table, re.MULTILINE)


def test_unknown_fault_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown fault: no-such-fault"):
        demo_config(faults=frozenset({"no-such-fault"}))


def test_a_misspelt_fault_is_a_config_error_naming_the_closest_faults() -> None:
    with pytest.raises(ConfigError) as info:
        ServerConfig(faults=frozenset({"no-ecko"}))
    message = str(info.value)
    assert message.startswith("unknown fault: no-ecko (did you mean no-echo")
    assert "\n" not in message
    with pytest.raises(ConfigError, match=r"limit-hi \(did you mean limit-high"):
        ServerConfig(faults={"limit-hi", "no-echo"})


# -- one smoke scenario per fault: the faulty behaviour is observable ---------------------------

Scenario = Callable[[ServerThread], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    def register(function: Scenario) -> Scenario:
        SCENARIOS[name] = function
        return function

    return register


def nonce() -> str:
    return f"n-{uuid.uuid4().hex[:12]}"


async def nothing_matches(conn: Client, predicate: Callable[[Any], bool]) -> bool:
    """True if no frame matching ``predicate`` arrives within QUIET seconds."""
    try:
        await conn.expect(predicate, QUIET)
    except TimeoutError:
        return True
    return False


@scenario("no-echo")
async def _no_echo(srv: ServerThread) -> None:
    async with client(srv.url_template, "bob") as bob, client(srv.url_template, "alice") as alice:
        body, sentinel = nonce(), nonce()
        await bob.send({"type": "text", "message": body})
        await alice.expect(lambda f: is_new(f, body))
        await alice.send({"type": "text", "message": sentinel})
        seen_bob = await bob.until(lambda f: is_new(f, sentinel))
        assert not any(is_new(f, body) for f in seen_bob)


@scenario("no-edit-echo")
async def _no_edit_echo(srv: ServerThread) -> None:
    async with client(srv.url_template, "bob") as bob, client(srv.url_template, "alice") as alice:
        created = await bob.say(nonce())  # its own new event comes back
        await bob.send({"type": "update", "messageId": created["id"], "message": nonce()})
        await alice.expect(lambda f: f.get("action") == "update" and f["id"] == created["id"])
        sentinel = nonce()
        await bob.send({"type": "text", "message": sentinel})
        seen_bob = await bob.until(lambda f: is_new(f, sentinel))
        assert not any(f.get("action") == "update" for f in seen_bob), seen_bob


@scenario("errors-broadcast")
async def _errors_broadcast(srv: ServerThread) -> None:
    async with client(srv.url_template, "bob") as bob, client(srv.url_template, "alice") as alice:
        await bob.send("not json")
        assert await alice.error() == {"error": "Invalid JSON."}


async def _other_changes(srv: ServerThread, who: str, kind: str) -> dict[str, Any]:
    async with client(srv.url_template, "bob") as bob, client(srv.url_template, who) as other:
        created = await bob.say(nonce())
        await other.send({"type": kind, "messageId": created["id"], "message": "x"})
        frame: dict[str, Any] = await other.expect(lambda f: "error" in f or f["action"] == kind)
        return frame


@scenario("edit-others")
async def _edit_others(srv: ServerThread) -> None:
    assert (await _other_changes(srv, "carol", "update"))["action"] == "update"


@scenario("delete-others")
async def _delete_others(srv: ServerThread) -> None:
    assert (await _other_changes(srv, "carol", "delete"))["action"] == "delete"


@scenario("host-can-edit")
async def _host_can_edit(srv: ServerThread) -> None:
    assert (await _other_changes(srv, "alice", "update"))["action"] == "update"
    assert "error" in await _other_changes(srv, "carol", "update")


@scenario("host-can-delete")
async def _host_can_delete(srv: ServerThread) -> None:
    assert (await _other_changes(srv, "alice", "delete"))["action"] == "delete"
    assert "error" in await _other_changes(srv, "carol", "delete")


async def _answer(srv: ServerThread, frame: Any, user: str = "bob") -> Any:
    async with client(srv.url_template, user) as conn:
        await conn.send(frame)
        return await conn.recv()


@scenario("limit-low")
async def _limit_low(srv: ServerThread) -> None:
    assert is_error(await _answer(srv, {"message": "a" * 500}))


@scenario("limit-high")
async def _limit_high(srv: ServerThread) -> None:
    assert (await _answer(srv, {"message": "a" * 501}))["action"] == "new"


@scenario("limit-utf16")
async def _limit_utf16(srv: ServerThread) -> None:
    assert is_error(await _answer(srv, {"message": "\U0001f600" * 500}))


@scenario("not-found-typo")
async def _not_found_typo(srv: ServerThread) -> None:
    frame = {"type": "delete", "messageId": str(uuid.uuid4())}
    assert await _answer(srv, frame) == {"error": "Message not found"}


@scenario("length-error-text")
async def _length_error_text(srv: ServerThread) -> None:
    assert await _answer(srv, {"message": "a" * 501}) == {"error": "Message exceeds 500 chars."}


async def _update_event(srv: ServerThread) -> dict[str, Any]:
    async with client(srv.url_template, "bob") as bob:
        created = await bob.say(nonce())
        await bob.send({"type": "update", "messageId": created["id"], "message": "x"})
        frame: dict[str, Any] = await bob.recv()
        return frame


@scenario("edited-stays-false")
async def _edited_stays_false(srv: ServerThread) -> None:
    assert (await _update_event(srv))["edited"] is False


@scenario("updated-missing")
async def _updated_missing(srv: ServerThread) -> None:
    assert "updated" not in await _update_event(srv)


@scenario("id-not-uuid")
async def _id_not_uuid(srv: ServerThread) -> None:
    async with client(srv.url_template, "bob") as bob:
        created = await bob.say(nonce())
        assert created["id"].isdigit()
        await bob.send({"type": "delete", "messageId": created["id"]})
        assert (await bob.recv())["id"] == created["id"]


@scenario("admit-outsider")
async def _admit_outsider(srv: ServerThread) -> None:
    assert await refusal(client(srv.url_template, "dave")) == "open"


@scenario("accept-expired")
async def _accept_expired(srv: ServerThread) -> None:
    token = make_token("bob", lifetime=-60)
    assert await refusal(client(srv.url_template, token=token)) == "open"


@scenario("accept-alg-none")
async def _accept_alg_none(srv: ServerThread) -> None:
    claims = {"sub": demo_user_id("bob"), "exp": int(time.time()) + 60}
    token = jwt.encode(claims, None, algorithm="none")
    assert await refusal(client(srv.url_template, token=token)) == "open"


@scenario("skip-signature")
async def _skip_signature(srv: ServerThread) -> None:
    token = make_token("bob", secret=DEMO_SECRET[::-1])
    assert await refusal(client(srv.url_template, token=token)) == "open"


@scenario("unknown-user-accepted")
async def _unknown_user_accepted(srv: ServerThread) -> None:
    claims = {"sub": str(uuid.uuid4()), "exp": int(time.time()) + 60}
    token = make_token(claims=claims)
    async with client(srv.url_template, token=token) as guest, client(srv.url_template) as bob:
        body = nonce()
        await bob.say(body)
        await guest.expect(lambda f: is_new(f, body))


@scenario("leak-to-other-room")
async def _leak_to_other_room(srv: ServerThread) -> None:
    url = srv.url_template
    async with client(url, "bob", "general") as bob, client(url, "carol", "random") as carol:
        body = nonce()
        await bob.say(body)
        await carol.expect(lambda f: is_new(f, body))


@scenario("history-leaks-other-room")
async def _history_leaks_other_room(srv: ServerThread) -> None:
    """The server sends no history (``history`` unset), yet a history frame comes first, with a
    message of the host's other room."""
    url = srv.url_template
    async with client(url, "carol", "random") as carol:
        body = nonce()
        await carol.say(body)
    async with client(url, "bob", "general") as bob:
        first = await bob.recv()
        assert first["type"] == "history"
        assert any(m["body"] == body for m in first["messages"]), first


@scenario("rooms-by-slug")
async def _rooms_by_slug(srv: ServerThread) -> None:
    """erin/general shares alice/general's slug: its connection gets alice/general's event."""
    url = srv.url_template
    async with (
        client(url, "bob", "general", DEMO_TWIN_HOST) as twin,
        client(url, "carol", "general") as carol,
    ):
        body = nonce()
        await carol.say(body)
        await twin.expect(lambda f: is_new(f, body))


async def _cross_room(srv: ServerThread, kind: str) -> None:
    url = srv.url_template
    async with client(url, "bob", "general") as general, client(url, "bob", "random") as other:
        created = await general.say(nonce())
        await other.send({"type": kind, "messageId": created["id"], "message": "hijack"})
        event = await general.expect(lambda f: f.get("action") == kind)
        assert event["id"] == created["id"]


@scenario("cross-room-edit")
async def _cross_room_edit(srv: ServerThread) -> None:
    await _cross_room(srv, "update")


@scenario("cross-room-delete")
async def _cross_room_delete(srv: ServerThread) -> None:
    await _cross_room(srv, "delete")


@scenario("delete-not-broadcast")
async def _delete_not_broadcast(srv: ServerThread) -> None:
    async with client(srv.url_template, "bob") as bob, client(srv.url_template, "alice") as alice:
        created = await bob.say(nonce())
        await bob.send({"type": "delete", "messageId": created["id"]})
        await bob.expect(lambda f: f.get("action") == "delete")
        [_, seen_alice] = await bob.sentinel(alice)
        assert not any(f.get("action") == "delete" for f in seen_alice)


@scenario("one-connection-per-user")
async def _one_connection_per_user(srv: ServerThread) -> None:
    url = srv.url_template
    async with client(url, "bob") as first, client(url, "bob") as second, client(url, "alice") as a:
        body = nonce()
        await a.say(body)
        await first.expect(lambda f: is_new(f, body))
        assert await nothing_matches(second, lambda f: is_new(f, body))


@scenario("fanout-stops-on-dead")
async def _fanout_stops_on_dead(srv: ServerThread) -> None:
    url = srv.url_template
    async with client(url, "bob") as ghost:
        ghost.ws.transport.abort()  # joins first, vanishes: the faulty registry keeps it
        async with client(url, "alice") as alice, client(url, "carol") as carol:
            body, after = nonce(), nonce()
            await alice.send({"type": "text", "message": body})
            assert await nothing_matches(carol, lambda f: is_new(f, body))
            await alice.say(after)  # the failed send dropped the ghost: fan-out works again
            await carol.expect(lambda f: is_new(f, after))


async def _closed_by(srv: ServerThread, frame: Any) -> int | None:
    async with client(srv.url_template, "bob") as bob:
        await bob.send(frame)
        try:
            await bob.until(lambda f: False)
        except Exception as exc:  # ConnectionClosed
            rcvd = getattr(exc, "rcvd", None)
            return None if rcvd is None else int(rcvd.code)
    return None


@scenario("close-on-malformed")
async def _close_on_malformed(srv: ServerThread) -> None:
    assert await _closed_by(srv, "not json") == 1003
    assert await _closed_by(srv, "[]") == 1003


@scenario("binary-close")
async def _binary_close(srv: ServerThread) -> None:
    assert await _closed_by(srv, b"\x00") == 1003


@scenario("accept-then-silence")
async def _accept_then_silence(srv: ServerThread) -> None:
    assert await refusal(client(srv.url_template, "dave"), timeout=QUIET) == "silent"
    assert await refusal(client(srv.url_template, token="garbage"), timeout=QUIET) == "silent"


@scenario("require-timestamp")
async def _require_timestamp(srv: ServerThread) -> None:
    assert is_error(await _answer(srv, {"type": "text", "message": "hi"}))


@scenario("escape-body")
async def _escape_body(srv: ServerThread) -> None:
    assert (await _answer(srv, {"message": "<b> & </b>"}))["body"] == "&lt;b&gt; &amp; &lt;/b&gt;"


@scenario("unknown-type-broadcast")
async def _unknown_type_broadcast(srv: ServerThread) -> None:
    assert (await _answer(srv, {"type": "shout", "message": "hi"}))["action"] == "new"


@scenario("nonstring-body")
async def _nonstring_body(srv: ServerThread) -> None:
    assert (await _answer(srv, {"type": "text", "message": 5}))["body"] == 5


@scenario("error-not-json")
async def _error_not_json(srv: ServerThread) -> None:
    assert await _answer(srv, "not json") == "Error: Invalid JSON."


@scenario("created-no-tz")
async def _created_no_tz(srv: ServerThread) -> None:
    created = (await _answer(srv, {"message": "hi"}))["created"]
    assert not created.endswith("Z")
    assert "+" not in created


@scenario("userid-per-message")
async def _userid_per_message(srv: ServerThread) -> None:
    async with client(srv.url_template, "bob") as bob:
        first, second = await bob.say(nonce()), await bob.say(nonce())
        assert first["user_id"] != second["user_id"]


@scenario("fanout-cap")
async def _fanout_cap(srv: ServerThread) -> None:
    async with AsyncExitStack() as stack:
        conns = [
            await stack.enter_async_context(client(srv.url_template, "carol")) for _ in "123456"
        ]
        body = nonce()
        await conns[0].say(body)
        assert await nothing_matches(conns[5], lambda f: is_new(f, body))


@scenario("reconnect-refused")
async def _reconnect_refused(srv: ServerThread) -> None:
    token = make_token("bob")
    async with client(srv.url_template, "bob", token=token) as dropped:
        dropped.ws.transport.abort()  # no close handshake: the server sees 1006
    assert await refusal(client(srv.url_template, "bob", token=token)) == "http 403"


@scenario("owner-by-connection")
async def _owner_by_connection(srv: ServerThread) -> None:
    async with client(srv.url_template, "bob") as first:
        created = await first.say(nonce())
    async with client(srv.url_template, "bob") as again:
        await again.send({"type": "delete", "messageId": created["id"]})
        assert is_error(await again.recv(), "You can only delete your own messages.")


@scenario("churn-leak")
async def _churn_leak(srv: ServerThread) -> None:
    for _ in range(50):
        async with client(srv.url_template, "carol"):
            pass
    assert await refusal(client(srv.url_template, "carol")) == "http 403"


async def _restart_loses(srv: ServerThread) -> None:
    async with client(srv.url_template, "bob") as bob:
        created = await bob.say(nonce())
    await asyncio.to_thread(srv.restart)
    frame = {"type": "delete", "messageId": created["id"]}
    assert await _answer(srv, frame) == {"error": "Message not found."}


SCENARIOS["no-persist"] = _restart_loses


def test_every_fault_has_a_smoke_scenario() -> None:
    assert set(SCENARIOS) | set(SHOWN_ELSEWHERE) == set(FAULTS)
    assert not set(SCENARIOS) & set(SHOWN_ELSEWHERE)
    for name, module in SHOWN_ELSEWHERE.items():
        assert f'"{name}"' in (Path(__file__).parent / module).read_text(), (name, module)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_fault_changes_behaviour(name: str, tmp_path: Path) -> None:
    config = demo_config(database=str(tmp_path / "db.sqlite3"), faults=frozenset({name}))
    with ServerThread(config) as srv:
        run(SCENARIOS[name](srv), timeout=4 * TIMEOUT)
    srv.raise_errors()


def test_smoke_scenarios_fail_on_a_correct_server(tmp_path: Path) -> None:
    """Each scenario above proves its fault: against a correct server every one fails.

    Each scenario gets its own server so that no scenario sees another's traffic.
    """

    async def outcome(name: str, srv: ServerThread) -> BaseException | None:
        try:
            async with asyncio.timeout(1.5):
                await SCENARIOS[name](srv)
        except Exception as exc:  # assertion, timeout, refusal, closed connection
            return exc
        return None

    async def run_all(servers: dict[str, ServerThread]) -> dict[str, BaseException | None]:
        results = await asyncio.gather(*(outcome(name, srv) for name, srv in servers.items()))
        return dict(zip(servers, results, strict=True))

    servers: dict[str, ServerThread] = {}
    try:
        for name in sorted(SCENARIOS):
            config = demo_config(database=str(tmp_path / f"{name}.sqlite3"))
            servers[name] = ServerThread(config).start()
        results = run(run_all(servers))
    finally:
        for srv in servers.values():
            srv.stop()
    assert sorted(name for name, exc in results.items() if exc is None) == []
    for srv in servers.values():
        srv.raise_errors()
