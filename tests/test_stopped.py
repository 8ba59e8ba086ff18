"""Never a silent INCOMPLETE (issue 12): whatever stops a run before or between its tests ends it
with one line naming the cause, on the terminal, in ``results.json`` (``reason``) and in the
report's banner. One test per cause: a provision command that fails (the command and pytest's
plugin), DNS, a fixture that raises, the target going away between tests. TLS: tests/test_tls.py.
"""

from __future__ import annotations

import html
import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from harness import cli as cli_mod
from harness import schemas
from tests.support import assert_usage_error, cli, minimal_target, run_suites, write_target


def _reports_say(reports: Path, cause: str) -> dict[str, Any]:
    """results.json and compliance.html both give ``cause`` as why the run is INCOMPLETE."""
    results: dict[str, Any] = json.loads((reports / "results.json").read_text())
    assert schemas.validate("results", results) == []
    assert results["verdict"] == "INCOMPLETE" and results["exit_status"] == 2
    assert cause in results["reason"], results["reason"]
    page = (reports / "compliance.html").read_text()
    assert html.escape(cause, quote=True) in page, cause
    assert (reports / "junit.xml").is_file()
    return results


def _failing_provision(tmp_path: Path) -> Path:
    script = tmp_path / "provision.py"
    script.write_text(
        "import sys\nprint('seeding failed: no database', file=sys.stderr)\nsys.exit(3)\n"
    )
    data = minimal_target() | {"provision": {"command": f"{sys.executable} {script}"}}
    return write_target(tmp_path / "t.toml", data)


def test_a_provision_command_that_fails_stops_the_run_with_its_line(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    done = cli("run", "--target", str(_failing_provision(tmp_path)), "--report-dir", str(reports))
    line = assert_usage_error(done)
    cause = "provision.command: command exited 3: seeding failed: no database"
    assert cause in line
    results = _reports_say(reports, cause)
    assert {r["verdict"] for r in results["requirements"]} == {"not_tested"}


def test_a_provision_command_that_fails_under_pytest_writes_the_reports_too(
    tmp_path: Path,
) -> None:
    reports = tmp_path / "reports"
    code, results, output = run_suites(_failing_provision(tmp_path), reports)
    assert code == 4, output[-2000:]  # pytest's usage error
    assert "provision.command: command exited 3" in output
    assert results is not None
    _reports_say(reports, "provision.command: command exited 3: seeding failed: no database")


def test_a_host_that_does_not_resolve_stops_the_run_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_such_host(*args: Any, **kwargs: Any) -> socket.socket:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", no_such_host)
    url = "ws://chat.staging.invalid/ws/chat/{host}/{room}"
    target = write_target(tmp_path / "t.toml", minimal_target(url))
    reports = tmp_path / "reports"
    code = cli_mod.main(["run", "--target", str(target), "--report-dir", str(reports)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    cause = "target unreachable: chat.staging.invalid:80 (Name or service not known"
    assert cause in err[0]
    _reports_say(reports, cause)


def test_a_fixture_that_raises_stops_the_run_and_fails_nothing(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    code, results, output = run_suites(
        None, reports, "-p", "tests.plugins.broken_fixture", only="SEND"
    )
    assert code == 2, output[-2000:]
    assert results is not None
    cause = "the fixture 'broken_environment' of suites/"
    assert "raised RuntimeError: database is locked" in results["reason"]
    _reports_say(reports, cause)
    assert not [r for r in results["requirements"] if r["verdict"] == "failed"]
    assert f"INCOMPLETE: {results['reason']}" in output  # the terminal's line


def test_a_target_that_goes_away_between_tests_stops_the_run_with_its_line(
    tmp_path: Path,
) -> None:
    reports = tmp_path / "reports"
    code, results, output = run_suites(
        None, reports, "-p", "tests.plugins.vanishing_server", only="SEND"
    )
    assert code == 2, output[-2000:]
    assert results is not None
    assert results["reason"].startswith("target unreachable: 127.0.0.1:"), results["reason"]
    _reports_say(reports, results["reason"])
    assert f"INCOMPLETE: {results['reason']}" in output
