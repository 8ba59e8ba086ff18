"""Durations everywhere (issue 28): each requirement's, each test's, the run's time budget.

Most checks build a :class:`~harness.core.results.RunResult` from test records with durations
written out by hand (no server, no clock) and read back what results.json, junit.xml, the
terminal summary and the HTML section say of them. One run of a small area against the bundled
server proves the durations are measured and reach every file.
"""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from harness import catalogue, schemas
from harness.client.play import ScenarioRun
from harness.client.results import evaluate, summarise
from harness.client.scenarios import Settings, scenario_by_name
from harness.core.catalogue import Catalogue, Requirement
from harness.core.failures import UsageError
from harness.core.results import Finding, RunResult, aggregate, fold, id_runs
from harness.core.results import TestRecord as Record  # not "Test*": pytest would collect it
from harness.render import junit
from harness.render.server_section import SLOWEST_SHOWN, render_section
from harness.render.terminal import summary_lines
from harness.server.options import DEFAULT_TIME_BUDGET_S
from harness.server.run import build
from harness.wire.serve import AttemptRecord
from tests.support import ROOT, SUITES, assert_usage_error, cli

CAT = Catalogue(
    version="0.0.1",
    areas={"AAA": "Area A", "BBB": "Area B"},
    requirements=(
        Requirement("AAA-001", "MUST", "Must one.", "seed"),
        Requirement("AAA-002", "MUST", "Must two.", "seed"),
        Requirement("AAA-003", "SHOULD", "Should three.", "notes"),
        Requirement("BBB-001", "MUST", "Must four.", "seed"),
        Requirement("BBB-002", "SHOULD", "Should five.", "notes"),
    ),
)


def rec(
    nodeid: str, ids: tuple[str, ...], seconds: float, outcome: str = "passed", **extra: Any
) -> Record:
    return Record(nodeid=nodeid, requirements=ids, outcome=outcome, duration_s=seconds, **extra)


def requirement_of(case: ET.Element) -> str:
    """The requirement id of a junit.xml test case (its ``requirement`` property)."""
    prop = case.find("properties/property[@name='requirement']")
    assert prop is not None
    return prop.get("value", "")


def run(records: list[Record], **options: Any) -> RunResult:
    return aggregate(
        records, catalogue=CAT, started="2026-01-02T03:04:05Z", harness_version="9.9.9", **options
    )


def timed_run(duration_s: float = 5.0, budget: float | None = 20.0) -> RunResult:
    """Two tests of AAA-001 (one also of AAA-002), a failure blaming AAA-003 beyond its own,
    a skip of BBB-001; BBB-002 left out by the selection."""
    return run(
        [
            rec("suites/test_a.py::test_one", ("AAA-001", "AAA-002"), 1.5),
            rec("suites/test_a.py::test_two", ("AAA-001",), 0.5),
            rec(
                "suites/test_a.py::test_three",
                ("AAA-002",),
                2.25,
                "failed",
                failed_requirements=("AAA-003",),
                kind="wrong answer",
                expected="x",
                actual="y",
            ),
            rec("suites/test_b.py::test_four", ("BBB-001",), 3.0, "skipped", message="no room"),
        ],
        selected={"AAA-001", "AAA-002", "AAA-003", "BBB-001"},
        duration_s=duration_s,
        time_budget_s=budget,
    )


# --- each requirement's duration ----------------------------------------------------------


def test_a_requirement_lasts_as_long_as_the_tests_that_passed_or_failed_it() -> None:
    result = timed_run()
    durations = {r.requirement.id: r.duration_s for r in result.requirements}
    # test_three failed on AAA-003 before it came to AAA-002: it tested AAA-003 only.
    assert durations == {
        "AAA-001": 2.0,  # test_one and test_two: a test of two requirements counts for each
        "AAA-002": 1.5,
        "AAA-003": 2.25,
        "BBB-001": 0.0,  # only skipped: not tested
        "BBB-002": 0.0,  # out of scope, nothing ran
    }
    assert result.by_id("AAA-001").test_durations == {
        "suites/test_a.py::test_one": 1.5,
        "suites/test_a.py::test_two": 0.5,
    }


def test_a_failed_test_counts_for_the_requirements_it_proved_met() -> None:
    record = rec(
        "t::held",
        ("AAA-001", "AAA-002"),
        4.0,
        "failed",
        failed_requirements=("AAA-002",),
        held_requirements=("AAA-001",),
    )
    result = run([record])
    assert [result.by_id(rid).duration_s for rid in ("AAA-001", "AAA-002", "AAA-003")] == [
        4.0,
        4.0,
        0.0,
    ]


