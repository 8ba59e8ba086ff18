"""The command line: serve, provision, faults; argument errors."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import sys
from pathlib import Path

import jwt
import pytest
from refserver_support import TIMEOUT, client, make_token, refusal, run

from harness.commands import load_target, run_command
from harness.target import apply_provision, parse
from reference_server.cli import main
from reference_server.config import ServerConfig
from reference_server.demo import DEMO_SECRET, demo_target_dict, demo_user_id
from reference_server.faults import FAULTS
from reference_server.runner import ServerThread


def test_faults_command_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["faults"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in FAULTS)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["serve", "--demo", "--port", "x"], "--port"),
        (["serve", "--demo", "--fault", "no-echo", "nope"], "nope"),
        (["serve", "--demo", "--fault", "no-ecko"], "unknown fault: no-ecko (did you mean no-echo"),
        (["serve", "--fault", "no-ecko"], "unknown fault: no-ecko (did you mean no-echo"),
        (["serve", "--demo", "--refusal", "maybe"], "--refusal"),
        (["serve", "--demo", "--refusal-status", "200"], "refusal_status"),
        (["serve"], "--secret-env"),
        (["serve", "--secret-env", "REFERENCE_SERVER_TEST_UNSET"], "REFERENCE_SERVER_TEST_UNSET"),
        (["bogus"], "bogus"),
        ([], "required"),
        (["provision", "--db", ":memory:", "--room", "ghost/lobby:"], "ghost"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert needle in lines[0]
    assert "Traceback" not in captured.err


def test_provision_creates_accounts_rooms_and_working_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "p.sqlite3")
    argv = ["provision", "--db", db, "--user", "erin:erin@example.test", "--user", "frank"]
    argv += ["--user", "gina", "--room", "erin/lobby:frank", "--room", "erin/side:frank,gina"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["accounts"]) == {"erin", "frank", "gina"}
    assert out["accounts"]["erin"]["email"] == "erin@example.test"
    assert out["rooms"]["erin/lobby"]["participants"] == ["erin", "frank"]
    assert out["rooms"]["erin/side"]["participants"] == ["erin", "frank", "gina"]
    claims = jwt.decode(out["tokens"]["frank"], DEMO_SECRET, algorithms=["HS256"])
    assert claims["sub"] == out["accounts"]["frank"]["user_id"]

    with ServerThread(ServerConfig(database=db, token_name="token")) as srv:
        tokens = out["tokens"]
        assert run(refusal(client(srv.url_template, room="lobby", host="erin",
                                  token=tokens["frank"]))) == "open"  # fmt: skip
        assert run(refusal(client(srv.url_template, room="lobby", host="erin",
                                  token=tokens["gina"]))) == "http 403"  # fmt: skip


def test_provision_for_target_prints_what_a_target_provision_command_must(
    tmp_path: Path,
) -> None:
    """``provision --for-target`` works as a target's ``[provision] command`` as is: its output
    merged by ``apply_provision`` gives accounts by role and rooms by key that the server
    accepts (and refuses) as the suites expect. Run twice: provisioning is idempotent."""
    db = str(tmp_path / "p.sqlite3")
    argv = [sys.executable, "-m", "reference_server", "provision", "--db", db, "--for-target"]
    argv += ["--user", "hana:hana@example.test", "--user", "ivan", "--user", "jo", "--user", "kim"]
    argv += ["--room", "hana/lobby:ivan,jo", "--room", "hana/side:ivan,jo"]
    command = shlex.join(argv)
    placeholder = {"username": "provisioned-later"}
    data = {
        "url": "ws://127.0.0.1:1/ws/chat/{host}/{room}",
        "auth": {"transport": "query", "name": "token"},
        "accounts": {"host": placeholder, "member": placeholder},
        "rooms": {"main": "provisioned-later"},
        "provision": {"command": command},
    }
    output = run_command(command, "provision.command", timeout=60.0)
    target = apply_provision(parse(data, "t.toml", {}), output)
    accounts = target.accounts
    assert {role: acc.username for role, acc in accounts.items()} == {
        "host": "hana", "member": "ivan", "member2": "jo", "outsider": "kim",
    }  # fmt: skip
    assert accounts["host"].email == "hana@example.test"
    assert dict(target.rooms) == {"main": "lobby", "other": "side", "missing": "no-such-room"}
    assert all(acc.user_id and acc.token for acc in accounts.values())

    toml = "\n".join(
        [
            f"url = {json.dumps(data['url'])}",
            'auth = {transport = "query", name = "token"}',
            'accounts.host = {username = "provisioned-later"}',
            'accounts.member = {username = "provisioned-later"}',
            'rooms.main = "provisioned-later"',
            f"provision.command = {json.dumps(command)}",
        ]
    )
    (tmp_path / "t.toml").write_text(toml + "\n")
    loaded = load_target(tmp_path / "t.toml", env={})  # the harness runs the command itself
    assert {r: (a.username, a.user_id) for r, a in loaded.accounts.items()} == {
        r: (a.username, a.user_id) for r, a in accounts.items()
    }
    assert loaded.rooms == target.rooms

    async def outcomes(url: str) -> list[str]:
        host = accounts["host"].username
        tries = [
            ("member", "main"),
            ("member2", "other"),
            ("outsider", "main"),
            ("member", "missing"),
        ]
        return [
            await refusal(
                client(url, room=target.rooms[key], host=host, token=accounts[role].token)
            )
            for role, key in tries
        ]

    with ServerThread(ServerConfig(database=db, token_name="token")) as srv:
        assert run(outcomes(srv.url_template)) == ["open", "open", "http 403", "http 403"]


def test_provision_for_target_needs_a_main_room(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["provision", "--db", ":memory:", "--user", "x", "--for-target"]) == 2
    assert "--room" in capsys.readouterr().err


def test_demo_target_describes_the_demo_server() -> None:
    target = demo_target_dict("ws://127.0.0.1:1/ws/chat/{host}/{room}")
    assert target["auth"]["secret"] == DEMO_SECRET
    assert len(target["auth"]["secret"].encode()) >= 32
    assert target["accounts"]["host"]["username"] == "alice"
    assert target["accounts"]["outsider"]["user_id"] == demo_user_id("dave")
    assert target["rooms"] == {
        "main": "general",
        "other": "random",
        "missing": "no-such-room-7f3a",
        "twin_host": "erin",
    }
    assert "erin" not in {account["username"] for account in target["accounts"].values()}
    assert {"url", "connect_timeout", "receive_timeout", "limits", "expect"} <= set(target)


def test_serve_prints_its_url_serves_and_stops_cleanly_on_sigterm() -> None:
    async def scenario() -> tuple[int, str, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reference_server", "serve", "--demo", "--db", ":memory:",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        assert process.stdout is not None and process.stderr is not None
        try:
            async with asyncio.timeout(10 * TIMEOUT):
                line = (await process.stdout.readline()).decode().strip()
                assert line.startswith("listening on ws://127.0.0.1:")
                template = line.removeprefix("listening on ")
                assert template.endswith("/ws/chat/{host}/{room}")
                async with client(template, "bob") as bob:
                    await bob.say("over the command line")
                assert await refusal(client(template, "dave")) == "http 403"
                process.send_signal(signal.SIGTERM)
                code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        return code, (await process.stdout.read()).decode(), (await process.stderr.read()).decode()

    code, out, err = run(scenario(), timeout=12 * TIMEOUT)
    assert code == 0, err
    assert out == ""
    lines = err.strip().splitlines()
    assert lines
    events = [json.loads(line)["event"] for line in lines]  # structured: one JSON object a line
    assert {"listening", "connected", "refused", "stopped"} <= set(events)
    assert make_token("bob").split(".")[0] not in err  # no token header (all tokens share it)
    assert "eyJ" not in err
