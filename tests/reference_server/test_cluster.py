"""A cluster on a broker: nodes deliver each other's events, share a database, stop together.

The nodes of most tests run in threads of this process (ServerThread with ``broker``), sharing a
SQLite file and the session's Redis; the command line's cluster (``serve --nodes N``) runs in
processes (ClusterProcess).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import tomllib
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from refserver_support import TIMEOUT, client, is_error, is_new, run

from reference_server.broker import Publication
from reference_server.cli import main
from reference_server.cluster import TARGET_END, TARGET_START, target_text, toml_text
from reference_server.config import ConfigError, ServerConfig
from reference_server.demo import demo_config, demo_target_dict
from reference_server.runner import (
    ClusterProcess,
    MissingProgram,
    RedisServer,
    ServerThread,
    free_port,
)

TEMPLATE = "ws://127.0.0.1:1/ws/chat/{host}/{room}"


def nonce(label: str = "m") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


@contextmanager
def nodes(
    tmp_path: Path, broker: str, count: int = 2, faults: frozenset[str] = frozenset()
) -> Iterator[list[str]]:
    """``count`` demo nodes in threads on one SQLite file (in ``tmp_path``) and one broker:
    their URL templates."""
    tmp_path.mkdir(exist_ok=True)
    database = str(tmp_path / "cluster.sqlite3")
    with ExitStack() as stack:
        started = [
            stack.enter_context(
                ServerThread(
                    demo_config(
                        database=database, broker=broker, node_name=f"node-{k}", faults=faults
                    )
                )
            )
            for k in range(1, count + 1)
        ]
        yield [srv.url_template for srv in started]
        for srv in started:
            srv.raise_errors()


# -- the pieces ---------------------------------------------------------------------------------


def test_a_publication_round_trips_through_its_json() -> None:
    publication = Publication("room", '{"body":"é"}', "update", "node-1", "conn")
    assert Publication.decode(publication.encode().encode()) == publication


@pytest.mark.parametrize(
    "data",
    ["not json", "[]", '{"room": "r", "text": "t", "action": "new", "origin": "n"}',
     '{"room": "r", "text": "t", "action": "shout", "origin": "n", "sender": "s"}',
     '{"room": 1, "text": "t", "action": "new", "origin": "n", "sender": "s"}'],
)  # fmt: skip
def test_a_message_that_is_not_a_publication_is_refused(data: str) -> None:
    with pytest.raises(ValueError):
        Publication.decode(data)


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"broker": "http://127.0.0.1:6379"}, "got scheme 'http'"),
        ({"broker": "redis://"}, "names no host"),
        ({"broker": "redis://127.0.0.1:port"}, "port is not a number"),
        ({"node_name": ""}, "node_name"),
        ({"node_name": "node 1"}, "node_name"),
    ],
)
def test_broker_and_node_name_are_checked(settings: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as info:
        ServerConfig(**settings)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_a_broker_password_is_never_repeated_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        ServerConfig(broker="http://user:hunter2@127.0.0.1:6379")
    assert "hunter2" not in str(info.value)


def test_the_target_file_of_a_demo_cluster_is_the_demo_target_with_its_nodes() -> None:
    urls = [TEMPLATE, TEMPLATE.replace(":1/", ":2/")]
    text = target_text(urls, demo=True)
    assert text.startswith(TARGET_START + "\n")
    assert text.endswith(TARGET_END + "\n")
    assert tomllib.loads(text) == {"nodes": urls, **demo_target_dict(urls[0])}


def test_the_target_file_of_a_cluster_without_demo_names_the_nodes_and_what_to_add() -> None:
    text = target_text([TEMPLATE], demo=False)
    assert tomllib.loads(text) == {"url": TEMPLATE, "nodes": [TEMPLATE]}
    assert "[auth]" in text  # in the comment saying what to add


def test_toml_text_quotes_keys_and_strings_that_need_it() -> None:
    data = {"a b": 'say "hi"\n', "n": 1, "t": True, "sub": {"x": [1.5, "y"]}}
    assert tomllib.loads(toml_text(data)) == data


def test_redis_server_names_the_package_when_it_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("reference_server.runner.shutil.which", lambda name: None)
    with pytest.raises(MissingProgram, match="Debian package redis-server"):
        RedisServer().start()


# -- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--nodes", "2"], "nodes share rooms through a broker: add --broker redis://HOST:PORT"),
        (["--nodes", "2", "--broker", "redis://127.0.0.1:1", "--db", ":memory:"],
         "nodes must share a database"),
        (["--nodes", "0", "--broker", "redis://127.0.0.1:1"], "--nodes must be at least 1"),
        (["--nodes", "2", "--broker", "redis://127.0.0.1:1", "--node-name", "x"], "--node-name"),
        (["--nodes", "2", "--broker", "redis://127.0.0.1:1", "--port", "65535"], "no port"),
        (["--broker", "http://127.0.0.1:1"], "broker must be a redis://HOST:PORT"),
        (["--node-name", "a b"], "node_name"),
    ],
)  # fmt: skip
def test_bad_cluster_arguments_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], needle: str
) -> None:
    db = ["--db", str(tmp_path / "c.sqlite3")]
    assert main(["serve", "--demo", *db, *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err


@pytest.mark.parametrize("cluster", [False, True])
def test_an_unreachable_broker_exits_1_with_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cluster: bool,
) -> None:
    # The root logger's handler would outlive capsys's stream: no logging set-up here.
    monkeypatch.setattr("reference_server.cli.configure", lambda *args, **kwargs: None)
    broker = f"redis://:secret-pw@127.0.0.1:{free_port()}"
    argv = ["serve", "--demo", "--db", str(tmp_path / "c.sqlite3"), "--broker", broker]
    assert main([*argv, "--nodes", "2"] if cluster else argv) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "cannot reach the broker at 127.0.0.1:" in err
    assert "secret-pw" not in err
    assert "Traceback" not in err


def test_a_node_that_loses_its_broker_stops_with_status_1() -> None:
    async def scenario(broker: RedisServer) -> tuple[int, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reference_server", "serve", "--demo", "--db", ":memory:",
            "--broker", broker.url, "--log-level", "WARNING",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        assert process.stdout is not None and process.stderr is not None
        try:
            line = await process.stdout.readline()
            assert line.startswith(b"listening on ")
            await asyncio.to_thread(broker.stop)
            code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        return code, (await process.stderr.read()).decode()

    with RedisServer() as broker:
        code, err = run(scenario(broker), timeout=10 * TIMEOUT)
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert "error: node " in last
    assert "lost its broker" in last


# -- nodes in threads: one server to their clients ------------------------------------------------


def test_an_event_sent_on_one_node_reaches_the_room_on_every_node(
    tmp_path: Path, redis_url: str
) -> None:
    async def scenario(urls: list[str]) -> None:
        async with (
            client(urls[0], "bob") as bob,
            client(urls[0], "alice") as alice,
            client(urls[1], "carol") as carol,
        ):
            body = nonce()
            await bob.say(body)
            await alice.expect(lambda f: is_new(f, body))
            await carol.expect(lambda f: is_new(f, body))

    with nodes(tmp_path, redis_url) as urls:
        run(scenario(urls))


def test_one_senders_events_keep_their_order_on_another_node(
    tmp_path: Path, redis_url: str
) -> None:
    bodies = [nonce(f"n{i}") for i in range(200)]

    async def scenario(urls: list[str]) -> list[str]:
        async with client(urls[0], "bob") as bob, client(urls[1], "carol") as carol:
            for body in bodies:
                await bob.send({"type": "text", "message": body})
            seen = await carol.until(lambda f: is_new(f, bodies[-1]))
            return [f["body"] for f in seen if f.get("body") in bodies]

    with nodes(tmp_path, redis_url) as urls:
        assert run(scenario(urls)) == bodies


def test_a_message_sent_on_one_node_is_edited_and_deleted_through_the_other(
    tmp_path: Path, redis_url: str
) -> None:
    """The nodes share the SQLite file: node 2 finds node 1's message."""

    async def scenario(urls: list[str]) -> None:
        async with client(urls[0], "bob") as first, client(urls[1], "bob") as second:
            created = await first.say(nonce())
            await second.send({"type": "update", "messageId": created["id"], "message": "edited"})
            update = await first.expect(lambda f: f.get("action") == "update")
            assert (update["id"], update["body"], update["edited"]) == (
                created["id"],
                "edited",
                True,
            )
            await second.send({"type": "delete", "messageId": created["id"]})
            await first.expect(lambda f: f.get("action") == "delete" and f["id"] == created["id"])
            await first.send({"type": "delete", "messageId": created["id"]})
            assert await first.error() == {"error": "Message not found."}

    with nodes(tmp_path, redis_url) as urls:
        run(scenario(urls))