def test_results_json_gives_every_requirement_its_duration_and_lists_the_tests() -> None:
    data = timed_run().as_json()
    assert schemas.validate("results", data) == []
    assert {r["id"]: r["duration_s"] for r in data["requirements"]} == {
        "AAA-001": 2.0,
        "AAA-002": 1.5,
        "AAA-003": 2.25,
        "BBB-001": 0.0,
        "BBB-002": 0.0,
    }
    assert data["tests"] == [
        {
            "nodeid": "suites/test_b.py::test_four",
            "outcome": "skipped",
            "duration_s": 3.0,
            "requirements": ["BBB-001"],
        },
        {
            "nodeid": "suites/test_a.py::test_three",
            "outcome": "failed",
            "duration_s": 2.25,
            "requirements": ["AAA-002", "AAA-003"],
        },
        {
            "nodeid": "suites/test_a.py::test_one",
            "outcome": "passed",
            "duration_s": 1.5,
            "requirements": ["AAA-001", "AAA-002"],
        },
        {
            "nodeid": "suites/test_a.py::test_two",
            "outcome": "passed",
            "duration_s": 0.5,
            "requirements": ["AAA-001"],
        },
    ]
    named = {t for r in data["requirements"] for t in r["tests"]}
    assert named <= {t["nodeid"] for t in data["tests"]}


def test_tests_of_the_same_duration_are_ordered_by_node_id() -> None:
    result = run([rec("t::b", ("AAA-001",), 1.0), rec("t::a", ("AAA-002",), 1.0)])
    assert [t["nodeid"] for t in result.as_json()["tests"]] == ["t::a", "t::b"]


@pytest.mark.parametrize(("took", "over"), [(20.5, True), (20.0, False), (3.0, False)])
def test_results_json_says_the_budget_and_whether_the_run_went_over_it(
    took: float, over: bool
) -> None:
    data = timed_run(duration_s=took).as_json()
    assert (data["time_budget_s"], data["over_budget"]) == (20.0, over)
    assert schemas.validate("results", data) == []


def test_a_result_without_a_budget_writes_neither_key() -> None:
    data = timed_run(budget=None).as_json()
    assert "time_budget_s" not in data and "over_budget" not in data
    assert schemas.validate("results", data) == []


def test_client_mode_requirements_last_as_long_as_their_scenarios() -> None:
    """client-check: a requirement's duration is the observed time of the scenarios that
    passed or failed it; the file keeps no top-level ``tests`` (that is server mode's)."""
    room = "/ws/chat/alice/general"
    attempts = [
        AttemptRecord(0, 5.0, room, "drop", "accepted", 101, "dropped", 50.0),
        AttemptRecord(1, 150.0, room, "hold", "accepted", 101, "held", None),
    ]
    recorded = ScenarioRun(
        scenario_by_name("unclean-drop"),
        f"ws://127.0.0.1:1{room}",
        1,
        ("drop", "hold"),
        attempts,
        observed_until_ms=900.0,
    )
    settings = Settings(base_ms=100, tolerance_ms=50, command=("c",), scenarios=("unclean-drop",))
    cat = catalogue.load()
    scenario = evaluate(recorded, settings, cat.scoped("client"))
    checked = summarise(settings, cat, [scenario], None, duration_s=1.0)
    result = checked.result
    exercised = [r for r in result.requirements if r.verdict in ("passed", "failed")]
    assert exercised
    assert {r.duration_s for r in exercised} == {0.9}
    assert {r.duration_s for r in result.requirements if r.verdict == "not_tested"} <= {0.0}
    data = checked.as_json()
    assert "tests" not in data
    assert {r["duration_s"] for r in data["requirements"] if r["verdict"] == "passed"} == {0.9}
    assert schemas.validate("results", data) == []


def test_fold_counts_each_source_once_per_requirement() -> None:
    findings = [
        Finding("AAA-001", "passed", source="s1"),
        Finding("AAA-001", "passed", "again", source="s1"),
        Finding("AAA-001", "not_tested", source="s2"),
        Finding("AAA-002", "failed", "broke", source="s2"),
    ]
    results = fold(findings, CAT.requirements, durations={"s1": 0.25, "s2": 1.0})
    assert [r.test_durations for r in results[:3]] == [{"s1": 0.25}, {"s2": 1.0}, {}]


# --- the schema -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("requirements", 0, "duration_s"), -0.1),
        (("requirements", 0, "duration_s"), "1.0"),
        (("time_budget_s",), 0),
        (("time_budget_s",), -5),
        (("over_budget",), "no"),
        (("tests", 0, "duration_s"), -1),
        (("tests", 0, "outcome"), "error"),
        (("tests", 0, "requirements"), ["aaa-1"]),
        (("tests",), {"t::a": 1.0}),
    ],
)
def test_the_schema_rejects_broken_durations(path: tuple[Any, ...], value: object) -> None:
    data = timed_run().as_json()
    assert schemas.validate("results", data) == []
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert schemas.validate("results", data) != []


