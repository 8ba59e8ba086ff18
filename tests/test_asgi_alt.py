"""The suites against an ASGI application written from the seed (tests/alt_servers/asgi, on
Starlette), both ways: in-process (``[asgi] app``) and served over the network by uvicorn. A
correct application gets the same verdict for every requirement that runs both ways, and each
of its fault switches is caught in-process.

The application reads its secret, fixtures and faults from the environment (``ALT_ASGI_*``),
so every run is a subprocess of its own (:func:`tests.support.run_suites`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import spec
from harness.server.chat import Chat
from harness.target import parse
from harness.wire import apphost
from reference_server.runner import free_port
from tests.alt_servers.asgi import chat_app
from tests.alt_servers.asgi.chat_app import FAULTS
from tests.support import (
    ROOT,
    assert_passes_everything,
    run_suites,
    stop_process,
    write_not_applicable,
    write_target,
)

APP = "tests.alt_servers.asgi.chat_app:app"
START_TIMEOUT = 15.0

#: Fixtures unlike the other servers': the application names users by their email.
FIXTURE: dict[str, Any] = {
    "users": [
        {"username": "mara", "email": "mara@asgi.example", "avatar": "a/mara.png"},
        {"username": "theo.v", "email": "theo@asgi.example"},
        {"username": "uma_k", "email": "uma@asgi.example"},
        {"username": "zed", "email": "zed@asgi.example"},
    ],
    "rooms": [
        {"host": "mara", "slug": "study-hall", "participants": ["theo.v", "uma_k"]},
        {"host": "mara", "slug": "lab_b", "participants": ["theo.v", "uma_k"]},
    ],
}
ACCOUNTS = {
    "host": {"username": "mara", "email": "mara@asgi.example"},
    "member": {"username": "theo.v", "email": "theo@asgi.example"},
    "member2": {"username": "uma_k", "email": "uma@asgi.example"},
    "outsider": {"username": "zed", "email": "zed@asgi.example"},
}
ROOMS = {"main": "study-hall", "other": "lab_b", "missing": "no-such-room-77"}
#: What only a network transport can test (catalogue ``needs = "network"``).
NETWORK_ONLY = {"RECON-002", "LOAD-002", "ROBUST-014", "ROBUST-015", "RECON-006"}


@pytest.fixture(scope="module")
def alt_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    data = tmp_path_factory.mktemp("alt-asgi") / "fixtures.json"
    data.write_text(json.dumps(FIXTURE), encoding="utf-8")
    return {"ALT_ASGI_SECRET": secrets.token_urlsafe(40), "ALT_ASGI_DATA": str(data)}


def _target(url: str | None = None) -> dict[str, Any]:
    """The target of the application: in-process, or served at ``url``. The token goes as a
    subprotocol (the application accepts ``chat.v1``, never the token)."""
    data: dict[str, Any] = {
        "connect_timeout": 5.0,
        "receive_timeout": 5.0,
        "auth": {
            "transport": "subprotocol",
            "name": "chat.v1",
            "secret": "${ALT_ASGI_SECRET}",
            "claims": {"email": "{email}", "exp": "{exp}", "iat": "{iat}"},
        },
        "accounts": ACCOUNTS,
        "rooms": ROOMS,
        "limits": {"max_length": 500},
        "expect": {"refusal": "http"},
    }
    if url is None:
        data["asgi"] = {"app": APP}
    else:
        data["url"] = url
        data["limits"]["max_frame_bytes"] = 65536  # uvicorn's --ws-max-size below
    return data


@contextlib.contextmanager
def uvicorn(env: dict[str, str], log: Path) -> Iterator[str]:
    """The application served by uvicorn on a free port of 127.0.0.1; yields the URL template."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--ws", "websockets-sansio", "--ws-max-size", "65536", "--lifespan", "on"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*argv, "--log-level", "warning"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"uvicorn did not start:\n{log.read_text()}")
                time.sleep(0.05)
            yield f"ws://127.0.0.1:{port}/ws/chat/{{host}}/{{room}}"
        finally:
            stop_process(proc, timeout=5)


def _by_id(results: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["verdict"] for r in results["requirements"]}


def test_the_same_verdicts_in_process_and_over_the_network(
    alt_env: dict[str, str], tmp_path: Path
) -> None:
    inproc = write_target(tmp_path / "inproc.toml", _target())
    code, results, output = run_suites(inproc, tmp_path / "in", "--strict", env=alt_env)
    # In-process, nothing is left untested that counts: what needs a network is out of scope.
    assert_passes_everything(code, results, output, label="in-process: ")
    assert results is not None
    assert results["target"] == f"asgi:{APP}"
    local = _by_id(results)
    skipped = {r["id"]: r["reason"] for r in results["requirements"] if not r.get("applies", True)}
    # ISO-007 too: the alt application's target names no rooms.twin_host.
    assert set(skipped) == NETWORK_ONLY | {"NODE-001", "NODE-002", "NODE-003", "ISO-007"}
    assert all("needs a network transport" in skipped[r] for r in NETWORK_ONLY), skipped

    with uvicorn(alt_env, tmp_path / "uvicorn.log") as url:
        served = write_target(tmp_path / "served.toml", _target(url))
        baseline = write_not_applicable(
            tmp_path / "baseline.toml", {"RECON-006": "in-memory messages: not restartable"}
        )
        code, results, output = run_suites(
            served, tmp_path / "net", "--strict", "--baseline", str(baseline), env=alt_env
        )
    assert_passes_everything(code, results, output, label="over the network: ")
    assert results is not None
    remote = _by_id(results)
    ran_both = {
        rid
        for rid, verdict in local.items()
        if verdict not in ("not_tested", "not_applicable")
        and remote[rid] not in ("not_tested", "not_applicable")
    }
    # Everything that ran in-process ran over the network too.
    assert ran_both == {r for r, v in local.items() if v not in ("not_tested", "not_applicable")}
    assert len(ran_both) >= 90, sorted(ran_both)
    assert {r: local[r] for r in ran_both} == {r: remote[r] for r in ran_both}
    # And what needs a network ran over it (RECON-006 aside: nothing restarts this server).
    assert {r: remote[r] for r in NETWORK_ONLY - {"RECON-006"}} == dict.fromkeys(
        NETWORK_ONLY - {"RECON-006"}, "passed"
    )


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_is_caught_in_process(
    fault: str, alt_env: dict[str, str], tmp_path: Path
) -> None:
    requirement = FAULTS[fault]
    # An event that never comes is awaited receive_timeout: 1 s is plenty in-process.
    target = write_target(tmp_path / "inproc.toml", {**_target(), "receive_timeout": 1.0})
    code, results, output = run_suites(
        target,
        tmp_path / "r",
        only=requirement,
        env={**alt_env, "ALT_ASGI_FAULTS": fault},
    )
    assert results is not None, output[-3000:]
    assert _by_id(results)[requirement] == "failed", output[-3000:]
    assert code == 1, output[-3000:]