def test_the_sender_node_still_knows_the_senders_connection(tmp_path: Path, redis_url: str) -> None:
    """With no-echo, the node that handled the frame spares its sender's connection; the same
    account's connection on the other node is another connection and gets the event."""

    async def scenario(urls: list[str]) -> bool:
        async with client(urls[0], "bob") as bob, client(urls[1], "bob") as other:
            body, sentinel = nonce(), nonce()
            await bob.send({"type": "text", "message": body})
            await other.expect(lambda f: is_new(f, body))
            await other.send({"type": "text", "message": sentinel})  # no-echo: bob only
            seen = await bob.until(lambda f: is_new(f, sentinel))
            return any(is_new(f, body) for f in seen)

    with nodes(tmp_path, redis_url, faults=frozenset({"no-echo"})) as urls:
        assert run(scenario(urls)) is False


# -- the node faults: each shows its defect, the clean cluster does not ----------------------------


async def _events_stay_on_their_node(urls: list[str]) -> bool:
    async with client(urls[0], "bob") as bob, client(urls[1], "carol") as carol:
        body = nonce()
        await bob.say(body)
        [seen] = await carol.sentinel()  # published after body: arrives after it, if at all
        return not any(is_new(f, body) for f in seen)


async def _errors_reach_other_nodes(urls: list[str]) -> bool:
    async with client(urls[0], "bob") as bob, client(urls[1], "carol") as carol:
        await bob.send("not json")
        assert await bob.error() == {"error": "Invalid JSON."}
        [_, seen] = await bob.sentinel(carol)
        return any(is_error(f) for f in seen)


