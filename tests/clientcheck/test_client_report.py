"""A client-check run in the core results model, and its reports, from recorded attempts alone.

No client, no socket, no clock: a scenario's recording is written out by hand (times in ms), then
judged and rendered like a real run's. The files are read back through :func:`read_reports`,
which holds the JSON to schemas/results.json.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from harness import catalogue, schemas
from harness.client.play import ScenarioRun
from harness.client.results import ClientRun, evaluate, summarise
from harness.client.scenarios import Settings, scenario_by_name
from harness.core.results import (
    EXIT_INCOMPLETE,
    EXIT_NONCONFORMANT,
    EXIT_OK,
    RunResult,
)
from harness.render.client_report import render_html, write_reports
from harness.render.terminal import summary_lines
from harness.wire.serve import AttemptRecord, FrameRecord
from tests.clientcheck.reports import read_reports

ROOM = "/ws/chat/alice/general"
FRAME = '{"type": "text", "message": "hello"}'
SETTINGS = Settings(base_ms=100, tolerance_ms=50, command=("client",), scenarios=("unclean-drop",))
TIMEOUT = "the overall timeout (1 s) was reached during unclean-drop"


def unclean_drop(reconnect_ms: float, incomplete: str | None = None) -> ClientRun:
    """The unclean-drop scenario: dropped at 50 ms, one reconnection at ``reconnect_ms``."""
    first = AttemptRecord(0, 5.0, ROOM, "drop", "accepted", 101, "dropped", 50.0)
    first.frames.append(FrameRecord(20.0, FRAME))
    second = AttemptRecord(1, reconnect_ms, ROOM, "hold", "accepted", 101, "held", None)
    second.frames.append(FrameRecord(reconnect_ms + 10, FRAME))
    run = ScenarioRun(
        scenario_by_name("unclean-drop"),
        f"ws://127.0.0.1:1{ROOM}",
        1,
        ("drop", "hold"),
        [first, second],
        observed_until_ms=900.0,
        incomplete=incomplete,
    )
    cat = catalogue.load()
    scenario = evaluate(run, SETTINGS, cat.scoped("client"))
    return summarise(
        SETTINGS, cat, [scenario], incomplete, started="2026-11-29T18:00:00Z", duration_s=0.9
    )


@pytest.mark.parametrize(
    ("reconnect_ms", "incomplete", "status", "word"),
    [
        (150.0, None, EXIT_OK, "CONFORMANT"),
        (400.0, None, EXIT_NONCONFORMANT, "NON-CONFORMANT"),
        (150.0, TIMEOUT, EXIT_INCOMPLETE, "INCOMPLETE"),
    ],
    ids=["on-time", "late", "cut-short"],
)
def test_a_run_is_a_core_run_result_with_the_exit_status_of_every_mode(
    tmp_path: Path, reconnect_ms: float, incomplete: str | None, status: int, word: str
) -> None:
    run = unclean_drop(reconnect_ms, incomplete)
    assert isinstance(run.result, RunResult)
    assert run.result.mode == "client"
    assert (run.exit_status, run.result.verdict_word) == (status, word)
    write_reports(run, tmp_path)
    data = read_reports(tmp_path, status)
    assert data["verdict"] == word
    assert data["reason"] == incomplete == data["incomplete"]
    assert [r["id"] for r in data["requirements"]] == [
        r.id for r in catalogue.load().scoped("client")
    ]
    assert data["requirements"][0]["tests"] == ["unclean-drop"]
    html = (tmp_path / "client-compliance.html").read_text(encoding="utf-8")
    assert f'data-verdict="{word}"' in html
    assert summary_lines(run.result)[-1].startswith(f"verdict: {word} against client")


def test_a_late_reconnection_fails_client_002_with_its_evidence(tmp_path: Path) -> None:
    run = unclean_drop(400.0)
    assert run.failed_musts == ["CLIENT-002"]
    scenario = run.scenarios[0]
    assert scenario.verdicts["CLIENT-002"].verdict == "failed"
    assert scenario.verdicts["CLIENT-001"].verdict == "passed"
    write_reports(run, tmp_path)
    data = read_reports(tmp_path, EXIT_NONCONFORMANT)
    (late,) = [r for r in data["requirements"] if r["id"] == "CLIENT-002"]
    assert late["reason"].startswith("[unclean-drop] attempt 1 (#1) at 400 ms")
    assert late["details"] == [late["reason"]]
    (finding,) = [f for f in data["scenarios"][0]["findings"] if f["requirement"] == "CLIENT-002"]
    assert (finding["verdict"], finding["attempt"]) == ("failed", 1)
    html = render_html(run)
    assert html.count("<svg") == 1 and "FAILED" in html and "NON-CONFORMANT" in html


def test_a_requirement_no_scenario_exercises_is_not_tested_not_passed() -> None:
    run = unclean_drop(150.0)
    assert run.verdicts["CLIENT-006"].verdict == "not_tested"
    # Only unclean-drop ran (--scenario): CLIENT-006 is out of the run's scope, not a gap.
    assert run.verdicts["CLIENT-006"].reason == "not exercised by the scenarios chosen (--scenario)"
    assert not run.verdicts["CLIENT-006"].selected
    assert run.scenarios[0].verdicts["CLIENT-006"].reason == "not exercised by this scenario"


def test_requirements_the_chosen_scenarios_leave_out_are_out_of_scope_in_every_report(
    tmp_path: Path,
) -> None:
    run = unclean_drop(150.0)
    left_out = [r.requirement.id for r in run.result.requirements if not r.selected]
    assert "CLIENT-006" in left_out
    write_reports(run, tmp_path)
    data = read_reports(tmp_path, EXIT_OK)
    must = data["summary"]["MUST"]
    out = [r for r in data["requirements"] if r.get("in_scope") is False]
    assert [r["id"] for r in out] == left_out
    assert {r["verdict"] for r in out} == {"not_tested"}  # the verdict stays
    assert sum(c["out_of_scope"] for c in data["summary"].values()) == len(left_out)
    assert must["not_tested"] == 0
    reason = "not exercised by the scenarios chosen (--scenario)"
    lines = summary_lines(run.result)
    assert lines[0].endswith("out of scope")
    assert lines[1].split()[-1] == str(must["out_of_scope"])
    html = (tmp_path / "client-compliance.html").read_text(encoding="utf-8")
    row = html[html.index('<tr id="req-CLIENT-006"') :].split("</tr>")[0]
    assert 'data-verdict="not_tested" data-scope="out"' in row
    assert f'title="{reason}">out of scope</span>' in row and "not tested" not in row
    assert f"{len(left_out)} requirements out of scope: {reason} ({len(left_out)})." in html
    assert f"{must['out_of_scope']} out of scope" in html  # the banner's counts
    assert 'data-verdict="out_of_scope">' in html  # the summary table's column
    junit = (tmp_path / "client-junit.xml").read_text(encoding="utf-8")
    assert f'message="out of scope: {reason}" type="out_of_scope"' in junit


def client_json() -> dict[str, Any]:
    return copy.deepcopy(unclean_drop(150.0).as_json())


@pytest.mark.parametrize("key", ["settings", "scenarios"])
def test_the_schema_requires_the_client_part_of_a_client_file(key: str) -> None:
    data = client_json()
    assert schemas.validate("results", data) == []
    del data[key]
    assert [v.message for v in schemas.validate("results", data)] == [
        f"{key!r} is a required property"
    ]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("scenarios", 0, "attempts", 0, "index"), "0"),
        (("scenarios", 0, "findings", 0, "verdict"), "known"),
        (("scenarios", 0, "verdicts", "CLIENT-001", "verdict"), "ok"),
        (("settings", "max_attempts"), 0),
        (("exit_status",), 3),
        (("verdict",), "PASSED"),
        (("mode",), "load"),
    ],
)
def test_the_schema_catches_a_broken_client_file(path: tuple[Any, ...], value: object) -> None:
    data = client_json()
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert schemas.validate("results", data) != []


def test_a_server_file_needs_no_client_part_and_no_mode() -> None:
    data = client_json()
    for key in ("mode", "settings", "scenarios"):
        del data[key]
    assert schemas.validate("results", data) == []
    data["mode"] = "server"
    assert schemas.validate("results", data) == []
