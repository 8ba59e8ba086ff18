"""The ``sequence`` figure (a stateful test's shortest failing sequence): its HTML table in the
report (:mod:`harness.render.figures`), its replay script (:mod:`harness.render.replay_script`,
:mod:`harness.wire.replay_runtime`), written next to results.json, and the script run for real
against the reference server: PASS on a correct one, FAIL at the step on a faulty one, a usage
problem in one line.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from html import escape as html_escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness import catalogue, redact, schemas
from harness.core.results import TestRecord, aggregate
from harness.render import files, replay_script
from harness.render.figures import render_figures
from harness.render.server_section import render_section
from harness.target import parse
from harness.tokens import Minter
from harness.wire import replay_runtime
from reference_server.demo import demo_config, demo_target_dict
from reference_server.runner import ServerThread
from tests.support import ROOT, closed_port

#: Bounds of one replay subprocess, and of each wait inside it.
RUN_TIMEOUT = 60.0
STEP_TIMEOUT = "5"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+")
EDIT_OWN = "You can only edit your own messages."
NOT_FOUND = "Message not found."
HOSTILE = "<script>alert('m·1')</script> 𝄞😀 héllo"  # markup, non-BMP text, an accent
ZERO = "00000000-0000-0000-0000-000000000000"


def example_figure(url: str = "ws://127.0.0.1:8765/ws/chat/alice/general/") -> dict[str, Any]:
    """The brief's example: EDIT-009 broken at step 4 (an edit of a deleted message came back)."""
    mid = "6b0c2a9e-6a43-4b4c-9b6e-2f5d0c7a1e11"
    return {
        "kind": "sequence",
        "requirement": "EDIT-009",
        "sequences": 14,
        "steps_run": 131,
        "failed_step": 4,
        "auth": {"transport": "query", "param": "token", "scheme": None, "subprotocol": None},
        "origin": None,
        "header_names": ["X-Api-Key"],
        "connections": [
            {"name": "c1", "role": "member", "user": "bob", "room": "main", "url": url},
            {"name": "c2", "role": "member2", "user": "carol", "room": "main", "url": url},
            {"name": "c3", "role": "member", "user": "bob", "room": "other", "url": url},
        ],
        "steps": [
            {"n": 1, "do": "connect", "conn": "c1", "room": "main", "expect": [],
             "observed": ["c1: accepted"], "ok": True, "note": ""},
            {"n": 2, "do": "send", "conn": "c1", "creates": "m1",
             "frame": {"type": "text", "message": HOSTILE, "timestamp": "2026-12-07T15:00:00.000Z"},
             "expect": [{"conn": "c1", "event": "new", "message": "m1", "body": HOSTILE}],
             "observed": ["c1: new m1"], "ok": True, "note": ""},
            {"n": 3, "do": "delete", "conn": "c1", "message": "m1",
             "frame": {"type": "delete", "messageId": mid},
             "expect": [{"conn": "c1", "event": "delete", "message": "m1"}],
             "observed": ["c1: delete m1"], "ok": True, "note": ""},
            {"n": 4, "do": "edit", "conn": "c1", "message": "m1",
             "frame": {"type": "update", "messageId": mid, "message": "late <b>"},
             "expect": [{"conn": "c1", "error": [NOT_FOUND]}],
             "observed": ['c1: update m1 "late <b>"'], "ok": False,
             "note": "EDIT-009: expected the error Message not found.; got an update event"},
            {"n": 5, "do": "reconnect", "conn": "c3", "from": "c2", "room": "other",
             "expect": [], "observed": ["c3: accepted"], "ok": True, "note": ""},
            {"n": 6, "do": "close", "conn": "c1", "expect": [], "observed": [], "ok": True,
             "note": ""},
            {"n": 7, "do": "vanish", "conn": "c3", "expect": [], "observed": [], "ok": True,
             "note": ""},
        ],
        "witness": ["step 3: c1 got delete m1",
                    'step 4: c1 got update m1 "late <b>" (it came back)'],
    }  # fmt: skip


# --- the HTML report ------------------------------------------------------------------------


