"""``edusphere-conformance`` (harness/cli.py), run as a user runs it: in a subprocess.

Usage errors must exit 2 with one line on stderr and never a traceback; ``list`` prints the
catalogue in three formats; one small ``run`` against the bundled server writes every report.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from harness import __version__, schemas
from harness import catalogue as cat_mod
from reference_server.faults import FAULTS
from tests.support import assert_usage_error, cli, closed_port, minimal_target, write_target

# --- list ---------------------------------------------------------------------------------

ID = re.compile(r"\b[A-Z]+-[0-9]{3}\b")


def test_list_text_names_every_requirement() -> None:
    done = cli("list")
    assert done.returncode == 0, done.stderr
    ids = set(ID.findall(done.stdout))
    assert ids == {r.id for r in cat_mod.load().requirements}


def test_list_json_parses_and_carries_the_catalogue() -> None:
    done = cli("list", "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    cat = cat_mod.load()
    assert data["catalogue"] == cat.version
    assert [r["id"] for r in data["requirements"]] == [r.id for r in cat.requirements]
    first = data["requirements"][0]
    req = cat[first["id"]]
    assert first == {
        "id": req.id,
        "level": req.level,
        "area": req.area,
        "scope": req.scope,
        "statement": req.statement,
        "source": req.source,
    }


def test_list_markdown_is_a_table_with_a_row_per_requirement() -> None:
    done = cli("list", "--format", "markdown")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "| id | level | requirement |"
    assert lines[1] == "|---|---|---|"
    cat = cat_mod.load()
    assert len(lines) == 2 + len(cat.requirements)
    for line, req in zip(lines[2:], cat.requirements, strict=True):
        assert line.startswith(f"| {req.id} | {req.level} | ")
        assert line.endswith(" |")


def test_list_scope_client_lists_only_client_requirements() -> None:
    cat = cat_mod.load()
    client = {r.id for r in cat.scoped("client")}
    done = cli("list", "--scope", "client", "--format", "json")
    assert {r["id"] for r in json.loads(done.stdout)["requirements"]} == client
    text = cli("list", "--scope", "client").stdout
    assert set(ID.findall(text)) == client


def test_list_faults_names_each_switch_with_its_requirements() -> None:
    done = cli("list", "--faults")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(FAULTS) >= 25
    for fault in FAULTS.values():
        row = [line for line in lines if line.split()[:1] == [fault.name]]
        assert len(row) == 1, fault.name
        assert set(ID.findall(row[0])) == set(fault.requirements)
    assert f"{len(FAULTS)} fault switches" in done.stdout


def test_list_faults_json_names_catalogue_requirements() -> None:
    data = json.loads(cli("list", "--faults", "--format", "json").stdout)
    assert len(data) >= 25
    cat = cat_mod.load()
    assert {f["name"] for f in data} == set(FAULTS)
    for fault in data:
        assert fault["requirements"], fault["name"]
        assert all(rid in cat for rid in fault["requirements"]), fault


def test_version() -> None:
    done = cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"edusphere-conformance {__version__}"


def test_no_command_is_a_usage_error() -> None:
    done = cli()
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


# --- run: usage errors --------------------------------------------------------------------


def typo_target(tmp: Path) -> list[str]:
    data = minimal_target() | {"auth": {"tranport": "cookie"}}
    return ["--target", str(write_target(tmp / "t.toml", data))]


def missing_target(tmp: Path) -> list[str]:
    return ["--target", str(tmp / "nope.toml")]


def missing_baseline(tmp: Path) -> list[str]:
    return ["--baseline", str(tmp / "known.toml")]


def bad_baseline(tmp: Path) -> list[str]:
    path = tmp / "known.toml"
    path.write_text('[[known]]\nid = "NOPE-001"\nreason = "x"\n', encoding="utf-8")
    return ["--baseline", str(path)]


USAGE: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "target-typo": (typo_target, "auth.tranport: unknown key (did you mean 'auth.transport'?)"),
    "target-missing": (missing_target, "no such target file"),
    "bare-url": (
        lambda tmp: ["--target", "wss://x/ws/chat/{host}/{room}"],
        "a URL alone is not enough",
    ),
    "only-nope": (lambda tmp: ["--only", "NOPE"], "'NOPE' is neither an area nor a requirement id"),
    "only-bad-id": (lambda tmp: ["--only", "AUTH,AUTH-999"], "'AUTH-999'"),
    "baseline-missing": (missing_baseline, "no such baseline file"),
    "baseline-unknown-id": (bad_baseline, "NOPE-001 is not in the catalogue"),
    "examples-zero": (lambda tmp: ["--examples", "0"], "--examples must be at least 1"),
    "examples-not-int": (lambda tmp: ["--examples", "many"], "invalid int value"),
}


@pytest.mark.parametrize("case", sorted(USAGE))
def test_run_usage_error_is_one_line_and_exit_2(case: str, tmp_path: Path) -> None:
    make_args, words = USAGE[case]
    line = assert_usage_error(cli("run", *make_args(tmp_path), cwd=tmp_path, timeout=30))
    assert words in line
    assert not (tmp_path / "reports").exists()  # nothing ran


def test_run_against_a_port_where_nothing_listens_is_unreachable(tmp_path: Path) -> None:
    port = closed_port()
    url = f"ws://127.0.0.1:{port}/ws/chat/{{host}}/{{room}}"
    path = write_target(tmp_path / "t.toml", minimal_target(url))
    # Bounded by connect_timeout (1.0 s in minimal_target); the subprocess timeout catches a hang.
    done = cli("run", "--target", str(path), cwd=tmp_path, timeout=30)
    line = assert_usage_error(done)
    assert "unreachable" in line
    assert f"127.0.0.1:{port}" in line


def test_run_against_a_server_that_never_answers_the_handshake(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts TCP (the kernel does), never says a word
    try:
        port = listener.getsockname()[1]
        url = f"ws://127.0.0.1:{port}/ws/chat/{{host}}/{{room}}"
        path = write_target(tmp_path / "t.toml", minimal_target(url))
        line = assert_usage_error(cli("run", "--target", str(path), cwd=tmp_path, timeout=30))
    finally:
        listener.close()
    assert "does not answer the WebSocket handshake" in line


def test_secret_in_a_usage_error_is_redacted(tmp_path: Path) -> None:
    data = minimal_target() | {"auth": {"secret": "cli-secret-0123456789abcdef", "tranport": "q"}}
    path = write_target(tmp_path / "t.toml", data)
    line = assert_usage_error(cli("run", "--target", str(path), cwd=tmp_path))
    assert "cli-secret-0123456789abcdef" not in line


def _not_utf8_target(tmp: Path) -> list[str]:
    path = tmp / "t.toml"
    path.write_bytes(b'url = "ws://127.0.0.1:9/{host}/{room}"\norigin = "caf\xe9"\n')
    return ["--target", str(path)]


def _nan_timeout_target(tmp: Path) -> list[str]:
    path = write_target(tmp / "t.toml", minimal_target())
    path.write_text(path.read_text().replace("connect_timeout = 1.0", "connect_timeout = nan"))
    return ["--target", str(path)]


def _directory_baseline(tmp: Path) -> list[str]:
    (tmp / "known").mkdir()
    return ["--baseline", str(tmp / "known")]


TRACEBACKS: dict[str, Callable[[Path], list[str]]] = {
    "target-not-utf8": _not_utf8_target,
    "target-nan-timeout": _nan_timeout_target,
    "baseline-directory": _directory_baseline,
}


@pytest.mark.parametrize("case", sorted(TRACEBACKS))
def test_run_unusable_input_is_one_line_not_a_traceback(case: str, tmp_path: Path) -> None:
    assert_usage_error(cli("run", *TRACEBACKS[case](tmp_path), cwd=tmp_path, timeout=30))


# --- run: the bundled server --------------------------------------------------------------


def test_run_one_requirement_against_the_bundled_server(tmp_path: Path) -> None:
    reports = tmp_path / "out"
    done = cli("run", "--only", "CONN-001", "--report-dir", str(reports), cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "verdict: CONFORMANT" in done.stdout
    for name in ("results.json", "compliance.html", "junit.xml"):
        assert (reports / name).is_file(), name
    results = json.loads((reports / "results.json").read_text(encoding="utf-8"))
    assert schemas.validate("results", results) == []
    assert results["conformant"] is True
    verdicts = {r["id"]: r for r in results["requirements"]}
    assert verdicts["CONN-001"]["verdict"] == "passed"
    assert (verdicts["AUTH-001"]["verdict"], verdicts["AUTH-001"]["reason"]) == (
        "not_tested",
        "not selected (--only)",
    )
    junit = (reports / "junit.xml").read_text(encoding="utf-8")
    assert 'failures="0"' in junit and "test_connection" in junit
    assert "<html" in (reports / "compliance.html").read_text(encoding="utf-8").lower()


def test_hypothesis_keeps_its_tables_in_the_users_cache_not_the_working_directory(
    tmp_path: Path,
) -> None:
    """A run in a fresh directory leaves no ``.hypothesis`` behind, and the next run anywhere
    reads the Unicode table and the modules' constants back instead of computing them."""
    cache = tmp_path / "cache"
    work = tmp_path / "work"
    work.mkdir()
    env = {"XDG_CACHE_HOME": str(cache), "HYPOTHESIS_STORAGE_DIRECTORY": ""}
    args = ("run", "--only", "ROBUST-016", "--examples", "5", "--report-dir", str(work / "out"))
    done = cli(*args, cwd=work, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (work / ".hypothesis").exists()
    home = cache / "edusphere-conformance" / "hypothesis"
    assert list((home / "unicode_data").rglob("charmap.json.gz")), sorted(home.rglob("*"))
    assert list((home / "constants").iterdir())


def test_the_hypothesis_cache_gives_way_to_the_users_choice_and_is_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hypothesis import configuration

    from harness.cli import hypothesis_cache

    def home() -> Path:
        return configuration.storage_directory(intent_to_write=False).home_directory

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("HYPOTHESIS_STORAGE_DIRECTORY", raising=False)
    before = home()
    with hypothesis_cache() as chosen:
        assert chosen == tmp_path / "cache" / "edusphere-conformance" / "hypothesis"
        assert home() == chosen
        assert os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] == str(chosen)  # xdist's workers
    assert home() == before
    assert "HYPOTHESIS_STORAGE_DIRECTORY" not in os.environ
    monkeypatch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", str(tmp_path / "mine"))
    with hypothesis_cache() as chosen:
        assert chosen is None
        assert home() == before


def test_a_target_whose_claims_no_account_can_fill_exits_2_at_load(tmp_path: Path) -> None:
    """The default claims (sub = "{user_id}") with accounts that give no user_id: every test
    would skip, so the file is refused before any test, with one line naming the key."""
    data = minimal_target()
    data["auth"] = {"secret": "s3cret-of-the-test-0123456789abcdef"}
    for account in data["accounts"].values():
        del account["token"]
    path = write_target(tmp_path / "t.toml", data)
    done = cli("run", "--target", str(path), "--only", "CONN,SEND", cwd=tmp_path, timeout=30)
    line = assert_usage_error(done)
    assert "accounts.host.user_id: missing (and 1 more accounts);" in line
    assert "auth.claims.sub = '{user_id}'" in line
    assert not (tmp_path / "reports" / "results.json").exists()
