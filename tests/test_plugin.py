"""The plugin object: the target is loaded, provisioned and probed once per run, whatever ``-n``.

A provision command that creates users on a staging server must run exactly once: the command
here counts its runs in a file, and each test runs the suites with two pytest-xdist workers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import commands
from harness import target as target_mod
from reference_server.demo import demo_config, demo_target_dict
from reference_server.runner import ServerThread
from tests.support import ROOT, run_suites, write_target

COUNTER = """\
import json, sys
with open(sys.argv[1], "a", encoding="utf-8") as fh:
    fh.write("run\\n")
print(json.dumps({"accounts": json.loads(sys.argv[2]), "rooms": {"main": sys.argv[3]}}))
"""


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(demo_config(database=":memory:")) as srv:
        yield srv


def provisioned_target(tmp_path: Path, server: ServerThread) -> tuple[Path, Path]:
    """A target file whose accounts and main room come from a counting provision command."""
    data: dict[str, Any] = demo_target_dict(server.url_template)
    accounts = data.pop("accounts")
    main = data["rooms"].pop("main")
    # The file itself names only what the parser requires; the command supplies the rest.
    data["accounts"] = {role: {"username": "placeholder"} for role in ("host", "member")}
    data["rooms"]["main"] = "placeholder"
    script = tmp_path / "provision.py"
    script.write_text(COUNTER, encoding="utf-8")
    count = tmp_path / "runs.txt"
    command = " ".join([sys.executable, str(script), str(count), f"'{json.dumps(accounts)}'", main])
    data["provision"] = {"command": command}
    return write_target(tmp_path / "target.toml", data), count


def runs(count: Path) -> int:
    return len(count.read_text(encoding="utf-8").splitlines()) if count.exists() else 0


def test_provision_runs_once_under_pytest_with_two_workers(
    tmp_path: Path, server: ServerThread
) -> None:
    target, count = provisioned_target(tmp_path, server)
    code, results, output = run_suites(target, tmp_path / "r", "-n", "2", only="CONN")
    assert code == 0, output[-2000:]
    assert results is not None and results["conformant"]
    assert runs(count) == 1, output[-2000:]


def test_provision_runs_once_under_the_cli_with_two_workers(
    tmp_path: Path, server: ServerThread
) -> None:
    target, count = provisioned_target(tmp_path, server)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            "--target",
            str(target),
            "--report-dir",
            str(tmp_path / "r"),
            "--only",
            "CONN",
            "-n",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    assert runs(count) == 1, done.stdout + done.stderr


def test_a_loaded_target_survives_the_trip_to_a_worker(
    tmp_path: Path, server: ServerThread
) -> None:
    target, _ = provisioned_target(tmp_path, server)
    loaded = commands.load_target(target)
    data = json.loads(json.dumps(target_mod.to_data(loaded)))  # what execnet can carry
    assert target_mod.from_data(data) == loaded


def test_the_reference_servers_provisioning_is_a_provision_command_as_is(tmp_path: Path) -> None:
    """``serve --demo`` on a database, and ``edusphere-conformance provision --for-target`` on
    the same database as the target's ``[provision] command``: nothing else to write."""
    database = tmp_path / "chat.sqlite3"
    with ServerThread(demo_config(database=str(database))) as srv:
        data: dict[str, Any] = demo_target_dict(srv.url_template)
        for key in ("accounts", "rooms"):
            del data[key]
        command = [
            sys.executable, "-m", "harness.cli", "provision", "--db", str(database),
            "--user", "alice", "--user", "bob", "--user", "carol", "--user", "dave",
            "--room", "alice/general:bob,carol", "--room", "alice/random:bob,carol",
            "--for-target",
        ]  # fmt: skip
        data["provision"] = {"command": " ".join(command)}
        target = write_target(tmp_path / "target.toml", data)
        code, results, output = run_suites(target, tmp_path / "r", only="CONN,AUTH,ROOM")
    assert code == 0, output[-2000:]
    assert results is not None and results["conformant"]
    untested = [
        r["id"]
        for r in results["requirements"]
        if r["area"] in ("CONN", "AUTH", "ROOM") and r["verdict"] == "not_tested"
    ]
    assert untested == [], [r["reason"] for r in results["requirements"] if r["id"] in untested]


def test_a_conformance_failure_is_shown_with_its_requirements_statement() -> None:
    """The core's failure knows the id; where it is shown, the catalogue's statement is beside
    it (h2spec's habit), and no traceback."""
    from harness import catalogue
    from harness.core.failures import ConformanceFailure
    from harness.server import records

    class Item:
        def repr_failure(self, excinfo: Any, *args: Any) -> str:
            return "a traceback"

    item = Item()
    records.brief_failures(item)  # type: ignore[arg-type]
    try:
        raise ConformanceFailure("SEND-002", "the echo", "nothing")
    except ConformanceFailure:
        excinfo = pytest.ExceptionInfo.from_current()
    text = item.repr_failure(excinfo)
    assert text.startswith("ConformanceFailure: [SEND-002] ")
    assert catalogue.load()["SEND-002"].statement in text and "actual:   nothing" in text
    try:
        raise ValueError("a bug")
    except ValueError:
        assert item.repr_failure(pytest.ExceptionInfo.from_current()) == "a traceback"