class Cells(HTMLParser):
    """The rows of the sequence table: each a (class, [cell text]) pair."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, list[str]]] = []
        self.depth = 0  # inside the sequence table's tbody
        self.cell: list[str] | None = None
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        if tag == "table" and "es-seq-table" in (dict(attrs).get("class") or ""):
            self.depth = 1
        elif self.depth and tag == "tr":
            self.rows.append((dict(attrs).get("class") or "", []))
        elif self.depth and tag == "td":
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.depth = 0
        elif tag == "td" and self.cell is not None and self.rows:
            self.rows[-1][1].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def parsed(html: str) -> Cells:
    cells = Cells()
    cells.feed(html)
    return cells


def test_a_sequence_renders_as_a_table_with_the_failing_step_highlighted() -> None:
    figure = example_figure()
    figure["replay"] = "replay-EDIT-009.py"
    html = render_figures([figure])
    cells = parsed(html)
    _head, *rows = cells.rows
    assert len(rows) == 7 and all(len(r[1]) == 5 for r in rows)
    assert [r[0] for r in rows] == ["", "", "", "es-seq-fail", "", "", ""]
    n, conn, did, expected, observed = rows[3][1]
    assert (n, conn) == ("4", "c1")
    # The frame with its messageId shown as the ref, not the harness's uuid.
    assert did.startswith("edit ") and '"messageId": m1' in did and "6b0c2a9e" not in did
    assert expected == f'c1: error "{NOT_FOUND}"'
    assert observed.startswith('c1: update m1 "late <b>"') and "EDIT-009: expected" in observed
    assert rows[4][1][1] == "c3 from c2" and "room other" in rows[4][1][2]
    assert 'c1: new m1 "<script>' in rows[1][1][3]  # the text survives escaping, as text
    assert "creates m1" in rows[1][1][2]
    # Escaped: no markup of the server's or the generator's reaches the page.
    assert cells.scripts == 0 and "<script>" not in html
    assert "late <b>" not in html and "late &lt;b&gt;" in html
    assert "&lt;script&gt;alert(&#x27;m·1&#x27;)&lt;/script&gt; 𝄞😀 héllo" in html
    assert '<ul class="es-seq-witness"><li>step 3: c1 got delete m1</li>' in html
    # The replay line: the variables by name, the file linked.
    line = re.search(r'<div class="es-seq-replay">(.*?)</div>', html)
    assert line is not None
    assert (
        "Replay it: <code>EDUSPHERE_TOKEN_MEMBER=… EDUSPHERE_TOKEN_MEMBER2=… EDUSPHERE_HEADERS=… "
        "python3 replay-EDIT-009.py</code>" in line.group(1)
    )
    assert '<a href="replay-EDIT-009.py" download>replay-EDIT-009.py</a>' in line.group(1)


def test_the_sequence_table_sits_in_the_report_under_its_requirement() -> None:
    cat = catalogue.load()
    record = TestRecord(
        "suites/test_conversation.py::test_conversation",
        ("EDIT-009",),
        "failed",
        failed_requirements=("EDIT-009",),
        kind="wrong answer",
        expected="the error Message not found.",
        actual="an update event",
        figures={"EDIT-009": example_figure()},
    )
    result = aggregate([record], catalogue=cat, selected={"EDIT-009"})
    section = render_section(result)
    row = section.split('<tr class="es-figrow" data-requirement="EDIT-009"')[1]
    row = row.split('<tr class="es-detail"')[0]
    assert 'class="es-seq-fail"' in row and row.count("<tr") == 1 + 7  # its head, its steps
    assert "tr.es-seq-fail" in section  # its style ships with the section
    # Without a report directory no script was written: the name is given, not linked.
    assert "replay-EDIT-009.py, written with a report directory" in row
    assert "<a href" not in row.split("es-seq-replay")[1]


def test_a_secret_in_a_figure_never_reaches_the_page(token: str) -> None:
    figure = example_figure()
    figure["steps"][1]["observed"] = [f"c1: new m1 {token}"]
    html = render_figures([figure])
    assert token not in html and html_escape(redact.MASK) in html


# --- the script's text ----------------------------------------------------------------------


@pytest.fixture
def token() -> Iterator[str]:
    """A demo token minted as the harness mints them (registered with the redactor)."""
    target = parse(demo_target_dict("ws://127.0.0.1:9/ws/chat/{host}/{room}"), env={})
    minted = Minter(target.auth).valid(target.accounts["member"])
    assert minted in redact.registered()
    yield minted


def ruff(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache",
         "--config", str(ROOT / "pyproject.toml"), str(path)],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=ROOT, check=False,
    )  # fmt: skip


def test_the_script_is_python_that_passes_ruff(tmp_path: Path) -> None:
    figure = example_figure()
    # Lines that would be too long, a body with quotes of both kinds and backslashes, wide
    # characters, a line separator and a lone surrogate: the literal and the docstring stay
    # valid and short.
    long_body = "'\"\\ 漢字" * 80 + "\u2028\x00\ud800" + "x" * 400
    figure["steps"][1]["frame"]["message"] = long_body
    figure["steps"][1]["expect"][0]["body"] = long_body
    figure["connections"][0]["user"] = 'bo"""b\\'
    text = replay_script.script_for(figure)
    assert text.startswith("#!/usr/bin/env python3\n")
    compile(text, "replay-EDIT-009.py", "exec")
    path = tmp_path / "replay-EDIT-009.py"
    path.write_text(text, encoding="utf-8")
    done = ruff(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert max(len(line) for line in text.splitlines()) <= 100
    # The literal is the figure, whatever its characters.
    tree = ast.parse(text)
    literal = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "FIGURE_JSON"
    )
    embedded = json.loads(ast.literal_eval(literal))
    assert embedded["steps"][1]["frame"]["message"] == long_body
    assert embedded["connections"][0]["user"] == 'bo"""b\\'
    # The docstring says what it replays and what it needs.
    doc = ast.get_docstring(tree) or ""
    assert 'bo"""b\\' in doc  # shown as it is, the docstring still closed where it ends
    assert "EDIT-009" in doc and "broke EDIT-009 at step 4" in doc
    for variable in ("EDUSPHERE_TOKEN_MEMBER", "EDUSPHERE_TOKEN_MEMBER2", "EDUSPHERE_HEADERS"):
        assert variable in doc
    assert "--timeout" in doc and "python3 replay-EDIT-009.py" in doc
    # It imports no harness: only the standard library and websockets.
    imported = set(re.findall(r"^(?:from|import) ([A-Za-z_.]+)", text, re.MULTILINE))
    ours = ("harness", "reference_server", "tests")
    assert not any(name.split(".")[0] in ours for name in imported)
    assert "websockets.asyncio.client" in imported


