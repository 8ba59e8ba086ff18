"""The HTML compliance report (harness/render/server_*.py), checked end to end through the CLI.

Two runs, each once per module: the main job against the bundled server (``--only AUTH,SEND``),
and a run against a reference server started with the ``not-found-typo`` fault
(``--only EDIT,DEL``); and the default run, once a session (:func:`tests.support.default_run`,
which the README's test reads too). The HTML is read back with :mod:`html.parser` and compared
with results.json; Debian's chromium renders it (screenshot, DOM dump) when it is installed.
"""

from __future__ import annotations

import html as html_mod
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness import redact
from harness.catalogue import load as load_catalogue
from harness.core import results as results_mod
from harness.core.delivery import Receiver, Sent, judge_burst
from harness.render import server_report as report_mod
from harness.render.figures import render_figures
from harness.render.html import esc
from harness.render.server_detail import PASSED_CHARS, render_transcript
from harness.render.server_report import row_extra_html
from harness.render.server_section import display_target, render_section
from reference_server.demo import DEMO_SECRET, demo_config, demo_target_dict
from reference_server.runner import ServerThread
from tests import support
from tests.support import write_target

CLI = Path(sys.executable).with_name("edusphere-conformance")
CHROMIUM = "/usr/bin/chromium"
RUN_TIMEOUT = 120.0
BROWSER_TIMEOUT = 60.0
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]*\.")
SECRET_ENV = "EDUSPHERE_REPORT_TEST_SECRET"


# --- running the CLI ------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    out: str
    dir: Path

    @property
    def html(self) -> str:
        return (self.dir / "compliance.html").read_text(encoding="utf-8")

    @property
    def results(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.dir / "results.json").read_text("utf-8"))
        return data