@pytest.mark.parametrize("field", ["nodeid", "outcome", "duration_s", "requirements"])
def test_the_schema_requires_every_key_of_a_test(field: str) -> None:
    data = copy.deepcopy(schemas.schema("results")["examples"][0])
    assert schemas.validate("results", data) == []
    del data["tests"][0][field]
    assert [v.pointer for v in schemas.validate("results", data)] == ["/tests/0"]


def test_the_schema_describes_each_new_key() -> None:
    schema = schemas.schema("results")
    described = [
        schema["properties"]["time_budget_s"],
        schema["properties"]["over_budget"],
        schema["properties"]["tests"],
        schema["$defs"]["requirement"]["properties"]["duration_s"],
        *schema["$defs"]["test"]["properties"].values(),
    ]
    assert all(len(entry.get("description", "")) > 20 for entry in described)


# --- shortening requirement ids -----------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "word"),
    [
        (("LOAD-002",), "LOAD-002"),
        (("CONV-004", "CONV-001", "CONV-003", "CONV-002"), "CONV-001..004"),
        (("AUTH-001", "AUTH-002"), "AUTH-001,AUTH-002"),
        (("AUTH-001", "AUTH-003"), "AUTH-001,AUTH-003"),
        (
            ("EDIT-001", "EDIT-002", "EDIT-003", "EDIT-005", "DEL-001", "DEL-001"),
            "DEL-001,EDIT-001..003,EDIT-005",
        ),
        (("AUTH-009", "AUTH-010", "AUTH-011", "BCAST-001"), "AUTH-009..011,BCAST-001"),
        ((), ""),
    ],
)
def test_a_run_of_ids_is_shortened(ids: tuple[str, ...], word: str) -> None:
    assert id_runs(ids) == word


# --- the terminal ---------------------------------------------------------------------------


def seven_tests(duration_s: float, budget: float = 20.0) -> RunResult:
    records = [
        rec("suites/test_a.py::test_one", ("AAA-001", "AAA-002", "AAA-003"), 12.0),
        rec("suites/test_b.py::test_two[x]", ("BBB-001",), 45.06),
        *(rec(f"suites/test_b.py::test_small_{n}", ("BBB-002",), n / 10) for n in range(1, 6)),
    ]
    return run(records, duration_s=duration_s, time_budget_s=budget)


def test_over_budget_the_terminal_names_the_five_slowest_tests_before_the_verdict() -> None:
    lines = summary_lines(seven_tests(103.24))
    assert lines[-1].startswith("verdict: ")
    assert lines[-2] == (
        "the run took 103.2 s, over its budget of 20 s; the slowest: BBB-001 45.1 s"
        " (test_two[x]), AAA-001..003 12.0 s (test_one), BBB-002 500 ms (test_small_5),"
        " BBB-002 400 ms (test_small_4), BBB-002 300 ms (test_small_3)"
    )
    assert sum("over its budget" in line for line in lines) == 1


@pytest.mark.parametrize(
    ("took", "budget", "start"),
    [
        (0.503, 0.5, "the run took 0.503 s, over its budget of 0.5 s"),
        (20.04, 20.0, "the run took 20.04 s, over its budget of 20 s"),
        (61.0, 60.0, "the run took 61.0 s, over its budget of 60 s"),
    ],
)
def test_the_duration_over_the_budget_never_reads_as_the_budget(
    took: float, budget: float, start: str
) -> None:
    line = seven_tests(took, budget).budget_line()
    assert line is not None and line.startswith(start + "; the slowest: BBB-001 45.1 s")


def test_under_budget_the_terminal_says_nothing_more() -> None:
    under = summary_lines(seven_tests(19.9))
    assert not any("budget" in line or "slowest" in line for line in under)
    unbudgeted = seven_tests(19.9)
    unbudgeted.time_budget_s = None
    assert summary_lines(unbudgeted) == under


# --- junit.xml ------------------------------------------------------------------------------


def test_junit_times_each_requirement_and_each_area_once_per_test() -> None:
    root = ET.fromstring(junit.render(timed_run(duration_s=7.125)))
    assert root.get("time") == "7.125"
    assert {requirement_of(case): case.get("time") for case in root.iter("testcase")} == {
        "AAA-001": "2.000",
        "AAA-002": "1.500",
        "AAA-003": "2.250",
        "BBB-001": "0.000",  # skipped: not tested
        "BBB-002": "0.000",  # out of scope
    }
    suites = {s.get("name", "").split(":")[0]: s.get("time") for s in root.iter("testsuite")}
    # AAA: test_one (1.5, for two requirements, counted once) + test_two + test_three.
    assert suites == {"AAA": "4.250", "BBB": "0.000"}