def test_the_script_keeps_no_token_even_one_the_figure_carries(token: str, tmp_path: Path) -> None:
    figure = example_figure()
    # By construction a figure holds no token; a careless one would, here and there.
    figure["connections"][0]["url"] += f"?token={token}"
    figure["steps"][1]["observed"] = [f"c1: new m1 {token}"]
    figure["witness"].append(f"step 2: token {token}")
    figure["header_names"] = [token]
    text = replay_script.script_for(figure)
    _head, payload, signature = token.split(".")
    assert token not in text and signature not in text and payload not in text
    assert not JWT.search(text)
    assert redact.MASK in text
    compile(text, "replay.py", "exec")
    path = tmp_path / "replay.py"
    path.write_text(text, encoding="utf-8")
    assert ruff(path).returncode == 0


def test_the_script_and_the_report_name_the_same_variables() -> None:
    for role in ("member", "member2", "host", "weird role-é"):
        assert replay_script.token_variable(role) == replay_runtime.token_variable(role)
    assert replay_script.token_variable("member2") == "EDUSPHERE_TOKEN_MEMBER2"
    assert replay_script.token_variable("my-role.x") == "EDUSPHERE_TOKEN_MY_ROLE_X"
    assert replay_script.HEADERS_VARIABLE == replay_runtime.HEADERS_VARIABLE
    assert replay_script.CA_VARIABLE == replay_runtime.CA_VARIABLE


# --- the files next to results.json ---------------------------------------------------------


