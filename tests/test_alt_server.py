"""The suites pass against a second, independent server: Node.js, written from the seed alone.

The reference server and the harness share authors; a server written by someone else, in another
language, that takes every open point of the seed the other way, is the check that the harness is
never wrong about a correct server (protocol notes, first rule). The server lives in
tests/alt_servers/node (its README lists how it differs); it is installed with npm and run as a
subprocess, once per token transport it accepts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import selectors
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.matrix.restart_server import stop
from tests.support import ROOT, not_tested, run_suites, stop_process, verdicts, write_target

NODE_DIR = ROOT / "tests" / "alt_servers" / "node"
INSTALL_TIMEOUT = 300.0
START_TIMEOUT = 15.0

#: Requirements allowed to be "not tested" against this server, and why. Empty: the server
#: journals its messages, so the target has a restart command and RECON-006 runs too.
MAY_BE_NOT_TESTED: dict[str, str] = {}

#: The fixtures, named unlike the reference server's demo data (alice, bob, ...), with the dots,
#: underscores and hyphens real usernames and slugs carry. Users get integer ids in file order.
FIXTURE: dict[str, Any] = {
    "users": [
        {"username": "hana.k", "email": "hana@alt.example", "avatar": "avatars/hana.png"},
        {"username": "ivo_b", "email": "ivo@alt.example", "avatar": None},
        {"username": "jun-c", "email": "jun@alt.example"},
        {"username": "kit", "email": "kit@alt.example"},
    ],
    "rooms": [
        {"host": "hana.k", "slug": "lobby-1", "participants": ["ivo_b", "jun-c"]},
        {"host": "hana.k", "slug": "annex_2", "participants": ["ivo_b", "jun-c"]},
        {"host": "ivo_b", "slug": "ivos-den", "participants": ["hana.k"]},
    ],
}
ACCOUNTS = {
    "host": {"username": "hana.k", "email": "hana@alt.example"},
    "member": {"username": "ivo_b", "email": "ivo@alt.example"},
    "member2": {"username": "jun-c", "email": "jun@alt.example"},
    "outsider": {"username": "kit", "email": "kit@alt.example"},
}
ROOMS = {"main": "lobby-1", "other": "annex_2", "missing": "no-such-room-9c1e"}

TRANSPORTS = {
    "header": {"transport": "header", "scheme": "Bearer"},
    "cookie": {"transport": "cookie", "name": "access_token"},
}


# --- install --------------------------------------------------------------------------------


def _require_node() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("not tested: node not installed")
    return node, npm


def _install(npm: str) -> None:
    """``npm ci`` into tests/alt_servers/node, skipped when node_modules matches the lock."""
    lock = NODE_DIR / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes() + (NODE_DIR / "package.json").read_bytes())
    stamp = NODE_DIR / "node_modules" / ".edusphere-installed"
    # Two xdist workers must not install at once: a lock outside the work tree.
    guard = Path(tempfile.gettempdir()) / "edusphere-alt-server-npm.lock"
    with guard.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            ws_ok = (NODE_DIR / "node_modules" / "ws" / "package.json").is_file()
            if ws_ok and stamp.is_file() and stamp.read_text() == digest.hexdigest():
                return
            try:
                done = subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                    cwd=NODE_DIR,
                    capture_output=True,
                    text=True,
                    timeout=INSTALL_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                pytest.fail(f"npm ci did not finish within {INSTALL_TIMEOUT:.0f} s")
            assert done.returncode == 0, f"npm ci failed:\n{done.stdout}{done.stderr}"
            stamp.write_text(digest.hexdigest())
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- the server -----------------------------------------------------------------------------


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The server's first stdout line, waiting at most ``timeout`` seconds."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return proc.stdout.readline()


@contextlib.contextmanager
def node_server(node: str, tmp: Path, secret: str) -> Iterator[tuple[str, Path]]:
    """Start server.js on a free port; yield (URL template, restart state file)."""
    data = tmp / "alt-fixtures.json"
    data.write_text(json.dumps(FIXTURE, indent=2), encoding="utf-8")
    argv = [node, str(NODE_DIR / "server.js"), f"--data={data}", "--port=0"]
    log_path = tmp / "alt-server.log"
    log_file = log_path.open("w")
    state = tmp / "alt-server-state.json"
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log_file,  # a file, not a pipe nobody drains
        text=True,
        env={**os.environ, "ALT_JWT_SECRET": secret, "ALT_LOG": "1"},
        start_new_session=True,
    )
    try:
        line = _read_line(proc, START_TIMEOUT)
        if not line.startswith("listening on "):
            proc.kill()
            proc.wait(timeout=5)
            log_file.flush()
            pytest.fail(f"server.js did not start: {line!r}\n{log_path.read_text()}")
        template = line.removeprefix("listening on ").strip()
        port = int(template.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        state.write_text(json.dumps({"pid": proc.pid, "argv": argv, "port": port}))
        yield template, state
    finally:
        # The restart command may have replaced the process: stop whichever pid is current.
        pid = json.loads(state.read_text())["pid"] if state.is_file() else proc.pid
        if pid != proc.pid:
            stop(pid)
        stop_process(proc, timeout=5)
        log_file.close()


def _target(template: str, transport: str, state: Path) -> dict[str, Any]:
    restart = [sys.executable, str(NODE_DIR / "restart.py"), str(state)]
    return {
        "url": template,
        "connect_timeout": 5.0,
        "receive_timeout": 5.0,
        "auth": {
            **TRANSPORTS[transport],
            "algorithm": "HS256",
            "secret": "${ALT_JWT_SECRET}",
            "claims": {"username": "{username}", "exp": "{exp}", "iat": "{iat}"},
        },
        "accounts": ACCOUNTS,  # no user_id: the server's ids are integers the target never names
        "rooms": ROOMS,
        "limits": {"max_length": 500, "max_frame_bytes": 65536},
        "expect": {"refusal": "close"},
        "restart": {"command": shlex.join(restart)},
    }


def _observations(results: dict[str, Any]) -> list[str]:
    return [
        f"{r['id']}: {obs}"
        for r in results["requirements"]
        if r["level"] == "INFO" or r.get("observations")
        for obs in r.get("observations", [])
    ]


@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_suites_pass_against_the_node_server(transport: str, tmp_path: Path) -> None:
    node, npm = _require_node()
    _install(npm)
    secret = secrets.token_urlsafe(48)  # 64 characters
    started = time.monotonic()
    with node_server(node, tmp_path, secret) as (template, state):
        assert template.endswith("/ws/chat/{host}/{room}/"), template
        target = write_target(tmp_path / "target.toml", _target(template, transport, state))
        code, results, output = run_suites(
            target,
            tmp_path / "reports",
            "--examples",
            "100",
            "--strict",
            timeout=240,
            env={"ALT_JWT_SECRET": secret},
        )
    elapsed = time.monotonic() - started
    log = (tmp_path / "alt-server.log").read_text(errors="replace")[-3000:]
    output = f"{output[-6000:]}\n--- server.js log (tail) ---\n{log}"
    assert results is not None, output

    print(f"\nnode server, {transport} transport: suites ran in {elapsed:.1f} s")
    for line in _observations(results):
        print(f"  INFO {line}")

    failed = verdicts(results, "failed")
    assert not failed, f"failed against the node server: {failed}\n{output}"
    untested = not_tested(results, ("MUST", "SHOULD"))
    unexplained = {k: v for k, v in untested.items() if k not in MAY_BE_NOT_TESTED}
    assert not unexplained, f"not tested: {unexplained}\n{output}"
    assert code == 0, output
    info_failed = verdicts(results, "failed", ("INFO",))
    assert not info_failed, info_failed

    observed = {
        obs
        for r in results["requirements"]
        if r["id"] == "AUTH-010"
        for obs in r.get("observations", [])
    }
    assert any("close" in obs for obs in observed), observed