# --- the transcript: the same exchange both ways -----------------------------------------

_VARYING = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # message ids
    r"|\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:\d\d)"  # timestamps
    r"|(?:alive|msg|sentinel)-[0-9a-f]{16}"  # the harness's nonces
)


async def _exchange(chat: Chat) -> None:
    """One of everything: two participants, a message, an edit of a message that does not
    exist, a handshake without a token."""
    first = await chat.connect("member", label="a")
    second = await chat.connect("member2", label="b")
    await chat.post(first, observers=[second])
    await first.send_update("00000000-0000-4000-8000-000000000000", "no such message")
    await first.expect_error(spec.ERRORS.not_found, requirement="EDIT-007")
    await chat.attempt(None, room=chat.slug("main"), label="anonymous")
    await chat.close_all()


def _shown(chat: Chat) -> list[tuple[str, str, str]]:
    return [(e["conn"], e["dir"], _VARYING.sub("*", e["text"])) for e in chat.transcript.as_list()]


def test_the_transcript_shows_the_same_exchange_as_over_the_network(
    alt_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in alt_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(chat_app, "_application", None)  # built from this environment
    try:
        local = Chat(parse(_target(), where="in-process", env=alt_env))
        asyncio.run(_exchange(local))
    finally:
        apphost.stop_all()
    with uvicorn(alt_env, tmp_path / "uvicorn.log") as url:
        remote = Chat(parse(_target(url), where="served", env=alt_env))
        asyncio.run(_exchange(remote))
    assert _shown(local) == _shown(remote)
    texts = [text for _, _, text in _shown(local)]
    assert "handshake accepted: HTTP 101" in texts
    assert "handshake refused: HTTP 401" in texts
    assert '{"error":"Message not found."}' in texts


# --- the README's example: the suites inside an implementer's own test run ----------------


def _readme_block(marker: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split(f"<!-- {marker}:start -->")[1].split(f"<!-- {marker}:end -->")[0]
    return block.split("```", 2)[1].split("\n", 1)[1]


def test_the_readme_target_for_an_asgi_application_loads() -> None:
    data = tomllib.loads(_readme_block("asgi-target"))
    target = parse(data, where="README", env={"CHAT_JWT_SECRET": "x" * 32})
    assert target.asgi_app == "myproject.asgi:application"
    assert target.url == "ws://testserver/ws/chat/{host}/{room}"


def _run_example(
    project: Path, target: dict[str, Any], env: dict[str, str], ini: str = ""
) -> subprocess.CompletedProcess[str]:
    """The README's test module, word for word, in ``project``'s tests/ beside ``target``,
    run by the project's own pytest (``ini``: its pytest.ini)."""
    (project / "tests").mkdir(parents=True, exist_ok=True)
    if ini:
        (project / "pytest.ini").write_text(ini, encoding="utf-8")
    example = _readme_block("asgi-pytest-example")
    (project / "tests" / "test_chat_conformance.py").write_text(example, encoding="utf-8")
    write_target(project / "tests" / "chat-conformance.toml", target)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_readme_pytest_example_runs_the_suites_in_a_projects_test_run(
    alt_env: dict[str, str], tmp_path: Path
) -> None:
    """The README's test module in a project of its own whose target names the Starlette
    application: it passes (how it fails: the Channels project below)."""
    project = tmp_path / "project"
    # A test module of the project named like one of the suites': no clash.
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_auth.py").write_text("def test_own() -> None:\n    pass\n")
    done = _run_example(project, _target(), alt_env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "2 passed" in output, output[-4000:]


def test_the_readme_pytest_example_in_a_django_channels_project(tmp_path: Path) -> None:
    """The same module in a pytest-django project whose application is Django's with a
    Channels router (tests/asgi_django, whose consumer refuses every connection): the run
    starts beside pytest-django's session fixtures, drives Channels in-process, and the
    example fails with what the run found."""
    pytest.importorskip("channels")
    pytest.importorskip("pytest_django")
    target = {
        **_target(),
        "asgi": {"app": "tests.asgi_django.asgi:application"},
        "receive_timeout": 0.5,
    }
    done = _run_example(
        tmp_path / "project",
        target,
        {"ALT_ASGI_SECRET": "x" * 40},
        ini="[pytest]\nDJANGO_SETTINGS_MODULE = tests.asgi_django.settings\n",
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-4000:]
    assert "Failed: NON-CONFORMANT: refuses every connection (HTTP 403" in output, output[-4000:]
    assert "django_test_environment" not in output, output[-4000:]