def test_write_replays_writes_one_executable_script_per_sequence(tmp_path: Path) -> None:
    (tmp_path / "replay-OLD-001.py").write_text("stale", encoding="utf-8")
    first, second = example_figure(), example_figure()
    results = {
        "requirements": [
            {"id": "EDIT-009", "figures": [first, {"kind": "lag"}, second]},
            {"id": "LOAD-002", "figures": [{"kind": "burst"}]},
        ]
    }
    written = replay_script.write_replays(results, tmp_path)
    assert written == {"EDIT-009": "replay-EDIT-009.py", "EDIT-009-2": "replay-EDIT-009-2.py"}
    assert (first["replay"], second["replay"]) == ("replay-EDIT-009.py", "replay-EDIT-009-2.py")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(written.values())  # stale: gone
    for name in written.values():
        mode = (tmp_path / name).stat().st_mode
        assert stat.S_IMODE(mode) == 0o755
        assert "EDIT-009" in (tmp_path / name).read_text(encoding="utf-8")


def test_results_json_names_the_replay_and_keeps_to_its_schema(tmp_path: Path) -> None:
    record = TestRecord(
        "suites/test_conversation.py::test_conversation",
        ("EDIT-009",),
        "failed",
        failed_requirements=("EDIT-009",),
        kind="wrong answer",
        expected="x",
        actual="y",
        figures={"EDIT-009": example_figure()},
    )
    result = aggregate(
        [record],
        catalogue=catalogue.load(),
        selected={"EDIT-009"},
        started="2026-12-07T15:00:00Z",
        harness_version="9.9.9",
    )
    files.write_results_json(result, tmp_path / "results.json")
    data = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert schemas.validate("results", data) == []
    figure = next(r for r in data["requirements"] if r["id"] == "EDIT-009")["figures"][0]
    assert figure["replay"] == "replay-EDIT-009.py"
    assert (tmp_path / "replay-EDIT-009.py").is_file()
    # The report, rendered after results.json, links it.
    assert '<a href="replay-EDIT-009.py" download>' in render_section(result)
    bad = copy.deepcopy(data)
    next(r for r in bad["requirements"] if r["id"] == "EDIT-009")["figures"][0]["kind"] = "seq"
    assert schemas.validate("results", bad) != []


# --- the script, run for real ---------------------------------------------------------------


def conversation(url_template: str) -> dict[str, Any]:
    """A sequence over the demo target's rooms (main, other) and accounts (member, member2): a
    message, another user's edit of it (refused), its author's edit, a delete of an id that
    never existed, a vanished and a reconnected connection, the delete, a close."""
    target = demo_target_dict(url_template)
    host, rooms = target["accounts"]["host"]["username"], target["rooms"]

    def url(room: str) -> str:
        return url_template.replace("{host}", host).replace("{room}", rooms[room])

    def conn(name: str, role: str, room: str) -> dict[str, Any]:
        user = target["accounts"][role]["username"]
        return {"name": name, "role": role, "user": user, "room": room, "url": url(room)}

    harness_id = str(uuid.uuid4())  # the id in the harness's own run: the script learns its own
    body = HOSTILE + " " + uuid.uuid4().hex
    stamp = "2026-12-07T15:00:00.000Z"

    def step(n: int, do: str, name: str, expect: list[Any], **more: Any) -> dict[str, Any]:
        return {"n": n, "do": do, "conn": name, **more, "expect": expect, "observed": [],
                "ok": True, "note": ""}  # fmt: skip

    both = ("c1", "c2")
    steps = [
        step(1, "connect", "c1", [], room="main"),
        step(2, "connect", "c2", [], room="main"),
        step(3, "connect", "c3", [], room="other"),
        step(4, "send", "c1",
             [{"conn": c, "event": "new", "message": "m1", "body": body} for c in both],
             frame={"type": "text", "message": body, "timestamp": stamp}, creates="m1"),
        step(5, "edit", "c2", [{"conn": "c2", "error": [EDIT_OWN]}], message="m1",
             frame={"type": "update", "messageId": harness_id, "message": "hijacked"}),
        step(6, "edit", "c1", [{"conn": c, "event": "update", "message": "m1", "body": "fixed ✓"}
                               for c in both],
             message="m1", frame={"type": "update", "messageId": harness_id, "message": "fixed ✓"}),
        step(7, "delete", "c1", [{"conn": "c1", "error": [NOT_FOUND]}], message="m9",
             frame={"type": "delete", "messageId": ZERO}),
        step(8, "vanish", "c2", []),
        step(9, "reconnect", "c4", [], **{"from": "c3", "room": "main"}),
        step(10, "delete", "c1",
             [{"conn": c, "event": "delete", "message": "m1"} for c in ("c1", "c4")],
             message="m1", frame={"type": "delete", "messageId": harness_id}),
        step(11, "close", "c1", []),
    ]  # fmt: skip
    return {
        "kind": "sequence",
        "requirement": "EDIT-005",
        "sequences": 3,
        "steps_run": 30,
        "failed_step": 5,
        "auth": {"transport": "query", "param": target["auth"]["name"], "scheme": None,
                 "subprotocol": None},
        "origin": None,
        "header_names": [],
        "connections": [conn("c1", "member", "main"), conn("c2", "member2", "main"),
                        conn("c3", "member", "other"), conn("c4", "member2", "main")],
        "steps": steps,
        "witness": ["step 5: c2 got update m1 \"hijacked\""],
    }  # fmt: skip