# --- the HTML report ------------------------------------------------------------------------


def test_the_report_shows_each_requirements_duration_and_the_slowest_tests_folded() -> None:
    records = [rec(f"suites/test_a.py::test_{n:02d}", ("AAA-001",), n / 100) for n in range(12)]
    page = render_section(run(records, duration_s=1.0, time_budget_s=20.0))
    assert re.search(
        r'data-requirement="AAA-001"[^>]*>.*?class="es-dur" data-duration="0.660"', page
    )
    assert 'class="es-dur"' not in page.split('data-requirement="AAA-002"', 1)[1].split("</tr>")[0]
    slowest = re.search(r'<details class="es-slowest"( open)?[^>]*>(.*?)</details>', page, re.S)
    assert slowest is not None and slowest.group(1) is None  # collapsed
    shown = re.findall(r'<tr data-nodeid="([^"]+)" data-duration="([^"]+)"', slowest.group(2))
    assert len(shown) == SLOWEST_SHOWN == 10
    assert shown[0] == ("suites/test_a.py::test_11", "0.110")
    assert [float(d) for _, d in shown] == sorted((float(d) for _, d in shown), reverse=True)
    assert "es-over-budget" not in page and "within it" in page


def test_over_budget_the_report_header_names_the_slowest_tests() -> None:
    page = render_section(seven_tests(103.24))
    header = page.split("</header>", 1)[0]
    assert 'id="es-over-budget"' in header
    assert "over its budget of 20 s; the slowest: BBB-001 45.1 s (test_two[x])" in header


# --- the option -----------------------------------------------------------------------------


def test_the_budget_defaults_to_20_seconds_and_reaches_the_result() -> None:
    assert build().time_budget_s == DEFAULT_TIME_BUDGET_S == 20.0
    given = build(time_budget=1.5)
    assert given.build_result().time_budget_s == 1.5
    assert given.build_result().as_json()["time_budget_s"] == 1.5


@pytest.mark.parametrize("budget", [0.0, -1.0, math.nan, math.inf])
def test_a_budget_that_is_no_positive_number_is_refused(budget: float) -> None:
    with pytest.raises(
        UsageError, match=r"^--time-budget must be a number of seconds more than 0$"
    ):
        build(time_budget=budget)


def test_the_command_refuses_a_zero_budget_in_one_line(tmp_path: Path) -> None:
    line = assert_usage_error(cli("run", "--time-budget", "0", cwd=tmp_path, timeout=30))
    assert "--time-budget must be a number of seconds more than 0" in line
    assert not (tmp_path / "reports").exists()


def test_pytest_refuses_a_zero_budget_too(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(SUITES), "-o", "addopts=", "--time-budget=0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "--time-budget must be a number of seconds more than 0" in done.stderr


# --- one real run ---------------------------------------------------------------------------


def test_a_run_measures_its_tests_and_over_its_budget_names_the_slowest(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    done = cli(
        "run",
        "--only",
        "CONN",
        "--time-budget",
        "0.001",
        "--report-dir",
        str(reports),
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((reports / "results.json").read_text(encoding="utf-8"))
    assert schemas.validate("results", results) == []
    assert (results["time_budget_s"], results["over_budget"]) == (0.001, True)
    tests = results["tests"]
    assert tests and all(t["duration_s"] > 0 for t in tests)
    assert [t["duration_s"] for t in tests] == sorted(
        (t["duration_s"] for t in tests), reverse=True
    )
    tested = {r["id"]: r for r in results["requirements"] if r["verdict"] == "passed"}
    assert tested and all(r["duration_s"] > 0 for r in tested.values())
    root = ET.parse(reports / "junit.xml").getroot()
    for case in root.iter("testcase"):
        rid = requirement_of(case)
        assert (float(case.get("time", "-1")) > 0) == (rid in tested), rid
    conn = next(s for s in root.iter("testsuite") if s.get("name", "").startswith("CONN:"))
    assert float(conn.get("time", "0")) > 0
    lines = done.stdout.splitlines()
    verdict = next(i for i, line in enumerate(lines) if line.startswith("verdict: "))
    slowest = lines[verdict - 1]
    assert (
        slowest.startswith("the run took ")
        and ", over its budget of 0.001 s; the slowest: " in slowest
    )
    first = tests[0]["nodeid"].rsplit("::", 1)[-1]
    assert f"({first})" in slowest
    assert 'id="es-over-budget"' in (reports / "compliance.html").read_text(encoding="utf-8")