def run_cli(report_dir: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    proc = subprocess.run(
        [str(CLI), "run", "--report-dir", str(report_dir), *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env={**os.environ, **(env or {})},
        cwd=report_dir.parent,
    )
    return Run(proc.returncode, proc.stdout + proc.stderr, report_dir)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The main job against the bundled reference server, two areas."""
    return run_cli(tmp_path_factory.mktemp("clean") / "reports", "--only", "AUTH,SEND")


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """A run against a reference server whose not-found error lacks its period."""
    base = tmp_path_factory.mktemp("faulty")
    config = demo_config(database=str(base / "db.sqlite3"), faults=frozenset({"not-found-typo"}))
    with ServerThread(config) as srv:
        target = demo_target_dict(srv.url_template)
        target["auth"]["secret"] = "${" + SECRET_ENV + "}"
        write_target(base / "target.toml", target)
        yield run_cli(
            base / "reports",
            "--target",
            str(base / "target.toml"),
            "--only",
            "EDIT,DEL",
            env={SECRET_ENV: DEMO_SECRET},
        )


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The default run: every suite against the bundled reference server; the session's one
    (tests/test_readme.py runs the README's command, and reads it too)."""
    done, cwd = support.default_run(tmp_path_factory)
    return Run(done.returncode, done.stdout + done.stderr, cwd / "reports")


# --- reading the HTML back ------------------------------------------------------------------


class Page(HTMLParser):
    """The conformance section's data attributes, read back from the HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.summary: dict[str, dict[str, int]] = {}
        self.rows: dict[str, dict[str, str]] = {}
        self.details: dict[str, str] = {}
        self.verdict = ""
        #: Filter buttons: data-filter -> label; badges: requirement -> (label, title);
        #: tallies: area -> text.
        self.filters: dict[str, str] = {}
        self.badges: dict[str, tuple[str, str]] = {}
        self.tallies: dict[str, str] = {}
        self._grab: tuple[str, str, str] | None = None  # (kind, key, title) of the text read
        self._row = ""
        self._area = ""
        self._cell: tuple[str, str] | None = None
        self._detail: str | None = None
        self._depth = 0
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "td" and "data-level" in a and "data-verdict" in a:
            self._cell = (a["data-level"], a["data-verdict"])
            self._text = []
        elif tag == "tr" and "es-req" in a.get("class", "").split():
            self.rows[a["data-requirement"]] = a
            self._row = a["data-requirement"]
        elif tag == "button" and "data-filter" in a:
            self._grab, self._text = ("filter", a["data-filter"], ""), []
        elif tag == "details" and "data-area" in a:
            self._area = a["data-area"]
        elif tag == "span" and "es-tally" in a.get("class", "").split():
            self._grab, self._text = ("tally", self._area, ""), []
        elif tag in ("span", "a") and "es-badge" in a.get("class", "").split() and self._row:
            if self._row not in self.badges:
                self._grab, self._text = ("badge", self._row, a.get("title", "")), []
        elif tag == "tr" and "es-detail" in a.get("class", "").split():
            self._detail, self._depth, self._text = a["data-requirement"], 0, []
        elif tag == "div" and a.get("id") == "es-verdict":
            self.verdict = a["data-verdict"]
        if self._detail is not None and tag == "tr":
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self._grab is not None and (
            (self._grab[0] == "filter" and tag == "button")
            or (self._grab[0] == "badge" and tag in ("span", "a"))
            or (self._grab[0] == "tally" and tag == "h3")
        ):
            kind, key, title = self._grab
            text = "".join(self._text).strip()
            if kind == "filter":
                self.filters[key] = text
            elif kind == "badge":
                self.badges[key] = (text, title)
            else:
                self.tallies[key] = text
            self._grab = None
        if tag == "tr":
            self._row = ""
        if tag == "td" and self._cell is not None:
            level, verdict = self._cell
            self.summary.setdefault(level, {})[verdict] = int("".join(self._text).strip())
            self._cell = None
        if tag == "tr" and self._detail is not None:
            self._depth -= 1
            if self._depth == 0:
                self.details[self._detail] = "".join(self._text)
                self._detail = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None or self._detail is not None or self._grab is not None:
            self._text.append(data)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


def expected_summary(results: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {lvl: dict(counts) for lvl, counts in results["summary"].items()}


# --- the main job ---------------------------------------------------------------------------


def test_main_job_writes_a_report_whose_summary_matches_results_json(clean_run: Run) -> None:
    assert clean_run.code == 0, clean_run.out
    assert (clean_run.dir / "compliance.html").is_file()
    results = clean_run.results
    page = parse(clean_run.html)
    assert page.summary == expected_summary(results)
    assert page.verdict == "CONFORMANT"
    verdicts = {r["id"]: r["verdict"] for r in results["requirements"]}
    assert {rid: row["data-verdict"] for rid, row in page.rows.items()} == verdicts


def test_report_has_a_requirement_column_and_transcript_extras(clean_run: Run) -> None:
    text = clean_run.html
    assert '<th class="sortable" data-column-type="requirement">Requirement</th>' in text
    blob = re.search(r'data-jsonblob="([^"]*)"', text)
    assert blob is not None
    data = json.loads(html_mod.unescape(blob.group(1)))
    rows = [row for tests in data["tests"].values() for row in tests]
    assert rows and all(row["resultsTableRow"][1].startswith("<td") for row in rows)
    auth = next(row for row in rows if "test_missing_token_is_refused" in row["testId"])
    assert auth["requirement"] == "AUTH-001"
    extra = "".join(e["content"] for e in auth["extras"] if e["format_type"] == "html")
    assert "Transcript" in extra and "handshake refused" in extra


def test_report_is_self_contained(clean_run: Run) -> None:
    text = clean_run.html
    assert not re.search(r'<(?:script|link|img)[^>]+(?:src|href)="(?:https?:)?//', text)


def test_default_run_report_stays_under_1_mb(default_run: Run) -> None:
    # A browser on a CI artifact page must open it: a 2 MiB frame and a 1,200-frame flood
    # (RECON-002, through sixteen senders) are compacted, and passing tests embed less of their
    # transcripts (other tests' frames no check of theirs read are left out).
    assert default_run.code == 0, default_run.out
    size = (default_run.dir / "compliance.html").stat().st_size
    assert size < 1_000_000, f"compliance.html is {size:,} bytes"
    flood = r"[\d,]{3,} (more sent like this|more received like this|entries left out)"
    assert re.search(flood, default_run.html)  # the flood
    assert "characters in all)" in default_run.html  # the oversized frame


# --- out of scope: counted, labelled and filtered apart -------------------------------------

NODE_REASON = "needs nodes = [...] in the target file (two or more nodes named one by one)"


def out_of_scope(results: dict[str, Any]) -> set[str]:
    return {
        r["id"]
        for r in results["requirements"]
        if r.get("in_scope") is False and r["verdict"] == "not_tested"
    }


def test_requirements_left_out_by_only_are_out_of_scope_not_not_tested(clean_run: Run) -> None:
    results = clean_run.results
    out = out_of_scope(results)
    assert out and all(r.split("-")[0] not in ("AUTH", "SEND") for r in out)
    assert sum(c["out_of_scope"] for c in results["summary"].values()) == len(out)
    assert results["summary"]["MUST"]["not_tested"] == 0
    page = parse(clean_run.html)
    assert page.summary == expected_summary(results)  # the summary table's own column
    assert {rid for rid, row in page.rows.items() if row.get("data-scope") == "out"} == out
    for rid in out:
        # NODE-*: the bundled server has one node, whatever the selection.
        why = NODE_REASON if rid.startswith("NODE-") else "not selected (--only)"
        assert page.rows[rid]["data-verdict"] == "not_tested"  # the verdict of results.json
        assert page.badges[rid] == ("out of scope", why)
        assert page.rows[rid]["title"] == f"out of scope: {why}"
    assert page.filters["out_of_scope"] == f"only out of scope ({len(out)})"
    assert page.filters["not_tested"] == "only not tested (0)"
    assert "out of scope" in page.tallies["ROOM"] and "not tested" not in page.tallies["ROOM"]
    sentence = (
        f"{len(out)} requirements out of scope: not selected (--only) ({len(out) - 3}); "
        f"{NODE_REASON} (3)."
    )
    assert sentence in clean_run.html


def test_default_run_counts_the_node_requirements_out_of_scope_everywhere(
    default_run: Run,
) -> None:
    assert default_run.code == 0, default_run.out
    results = default_run.results
    must = results["summary"]["MUST"]
    assert (must["not_tested"], must["out_of_scope"]) == (0, 3)
    assert out_of_scope(results) == {"NODE-001", "NODE-002", "NODE-003"}
    # The terminal: the table's own column, and the area's progress line.
    assert "level     passed  failed  not tested  known   n/a  out of scope" in default_run.out
    assert re.search(r"^MUST +\d+ +0 +0 +0 +0 +3$", default_run.out, re.M), default_run.out
    assert re.search(r"Across nodes +3 tests: 0 passed, 3 out of scope$", default_run.out, re.M)
    assert "verdict: CONFORMANT" in default_run.out
    page = parse(default_run.html)
    assert page.summary == expected_summary(results)
    assert page.summary["MUST"]["out_of_scope"] == 3 and page.summary["MUST"]["not_tested"] == 0
    assert page.badges["NODE-001"] == ("out of scope", NODE_REASON)
    assert page.tallies["NODE"] == "3 out of scope"
    assert page.filters["out_of_scope"] == "only out of scope (3)"
    assert f"3 requirements out of scope: {NODE_REASON} (3)." in default_run.html
    # The tests' own rows (pytest-html's table) say it too.
    blob = re.search(r'data-jsonblob="([^"]*)"', default_run.html)
    assert blob is not None
    data = json.loads(html_mod.unescape(blob.group(1)))
    (node,) = data["tests"]["suites/test_nodes.py::test_event_reaches_every_node"]
    extra = "".join(e["content"] for e in node["extras"] if e["format_type"] == "html")
    assert "es-v-out_of_scope" in extra and ">not tested<" not in extra
    junit = (default_run.dir / "junit.xml").read_text(encoding="utf-8")
    assert junit.count('type="out_of_scope"') == 3
    suite = junit[junit.index('<testsuite name="NODE: ') :].split("</testsuite>")[0]
    assert '<property name="out_of_scope" value="3" />' in suite
    assert f'message="out of scope: {NODE_REASON}"' in suite
    assert "<error" not in junit


# --- a faulty server ------------------------------------------------------------------------


def test_faulty_server_report_shows_the_broken_requirement(faulty_run: Run) -> None:
    assert faulty_run.code == 1, faulty_run.out
    results = faulty_run.results
    page = parse(faulty_run.html)
    assert page.summary == expected_summary(results)
    assert page.verdict == "NON-CONFORMANT"
    assert page.rows["EDIT-007"]["data-verdict"] == "failed"
    detail = page.details["EDIT-007"]
    assert "expected" in detail and "actual" in detail
    assert "Message not found." in detail  # what the seed says
    assert re.search(r"Message not found\b(?!\.)", detail)  # what the server said
    assert "handshake accepted: HTTP 101" in detail  # the transcript
    assert re.search(r"\d+\.\d ms", detail)


def test_failure_detail_is_also_an_extra_on_the_test_row(faulty_run: Run) -> None:
    blob = re.search(r'data-jsonblob="([^"]*)"', faulty_run.html)
    assert blob is not None
    data = json.loads(html_mod.unescape(blob.group(1)))
    failed = [
        row
        for tests in data["tests"].values()
        for row in tests
        if row["result"] == "Failed" and "EDIT-007" in row["requirement"]
    ]
    assert failed
    extra = "".join(e["content"] for e in failed[0]["extras"] if e["format_type"] == "html")
    assert "EDIT-007" in extra and "expected" in extra and "handshake accepted" in extra


# --- no secret anywhere -----------------------------------------------------------------------


@pytest.mark.parametrize("which", ["clean_run", "faulty_run"])
def test_no_token_or_secret_in_any_report(which: str, request: pytest.FixtureRequest) -> None:
    run: Run = request.getfixturevalue(which)
    for name in ("compliance.html", "junit.xml", "results.json"):
        text = (run.dir / name).read_text(encoding="utf-8")
        assert DEMO_SECRET not in text, name
        assert not JWT.search(text), f"{name}: {JWT.search(text)}"
    assert DEMO_SECRET not in run.out and not JWT.search(run.out)
    # Tokens were on the wire (in the query string) and are shown masked.
    assert re.search(r"token=(?:<|&lt;|&amp;lt;)redacted", run.html)


# --- rendering, in a browser -------------------------------------------------------------------


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("not tested: chromium not installed")
    return subprocess.run(
        [
            CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium")),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT,
    )


def test_rendered_report_screenshot_and_dom(faulty_run: Run, tmp_path: Path) -> None:
    url = (faulty_run.dir / "compliance.html").as_uri()
    png = tmp_path / "report.png"
    shot = chromium(tmp_path, "--window-size=1400,2000", f"--screenshot={png}", url)
    assert png.is_file(), shot.stderr[-2000:]
    assert png.stat().st_size > 20_000
    dom = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = parse(dom.stdout)
    assert page.summary == expected_summary(faulty_run.results)
    # The script moved the conformance section above pytest-html's own table, and the table
    # was rendered, with the Requirement column.
    assert dom.stdout.index('id="es-report"') < dom.stdout.index('id="results-table"')
    assert re.search(r'<td class="col-requirement"[^>]*>EDIT-007', dom.stdout)


def _filtered(tmp_path: Path, result: results_mod.RunResult, choice: str) -> set[str]:
    """The requirements whose rows stay visible after a click on filter ``choice``."""
    click = f"document.querySelector('.es-filter[data-filter={choice}]').click();"
    page = tmp_path / f"filter-{choice}.html"
    page.write_text(
        f"<!DOCTYPE html><html><head></head><body>{render_section(result)}"
        f"<script>{click}</script></body></html>",
        encoding="utf-8",
    )
    dom = chromium(tmp_path, "--virtual-time-budget=2000", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    rows = parse(dom.stdout).rows
    assert rows, dom.stdout[:2000]
    return {rid for rid, row in rows.items() if "hidden" not in row}


def test_the_out_of_scope_filter_shows_only_out_of_scope_rows(tmp_path: Path) -> None:
    record = results_mod.TestRecord(
        nodeid="suites/test_connection.py::test_a", requirements=("CONN-001",), outcome="passed"
    )
    result = results_mod.aggregate(
        [record],
        catalogue=load_catalogue(),
        selected={"CONN-001", "CONN-002"},
        target="x",
        started="2026-01-01T00:00:00Z",
    )
    out = {r.requirement.id for r in result.requirements if r.out_of_scope}
    assert "CONN-002" not in out and len(out) > 50
    assert _filtered(tmp_path, result, "out_of_scope") == out
    assert _filtered(tmp_path, result, "not_tested") == {"CONN-002"}


# --- units ------------------------------------------------------------------------------------


def test_frames_are_escaped_and_redacted() -> None:
    redact.register("s3cret-value-for-the-report-test")
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    text = render_transcript(
        [
            {"t_ms": 1.25, "conn": "bob", "dir": "<-", "text": '<script>alert("x")</script>'},
            {
                "t_ms": 2,
                "conn": "a",
                "dir": "->",
                "text": f"token={token} s3cret-value-for-the-report-test",
            },
        ]
    )
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert token not in text and "s3cret-value" not in text
    assert "1.2 ms" in text or "1.3 ms" in text
    assert esc('"<&>"') == "&quot;&lt;&amp;&gt;&quot;"


def test_a_passing_test_embeds_a_compacted_transcript() -> None:
    flood = [
        {
            "t_ms": i / 10,
            "conn": "member#1",
            "dir": "->",
            "text": f'{{"n": "{i:05d}"}} ' + "x" * 900,
        }
        for i in range(2000)
    ]
    record = results_mod.TestRecord(
        nodeid="suites/test_reconnect.py::test_flood",
        requirements=("RECON-002",),
        outcome="passed",
        transcript=[*flood, {"t_ms": 300.0, "conn": "member#1", "dir": "==", "text": "close"}],
    )
    extra = row_extra_html(
        record, results_mod.aggregate([record], catalogue=load_catalogue(), target="x").catalogue
    )
    assert len(extra) < 3 * PASSED_CHARS
    assert "2001 entries" in extra and "more sent like this" in extra and "close</p>" in extra


def test_target_is_shown_without_credentials() -> None:
    shown = display_target("wss://user:pw@chat.example.com/ws/chat/{host}/{room}?k=abc&t={token}")
    assert shown == "wss://chat.example.com/ws/chat/{host}/{room}?k=<redacted>&t={token}"
    assert display_target("<bundled reference server>") == "<bundled reference server>"


HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>\"' &amp;"


def hostile_records() -> list[results_mod.TestRecord]:
    frame = {"t_ms": 3.5, "conn": "<b>bob</b>", "dir": "<-", "text": HOSTILE}
    return [
        results_mod.TestRecord(
            nodeid="suites/test_edit.py::test_x[<i>]",
            requirements=("EDIT-007",),
            outcome="failed",
            failed_requirements=("EDIT-007",),
            kind="wrong answer",
            expected=HOSTILE,
            actual=HOSTILE,
            transcript=[frame],
        ),
        results_mod.TestRecord(
            nodeid="suites/test_connection.py::test_y",
            requirements=("CONN-005",),
            outcome="passed",
            observations={"CONN-005": [HOSTILE]},
            transcript=[frame],
        ),
        results_mod.TestRecord(
            nodeid="suites/test_send.py::test_z",
            requirements=("SEND-001",),
            outcome="skipped",
            message="not tested: " + HOSTILE,
        ),
    ]


def test_hostile_server_text_is_escaped_everywhere() -> None:
    records = hostile_records()
    result = results_mod.aggregate(
        records,
        catalogue=load_catalogue(),
        target="ws://x/<script>/{host}/{room}",
        started="2026-01-01T00:00:00Z",
    )
    section = render_section(result)
    assert section.count("<script") == 1  # the report's own script, nothing from the server
    assert "<img" not in section and "[<i>]" not in section and "<b>bob" not in section
    assert "test_x[&lt;i&gt;]" in section and "&lt;b&gt;bob" in section
    assert "&lt;img src=x onerror=alert(2)&gt;" in section
    for record in records:
        extra = row_extra_html(record, result.catalogue)
        assert "<script" not in extra and "<img" not in extra


def test_requirement_column_header_and_cells() -> None:
    header = ["<th>Result</th>", "<th>Test</th>"]
    report_mod.pytest_html_results_table_header(header)
    assert header[1] == '<th class="sortable" data-column-type="requirement">Requirement</th>'
    record = json.dumps({"requirements": ["SEND-001"], "failed": ["EVT-002"], "kind": "x"})
    report = pytest.TestReport(
        "suites/test_send.py::test_a",
        ("f", 1, "t"),
        {},
        "failed",
        None,
        "call",
        conformance=json.loads(record),
    )
    cells = ["<td>Failed</td>", "<td>id</td>"]
    report_mod.pytest_html_results_table_row(report, cells)
    assert re.fullmatch(r'<td class="col-requirement"[^>]*>SEND-001, EVT-002</td>', cells[1])
    plain = pytest.TestReport("tests/test_b.py::t", ("f", 1, "t"), {}, "passed", None, "call")
    cells = ["<td>Passed</td>", "<td>id</td>"]
    report_mod.pytest_html_results_table_row(plain, cells)
    assert cells[1] == '<td class="col-requirement"></td>'


# --- figures (LOAD-004, LOAD-002) -----------------------------------------------------------


def test_burst_figures_render_a_table_and_a_plot_that_show_the_loss() -> None:
    sent = [Sent(0, q, q * 0.01) for q in range(20)]
    whole = Receiver("<b>ok</b>", arrivals=[(0, q, q * 0.01 + 0.002) for q in range(20)])
    lossy = Receiver(
        "lossy", "node 2 (h:2)", arrivals=[(0, q, q * 0.01 + 0.003) for q in range(15)]
    )
    figures = judge_burst(sent, [whole, lossy]).figures
    html = render_figures([figures])
    assert html.count("<polyline") == 2 and "<svg" in html
    assert "&lt;b&gt;ok&lt;/b&gt;" in html and "<b>ok</b>" not in html
    assert (
        '<tr class="es-fig-bad"><td>lossy <small>node 2 (h:2)</small></td><td>15 / 20</td>' in html
    )
    assert 'stroke="#cf222e"' in html  # the lossy connection's line is red


def test_lag_figures_render_one_line() -> None:
    html = render_figures(
        [
            {
                "kind": "lag",
                "messages": 10,
                "bytes": 2**21,
                "lagged_s": 1.5,
                "delivered": 7,
                "missing": 3,
                "closed": None,
            }
        ]
    )
    assert "7 of 10 events (2.0 MiB) after lagging 1.5 s; missing 3" in html
    assert render_figures([{"kind": "unknown"}]) == ""