def tokens(url_template: str) -> dict[str, str]:
    target = parse(demo_target_dict(url_template), env={})
    minter = Minter(target.auth)
    return {
        replay_runtime.token_variable(role): minter.valid(target.accounts[role])
        for role in ("member", "member2")
    }


def replay(
    tmp_path: Path, figure: Mapping[str, Any], env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    written = replay_script.write_replays(
        {"requirements": [{"id": figure["requirement"], "figures": [dict(figure)]}]}, tmp_path
    )
    path = tmp_path / written[str(figure["requirement"])]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EDUSPHERE_")}
    return subprocess.run(
        [sys.executable, str(path), "--timeout", STEP_TIMEOUT],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=RUN_TIMEOUT,
        env={**clean, "PYTHONIOENCODING": "utf-8", **env},
        cwd=tmp_path,
        check=False,
    )


@pytest.fixture(scope="module")
def clean_server() -> Iterator[ServerThread]:
    srv = ServerThread(demo_config(database=":memory:")).start()
    yield srv
    srv.stop()


def test_the_replay_passes_against_a_correct_server(
    clean_server: ServerThread, tmp_path: Path
) -> None:
    env = tokens(clean_server.url_template)
    done = replay(tmp_path, conversation(clean_server.url_template), env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1].startswith("PASS") and len(lines) == 12
    assert lines[4].startswith('step 5: edit c2 m1 "hijacked"') and lines[4].endswith(" ok")
    assert all(t not in done.stdout + done.stderr for t in env.values())


def test_the_replay_fails_at_the_step_a_faulty_server_breaks(tmp_path: Path) -> None:
    srv = ServerThread(demo_config(database=":memory:", faults=frozenset({"edit-others"}))).start()
    try:
        env = tokens(srv.url_template)
        done = replay(tmp_path, conversation(srv.url_template), env)
    finally:
        srv.stop()
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:4]] == ["step 1", "step 2", "step 3", "step 4"]
    assert lines[-1].startswith(f'FAIL at step 5: expected c2 to get the error "{EDIT_OWN}"; got ')
    assert '"action": "update"' in lines[-1] and '"hijacked"' in lines[-1]
    assert "step 6" not in done.stdout
    assert all(t not in done.stdout + done.stderr for t in env.values())