async def _rooms_mix_across_nodes(urls: list[str]) -> bool:
    url0, url1 = urls
    async with (
        client(url0, "bob", "general") as bob,
        client(url0, "alice", "random") as same_node,
        client(url1, "carol", "random") as other_node,
    ):
        body = nonce()
        await bob.say(body)
        [seen_same, seen_other] = await same_node.sentinel(other_node)
        assert not any(is_new(f, body) for f in seen_same)  # its own node delivers right
        return any(is_new(f, body) for f in seen_other)


NODE_SCENARIOS: dict[str, Callable[[list[str]], Awaitable[bool]]] = {
    "fanout-one-node": _events_stay_on_their_node,
    "errors-cross-nodes": _errors_reach_other_nodes,
    "rooms-mixed-across-nodes": _rooms_mix_across_nodes,
}


@pytest.mark.parametrize("fault", sorted(NODE_SCENARIOS))
def test_a_node_fault_shows_its_defect_and_the_clean_cluster_does_not(
    tmp_path: Path, redis_url: str, fault: str
) -> None:
    scenario = NODE_SCENARIOS[fault]
    with nodes(tmp_path / "faulty", redis_url, faults=frozenset({fault})) as urls:
        assert run(scenario(urls)) is True
    with nodes(tmp_path / "clean", redis_url) as urls:
        assert run(scenario(urls)) is False


@pytest.mark.parametrize("fault", sorted(NODE_SCENARIOS))
def test_a_node_fault_alone_changes_nothing(
    make_server: Callable[..., ServerThread], fault: str
) -> None:
    """Without a broker there is one node: the scenarios see a correct server."""
    srv = make_server(faults=frozenset({fault}))
    assert run(NODE_SCENARIOS[fault]([srv.url_template, srv.url_template])) is False


# -- the command line's cluster: node processes ----------------------------------------------------


