"""Helpers shared by the harness's own tests: target files and suite runs in a subprocess."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness import schemas

ROOT = Path(__file__).resolve().parent.parent
SUITES = ROOT / "suites"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string (raw non-ASCII, escaped controls).
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(data: Mapping[str, Any]) -> str:
    """A small TOML writer for target files (tables of scalars, nested one level deeper)."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, Mapping) and key != "claims":
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables:
        subtables = [(k, v) for k, v in table.items() if isinstance(v, Mapping) and k != "claims"]
        scalars = [
            (k, v) for k, v in table.items() if not (isinstance(v, Mapping) and k != "claims")
        ]
        if scalars or not subtables:
            lines.append(f"\n[{name}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in scalars)
        for sub, values in subtables:
            lines.append(f"\n[{name}.{sub}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in values.items())
    return "\n".join(lines) + "\n"


def write_target(path: Path, data: Mapping[str, Any]) -> Path:
    path.write_text(to_toml(data), encoding="utf-8")
    return path


def write_not_applicable(path: Path, reasons: Mapping[str, str]) -> Path:
    """A baseline file accepting ``reasons`` (id -> reason) as not applicable."""
    path.write_text(
        "".join(
            f"[[not_applicable]]\nid = {_toml_value(rid)}\nreason = {_toml_value(why)}\n\n"
            for rid, why in reasons.items()
        ),
        encoding="utf-8",
    )
    return path


#: A reference server run in the test process cannot be restarted by a target's command.
NO_RESTART = {"RECON-006": "the server runs in the test process: no restart.command"}


def run_suites(
    target: Path | None,
    report_dir: Path,
    *extra: str,
    only: str | None = None,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, Any] | None, str]:
    """Run ``pytest suites`` in a subprocess; (exit code, results.json or None, output)."""
    cmd: list[str] = [
        sys.executable,
        "-m",
        "pytest",
        str(SUITES),
        "-q",
        "-p",
        "no:cacheprovider",
        "--report-dir",
        str(report_dir),
        "-o",
        "addopts=",
        "--no-header",
        "-rN",
    ]
    if target is not None:
        cmd += ["--target", str(target)]
    if only:
        cmd += ["--only", only]
    cmd += list(extra)
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )
    results_path = report_dir / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else None
    if results is not None:
        # Every results.json a test makes is held to its schema (the contract others read).
        violations = schemas.validate("results", results)
        assert violations == [], f"results.json breaks schemas/results.json: {violations[:3]}"
    return done.returncode, results, done.stdout + done.stderr


def verdicts(
    results: Mapping[str, Any], verdict: str, levels: Sequence[str] = ("MUST", "SHOULD")
) -> list[str]:
    return [
        r["id"] for r in results["requirements"] if r["verdict"] == verdict and r["level"] in levels
    ]


def not_tested(
    results: Mapping[str, Any], levels: Sequence[str] = ("MUST", "SHOULD", "INFO")
) -> dict[str, str | None]:
    """Requirement id -> reason, for each requirement of ``levels`` not tested that applies to
    the target (NODE-* without ``nodes`` do not: ``"applies": false``)."""
    return {
        r["id"]: r.get("reason")
        for r in results["requirements"]
        if r["verdict"] == "not_tested" and r["level"] in levels and r.get("applies", True)
    }


def assert_passes_everything(
    code: int,
    results: Mapping[str, Any] | None,
    output: str,
    *,
    untested_levels: Sequence[str] = ("MUST", "SHOULD"),
    label: str = "",
) -> None:
    """A conformant server's run: nothing failed (INFO included), nothing of
    ``untested_levels`` not tested, exit status 0."""
    assert results is not None, output[-3000:]
    failed = verdicts(results, "failed", ("MUST", "SHOULD", "INFO"))
    # What the target cannot offer (NODE-* without nodes) is out of its scope, not untested.
    untested = sorted(not_tested(results, untested_levels))
    assert not failed, f"{label}failed {failed}\n{output[-4000:]}"
    assert not untested, f"{label}not tested {untested}\n{output[-4000:]}"
    assert code == 0, output[-3000:]


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM a server process, SIGKILL it if it does not exit in time, close its stdout."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    if proc.stdout is not None:
        proc.stdout.close()


# --- one run for the whole session ------------------------------------------------------


def run_once(
    name: str,
    factory: pytest.TempPathFactory,
    argv: Sequence[str],
    env: Mapping[str, str],
    timeout: float,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run ``argv`` once for the whole test session, in a working directory of its own (the
    second item); every later call, in this process or in another pytest-xdist worker, gets
    the same outcome and directory, so that tests of several modules assert on one run's
    output. pytest-xdist's recipe for a session fixture made once: a lock in the directory the
    workers share. A run that timed out is run again by the next caller."""
    base = factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    home = shared / f"once-{name}"
    with (shared / f"once-{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        record = home / "outcome.json"
        if not record.is_file():
            home.mkdir(exist_ok=True)
            done = subprocess.run(
                list(argv),
                cwd=home,
                env=dict(env),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            outcome = {"code": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
            record.write_text(json.dumps(outcome), encoding="utf-8")
        outcome = json.loads(record.read_text(encoding="utf-8"))
    done = subprocess.CompletedProcess(
        list(argv), outcome["code"], outcome["stdout"], outcome["stderr"]
    )
    return done, home


#: The program the project installs, beside this interpreter.
PROGRAM = Path(sys.executable).with_name("edusphere-conformance")


def default_run(factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``edusphere-conformance run`` as the README shows it, no option: the bundled reference
    server, every suite, the reports in ``reports/`` of its working directory (the second
    item). Run once a session (:func:`run_once`): the README's test and the report's read it.
    The environment is the user's: none of pytest-xdist's variables, this environment's bin/
    first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    env["PATH"] = str(PROGRAM.parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return run_once("default-run", factory, [str(PROGRAM), "run"], env, timeout=180)


# --- the command, as a user runs it ------------------------------------------------------

MAIN = "import sys; from harness.cli import main; sys.exit(main())"


def cli(
    *args: str, cwd: Path | None = None, timeout: float = 60, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The command in a subprocess, without this environment's ``CHAT_JWT_SECRET``; ``env``
    adds to (or, with an empty value, takes from) its environment."""
    base = {k: v for k, v in os.environ.items() if k != "CHAT_JWT_SECRET"}
    env = {k: v for k, v in {**base, **(env or {})}.items() if v}
    return subprocess.run(
        [sys.executable, "-c", MAIN, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        check=False,
    )


def minimal_target(url: str = "ws://127.0.0.1:9/ws/chat/{host}/{room}") -> dict[str, Any]:
    return {
        "url": url,
        "connect_timeout": 1.0,
        "accounts": {
            "host": {"username": "alice", "token": "t-alice"},
            "member": {"username": "bob", "token": "t-bob"},
        },
        "rooms": {"main": "general"},
    }


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def assert_usage_error(done: subprocess.CompletedProcess[str]) -> str:
    """Exit 2, one line on stderr, no traceback; the line."""
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("edusphere-conformance: error: ")
    return lines[0]