#: Each way a token travels (the figure's ``auth`` and the server that takes only it), and a
#: server with habits (a history and presence frames: neither an event nor an error).
VARIANTS = {
    "cookie": (
        {"transport": "cookie", "param": "jwt_c", "scheme": None, "subprotocol": None},
        {"transports": frozenset({"cookie"}), "token_name": "jwt_c"},
    ),
    "header": (
        {"transport": "header", "param": "X-Auth", "scheme": "Token", "subprotocol": None},
        {"transports": frozenset({"header"}), "header_name": "X-Auth", "header_scheme": "Token"},
    ),
    "subprotocol": (
        {"transport": "subprotocol", "param": None, "scheme": None, "subprotocol": "chat.v1"},
        {"transports": frozenset({"subprotocol"}), "subprotocol_name": "chat.v1"},
    ),
    "habits": (None, {"history": 5, "presence": True}),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_replay_places_the_token_as_auth_says_and_skips_other_frames(
    variant: str, tmp_path: Path
) -> None:
    auth, settings = VARIANTS[variant]
    srv = ServerThread(demo_config(database=":memory:", **settings)).start()
    try:
        figure = conversation(srv.url_template)
        if auth is not None:
            figure["auth"] = auth
        env = tokens(srv.url_template)
        done = replay(tmp_path, figure, env)
    finally:
        srv.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith("PASS")


def test_the_handshake_places_token_headers_and_origin() -> None:
    conn = {"name": "c1", "role": "member", "url": "wss://h.example/ws/chat/a/g/?x=1"}
    figure: dict[str, Any] = {
        "auth": {"transport": "query", "param": "tok", "scheme": None, "subprotocol": None},
        "origin": "https://app.example",
        "header_names": ["X-Api-Key"],
        "connections": [conn],
    }
    env = {"EDUSPHERE_TOKEN_MEMBER": "T0KEN-1", "EDUSPHERE_HEADERS": '{"X-Api-Key": "k3y-v"}'}
    settings = replay_runtime.Settings.from_env(figure, env)
    url, kwargs = replay_runtime.handshake(figure, conn, settings, 3.0)
    assert url == "wss://h.example/ws/chat/a/g/?x=1&tok=T0KEN-1"
    assert kwargs["additional_headers"] == [("X-Api-Key", "k3y-v")]
    assert kwargs["origin"] == "https://app.example" and kwargs["open_timeout"] == 3.0
    assert kwargs["ssl"] is not None and kwargs["subprotocols"] is None
    figure["auth"] = {"transport": "header", "param": "Authorization", "scheme": None}
    _url, kwargs = replay_runtime.handshake(figure, conn, settings)
    assert ("Authorization", "T0KEN-1") in kwargs["additional_headers"]
    figure["auth"] = {"transport": "subprotocol", "subprotocol": None}
    assert replay_runtime.handshake(figure, conn, settings)[1]["subprotocols"] == ["T0KEN-1"]
    assert settings.scrub("x T0KEN-1 k3y-v") == "x <token> <token>"
    for broken, says in [
        ({"EDUSPHERE_TOKEN_MEMBER": "t"}, "EDUSPHERE_HEADERS is not set"),
        ({**env, "EDUSPHERE_HEADERS": "[1]"}, "EDUSPHERE_HEADERS is not a JSON object"),
        ({**env, "EDUSPHERE_HEADERS": "{}"}, "no string value for the header X-Api-Key"),
        ({**env, "EDUSPHERE_CA": "/no/such/ca.pem"}, "EDUSPHERE_CA: cannot read"),
    ]:
        with pytest.raises(replay_runtime.Usage, match=re.escape(says)):
            replay_runtime.Settings.from_env(figure, broken)


def test_a_missing_token_is_a_usage_problem_in_one_line(
    clean_server: ServerThread, tmp_path: Path
) -> None:
    env = tokens(clean_server.url_template)
    del env["EDUSPHERE_TOKEN_MEMBER2"]
    done = replay(tmp_path, conversation(clean_server.url_template), env)
    assert done.returncode == 2
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1
    assert "EDUSPHERE_TOKEN_MEMBER2 is not set" in done.stderr and "Traceback" not in done.stderr


def test_an_unreachable_server_is_a_usage_problem_in_one_line(tmp_path: Path) -> None:
    template = f"ws://127.0.0.1:{closed_port()}/ws/chat/{{host}}/{{room}}"
    env = tokens(template)
    done = replay(tmp_path, conversation(template), env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1
    assert "cannot reach ws://127.0.0.1:" in done.stderr
    assert all(t not in done.stderr for t in env.values())