def test_serve_nodes_runs_one_server_on_two_node_processes(tmp_path: Path, redis_url: str) -> None:
    bodies = [nonce(f"n{i}") for i in range(100)]

    async def scenario(urls: list[str]) -> list[str]:
        async with (
            client(urls[0], "bob") as bob,
            client(urls[1], "carol") as carol,
            client(urls[1], "bob") as bob_on_2,
        ):
            for body in bodies:
                await bob.send({"type": "text", "message": body})
            seen = await carol.until(lambda f: is_new(f, bodies[-1]))
            first = await bob.expect(lambda f: is_new(f, bodies[0]))
            await bob_on_2.send({"type": "update", "messageId": first["id"], "message": "x"})
            await bob.expect(lambda f: f.get("action") == "update" and f["id"] == first["id"])
            return [f["body"] for f in seen if f.get("body") in bodies]

    args = ["--demo", "--db", str(tmp_path / "c.sqlite3")]
    with ClusterProcess(args, nodes=2, broker=redis_url) as cluster:
        assert len(set(cluster.urls)) == 2
        target = tomllib.loads(cluster.target_text)
        assert target == {"nodes": cluster.urls, **demo_target_dict(cluster.urls[0])}
        assert run(scenario(cluster.urls), timeout=10 * TIMEOUT) == bodies
    assert cluster.returncode == 0


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux's /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_a_node_that_dies_stops_the_cluster_with_status_1(tmp_path: Path, redis_url: str) -> None:
    args = ["--demo", "--db", str(tmp_path / "c.sqlite3")]
    with ClusterProcess(args, nodes=3, broker=redis_url) as cluster:
        children = _children(cluster.pid)
        assert len(children) == 3
        os.kill(children[1], signal.SIGKILL)
        assert cluster.wait() == 1
        last = cluster.stderr.strip().splitlines()[-1]
        assert last.endswith("exited with status -9; the other nodes were stopped")
        assert "Traceback" not in cluster.stderr
        assert not any(Path(f"/proc/{pid}").exists() for pid in children)


def _two_free_ports() -> int:
    """A port P of 127.0.0.1 such that P and P+1 were free a moment ago."""
    for _ in range(20):
        port = free_port()
        if port < 65535:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise RuntimeError("no two consecutive free ports")


def test_serve_nodes_without_demo_prints_the_nodes_and_what_to_add(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also: with --port P, node K listens on P+K-1."""
    monkeypatch.setenv("CLUSTER_TEST_SECRET", "k" * 40)
    port = _two_free_ports()
    args = ["--db", str(tmp_path / "c.sqlite3"), "--secret-env", "CLUSTER_TEST_SECRET"]
    with ClusterProcess([*args, "--port", str(port)], nodes=2, broker=redis_url) as cluster:
        assert tomllib.loads(cluster.target_text) == {"url": cluster.urls[0], "nodes": cluster.urls}
        assert "[accounts" in cluster.target_text
        assert cluster.urls == [
            f"ws://127.0.0.1:{port + k}/ws/chat/{{host}}/{{room}}" for k in range(2)
        ]
    assert cluster.returncode == 0


def test_serve_nodes_output_is_one_line_per_node_then_the_target(
    tmp_path: Path, redis_url: str
) -> None:
    """The exact shape of ``serve --nodes N`` on stdout, read by a plain pipe."""

    async def scenario() -> list[str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reference_server", "serve", "--nodes", "2", "--broker",
            redis_url, "--demo", "--db", str(tmp_path / "c.sqlite3"), "--log-level", "WARNING",
            stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        assert process.stdout is not None
        lines: list[str] = []
        try:
            while not lines or lines[-1] != TARGET_END:
                lines.append((await process.stdout.readline()).decode().rstrip("\n"))
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        return lines

    lines = run(scenario(), timeout=10 * TIMEOUT)
    for k, line in enumerate(lines[:2], start=1):
        assert line.startswith(f"node-{k} listening on ws://127.0.0.1:")
        assert line.endswith("/ws/chat/{host}/{room}")
    assert lines[2] == TARGET_START
    urls = [line.split(" listening on ")[1] for line in lines[:2]]
    assert json.loads(lines[3].removeprefix("url = ")) == urls[0]
    assert lines[4] == f"nodes = {json.dumps(urls)}"
