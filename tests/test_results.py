"""The results model (harness/core/results.py): verdict rules, baselines, and results.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import catalogue as cat_mod
from harness import schemas
from harness.baseline import Baseline, BaselineError, load_baseline
from harness.core.catalogue import Catalogue, Requirement
from harness.core.results import RunResult, aggregate, stopped_before_tests
from harness.core.results import TestRecord as Record  # not "Test*": pytest would try to collect it
from harness.render.files import write_results_json
from harness.render.terminal import summary_lines

STARTED = "2025-01-02T03:04:05Z"


def small_catalogue() -> Catalogue:
    return Catalogue(
        version="0.0.1",
        areas={"AAA": "Area A", "BBB": "Area B", "CLI": "Client"},
        requirements=(
            Requirement("AAA-001", "MUST", "Must one.", "seed"),
            Requirement("AAA-002", "MUST", "Must two.", "seed"),
            Requirement("AAA-003", "SHOULD", "Should three.", "notes"),
            Requirement("BBB-001", "INFO", "Info one.", "observation"),
            Requirement("BBB-002", "SHOULD", "Should four.", "notes"),
            Requirement("CLI-001", "MUST", "Client one.", "seed", scope="client"),
        ),
    )


CAT = small_catalogue()


def passed(nodeid: str, *ids: str, **extra: Any) -> Record:
    return Record(nodeid=nodeid, requirements=ids, outcome="passed", **extra)


def failed(nodeid: str, ids: tuple[str, ...], blamed: tuple[str, ...], **extra: Any) -> Record:
    values: dict[str, Any] = {
        "kind": "wrong answer",
        "expected": "an echo",
        "actual": "nothing",
    } | extra
    return Record(
        nodeid=nodeid,
        requirements=ids,
        outcome="failed",
        failed_requirements=blamed,
        **values,
    )


def skipped(nodeid: str, *ids: str, message: str) -> Record:
    return Record(nodeid=nodeid, requirements=ids, outcome="skipped", message=message)


def run(records: list[Record], **options: Any) -> RunResult:
    return aggregate(records, catalogue=CAT, started=STARTED, harness_version="9.9.9", **options)


def verdicts(result: RunResult) -> dict[str, tuple[str, str | None]]:
    return {r.requirement.id: (r.verdict, r.reason) for r in result.requirements}


def by_id(result: RunResult, rid: str) -> Any:
    return next(r for r in result.requirements if r.requirement.id == rid)


# --- verdict rules ------------------------------------------------------------------------


def test_passed_when_a_test_naming_it_passed() -> None:
    result = run([passed("t::a", "AAA-001", "AAA-002")])
    assert verdicts(result)["AAA-001"] == ("passed", None)
    assert verdicts(result)["AAA-002"] == ("passed", None)
    assert by_id(result, "AAA-001").tests == ["t::a"]


def test_failed_when_its_own_test_blames_it() -> None:
    result = run([failed("t::a", ("AAA-001",), ("AAA-001",))])
    verdict, reason = verdicts(result)["AAA-001"]
    assert verdict == "failed"
    assert reason == "wrong answer: expected an echo; actual nothing"


def test_failed_when_a_test_naming_other_requirements_blames_it() -> None:
    """A schema violation seen in a SEND test fails the EVT requirement, not SEND."""
    records = [
        passed("t::evt", "AAA-002"),
        failed("t::send", ("AAA-001",), ("AAA-002",)),
    ]
    result = run(records)
    assert verdicts(result)["AAA-002"][0] == "failed"
    assert by_id(result, "AAA-002").tests == ["t::evt", "t::send"]
    assert [t.nodeid for t in by_id(result, "AAA-002").failures] == ["t::send"]
    # The test's own requirement is not blamed, and a failed test never makes it pass.
    assert verdicts(result)["AAA-001"][0] == "not_tested"


def test_one_failure_outweighs_any_number_of_passes() -> None:
    records = [passed(f"t::p{i}", "AAA-001") for i in range(3)]
    records.append(failed("t::f", ("AAA-001",), ("AAA-001",)))
    assert verdicts(run(records))["AAA-001"][0] == "failed"


def test_failure_blaming_several_requirements_fails_each() -> None:
    result = run([failed("t::a", ("AAA-001",), ("AAA-001", "AAA-003"))])
    assert verdicts(result)["AAA-001"][0] == "failed"
    assert verdicts(result)["AAA-003"][0] == "failed"


def test_failure_without_expected_gives_its_message_as_the_reason() -> None:
    record = failed(
        "t::a", ("AAA-001",), ("AAA-001",), kind="error", expected="", message="KeyError: 'id'"
    )
    assert verdicts(run([record]))["AAA-001"] == ("failed", "KeyError: 'id'")


def test_timeout_kind_is_in_the_reason() -> None:
    record = failed("t::a", ("AAA-001",), ("AAA-001",), kind="timeout", actual="no frame in 5 s")
    assert verdicts(run([record]))["AAA-001"][1] == (
        "timeout: expected an echo; actual no frame in 5 s"
    )


def test_not_tested_with_the_skip_reason() -> None:
    result = run([skipped("t::a", "AAA-001", message="not tested: needs auth.secret")])
    assert verdicts(result)["AAA-001"] == ("not_tested", "not tested: needs auth.secret")
    assert by_id(result, "AAA-001").tests == ["t::a"]


def test_not_tested_joins_distinct_skip_reasons() -> None:
    records = [
        skipped("t::a", "AAA-001", message="needs rooms.other"),
        skipped("t::b", "AAA-001", message="needs accounts.member2"),
        skipped("t::c", "AAA-001", message="needs rooms.other"),
    ]
    assert verdicts(run(records))["AAA-001"] == (
        "not_tested",
        "needs accounts.member2; needs rooms.other",
    )


def test_a_skip_never_counts_as_a_pass_but_a_pass_beside_it_does() -> None:
    records = [skipped("t::a", "AAA-001", message="x"), passed("t::b", "AAA-001")]
    assert verdicts(run(records))["AAA-001"][0] == "passed"


def test_not_tested_when_no_test_ran() -> None:
    assert verdicts(run([]))["AAA-003"] == ("not_tested", "no test ran")


def test_not_selected_by_only() -> None:
    result = run([passed("t::a", "AAA-001")], selected={"AAA-001"})
    assert verdicts(result)["AAA-001"] == ("passed", None)
    assert verdicts(result)["AAA-002"] == ("not_tested", "not selected (--only)")
    assert verdicts(result)["BBB-001"] == ("not_tested", "not selected (--only)")


def test_observations_are_collected_per_requirement() -> None:
    records = [
        passed("t::a", "BBB-001", observations={"BBB-001": ["refusal: HTTP 403"]}),
        passed("t::b", "BBB-001", observations={"BBB-001": ["median 3 ms"], "AAA-001": ["x"]}),
    ]
    result = run(records)
    assert by_id(result, "BBB-001").observations == ["refusal: HTTP 403", "median 3 ms"]
    assert by_id(result, "BBB-001").as_json()["observations"] == [
        "refusal: HTTP 403",
        "median 3 ms",
    ]


def test_scope_selects_the_requirements_listed() -> None:
    assert [r.requirement.id for r in run([]).requirements] == [
        "AAA-001",
        "AAA-002",
        "AAA-003",
        "BBB-001",
        "BBB-002",
    ]
    client = run([passed("c::a", "CLI-001")], scope="client")
    assert verdicts(client) == {"CLI-001": ("passed", None)}


def test_summary_counts_each_level_and_verdict() -> None:
    records = [
        passed("t::a", "AAA-001"),
        failed("t::b", ("AAA-002",), ("AAA-002",)),
        skipped("t::c", "AAA-003", message="x"),
        passed("t::d", "BBB-001"),
    ]
    summary = run(records, baseline={"AAA-002": "issue #7"}).summary()
    zero = {"not_applicable": 0, "out_of_scope": 0}
    assert summary["MUST"] == {"passed": 1, "failed": 0, "not_tested": 0, "known": 1} | zero
    assert summary["SHOULD"] == {"passed": 0, "failed": 0, "not_tested": 2, "known": 0} | zero
    assert summary["INFO"] == {"passed": 1, "failed": 0, "not_tested": 0, "known": 0} | zero


# --- baseline -----------------------------------------------------------------------------


def test_baselined_failure_is_known_and_keeps_the_run_conformant() -> None:
    records = [failed("t::a", ("AAA-001",), ("AAA-001",)), passed("t::b", "AAA-002")]
    assert not run(records).conformant
    result = run(records, baseline={"AAA-001": "https://tracker/1"})
    verdict, reason = verdicts(result)["AAA-001"]
    assert verdict == "known"
    assert reason is not None and "https://tracker/1" in reason and "expected an echo" in reason
    assert result.failed("MUST") == []
    assert result.conformant
    assert result.verdict_word == "CONFORMANT"


def test_baselined_pass_is_reported_as_fixed() -> None:
    result = run([passed("t::a", "AAA-001")], baseline={"AAA-001": "issue #7"})
    entry = by_id(result, "AAA-001")
    assert (entry.verdict, entry.fixed) == ("passed", True)
    assert entry.reason == "fixed: remove it from the baseline"
    assert entry.as_json()["fixed"] is True
    assert any(line.startswith("FIXED  AAA-001") for line in summary_lines(result)), summary_lines(
        result
    )


def test_baselined_requirement_that_did_not_run_stays_not_tested() -> None:
    entry = by_id(run([], baseline={"AAA-001": "issue #7"}), "AAA-001")
    assert (entry.verdict, entry.fixed) == ("not_tested", False)
    assert "fixed" not in entry.as_json()


# --- conformant ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blamed", "strict", "conformant"),
    [
        ((), False, True),
        (("AAA-001",), False, False),
        (("AAA-001",), True, False),
        (("AAA-003",), False, True),
        (("AAA-003",), True, False),
        (("BBB-001",), False, True),
        (("BBB-001",), True, True),
    ],
    ids=["clean", "must", "must-strict", "should", "should-strict", "info", "info-strict"],
)
def test_conformant(blamed: tuple[str, ...], strict: bool, conformant: bool) -> None:
    rest = [r.id for r in CAT.scoped("server") if r.id not in blamed]
    records = [passed("t::rest", *rest)]
    if blamed:
        records.append(failed("t::a", blamed, blamed))
    result = run(records, strict=strict)
    assert result.conformant is conformant
    assert result.verdict_word == ("CONFORMANT" if conformant else "NON-CONFORMANT")
    assert result.as_json()["conformant"] is conformant
    assert summary_lines(result)[-1].startswith(f"verdict: {result.verdict_word}")


def test_terminal_summary_lists_failed_must_and_should_but_not_info() -> None:
    records = [
        failed("t::a", ("AAA-001",), ("AAA-001",)),
        failed("t::b", ("BBB-002",), ("BBB-002",)),
        failed("t::c", ("BBB-001",), ("BBB-001",)),
    ]
    lines = summary_lines(run(records))
    assert any(line.startswith("FAILED AAA-001 (MUST)") for line in lines)
    assert any(line.startswith("FAILED BBB-002 (SHOULD)") for line in lines)
    assert not any("BBB-001" in line for line in lines)


# --- load_baseline ------------------------------------------------------------------------


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "baseline.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_load_baseline_reads_reasons_and_links(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[known]]\nid = "AAA-001"\nreason = "issue #7"\n\n'
        '[[known]]\nid = "BBB-002"\nlink = "https://tracker/8"\n',
    )
    assert load_baseline(path, CAT).known == {"AAA-001": "issue #7", "BBB-002": "https://tracker/8"}


def test_empty_baseline_is_empty(tmp_path: Path) -> None:
    assert load_baseline(write(tmp_path, ""), CAT) == Baseline()


def baseline_error(path: Path) -> str:
    with pytest.raises(BaselineError) as info:
        load_baseline(path, CAT)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: ")
    return message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[[known]]\nid = "AAA-001"\nreason = "x', "not valid TOML"),
        ('[[known]]\nid = "NOPE-001"\nreason = "x"\n', "NOPE-001 is not in the catalogue"),
        ('[[known]]\nid = "AAA-001"\n', "known[0] (AAA-001): give a reason or a link"),
        ('[[known]]\nid = "AAA-001"\nreason = ""\n', "give a reason or a link"),
        ('[[known]]\nreason = "x"\n', "known[0]: needs an id"),
        ('[[known]]\nid = "AAA-001"\nreason = "x"\n[[knwon]]\nid = "AAA-002"\n', "'knwon'"),
        ('version = 1\n[[known]]\nid = "AAA-001"\nreason = "x"\n', "unknown key 'version'"),
        (
            '[[known]]\nid = "AAA-001"\nreason = "x"\n[[known]]\nid = "ZZZ-009"\nreason = "y"\n',
            "known[1]: ZZZ-009",
        ),
    ],
    ids=[
        "bad-toml",
        "unknown-id",
        "missing-reason",
        "empty-reason",
        "missing-id",
        "typo-table",
        "unknown-top-key",
        "second-entry",
    ],
)
def test_load_baseline_errors_are_one_line(tmp_path: Path, text: str, words: str) -> None:
    assert words in baseline_error(write(tmp_path, text))


def test_load_baseline_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert baseline_error(path) == f"{path}: no such baseline file"


@pytest.mark.parametrize("case", ["directory", "not-utf8"])
def test_load_baseline_unreadable_file_is_one_line(tmp_path: Path, case: str) -> None:
    if case == "directory":
        path = tmp_path / "dir"
        path.mkdir()
    else:
        path = write(tmp_path, b'[[known]]\nid = "AAA-001"\nreason = "caf\xe9"\n')
    baseline_error(path)


# --- results.json -------------------------------------------------------------------------


def mixed_result() -> RunResult:
    records = [
        passed("suites/test_a.py::test_one", "AAA-001", observations={"AAA-001": ["x"]}),
        failed("suites/test_a.py::test_two", ("AAA-002",), ("AAA-002", "AAA-003")),
        skipped("suites/test_b.py::test_three", "BBB-001", message="needs rooms.other"),
        passed("suites/test_b.py::test_four", "BBB-002"),
    ]
    return run(
        records,
        baseline={"AAA-003": "issue #1", "BBB-002": "issue #2"},
        target="ws://127.0.0.1:1234/ws/chat/{host}/{room}",
        duration_s=1.23456,
    )


def test_results_json_validates_against_its_schema() -> None:
    data = mixed_result().as_json()
    assert schemas.validate("results", data) == []
    assert {r["verdict"] for r in data["requirements"]} == {
        "passed",
        "failed",
        "known",
        "not_tested",
    }
    assert data["duration_s"] == 1.235
    assert data["catalogue"] == "0.0.1"
    assert data["harness"] == "9.9.9"


def test_results_json_of_the_real_catalogue_validates() -> None:
    cat = cat_mod.load()
    result = aggregate([], catalogue=cat, started=STARTED, harness_version="1")
    data = result.as_json()
    assert schemas.validate("results", data) == []
    assert [r["id"] for r in data["requirements"]] == [r.id for r in cat.scoped("server")]


def test_schema_catches_a_broken_results_document() -> None:
    """The validation above can fail: a wrong verdict is a violation."""
    data = mixed_result().as_json()
    data["requirements"][0]["verdict"] = "sort of"
    assert schemas.validate("results", data) != []


def test_write_json_round_trips(tmp_path: Path) -> None:
    result = mixed_result()
    path = tmp_path / "out" / "results.json"
    write_results_json(result, path)
    assert json.loads(path.read_text(encoding="utf-8")) == result.as_json()


def test_a_run_that_stopped_early_has_no_verdict() -> None:
    every = tuple(r.id for r in cat_mod.load().scoped("server"))
    result = aggregate(
        [Record("t::a", every, "passed")],
        catalogue=cat_mod.load(),
        harness_version="0.1.0",
        target="ws://127.0.0.1:1/ws/chat/{host}/{room}",
        started="2026-11-25T21:00:00Z",
    )
    assert result.conformant and result.verdict_word == "CONFORMANT"
    result.finished = False
    assert not result.conformant
    assert result.verdict_word == "INCOMPLETE"
    data = result.as_json()
    assert data["complete"] is False and data["conformant"] is False
    assert schemas.validate("results", data) == []


# --- a run that tested nothing is never conformant ----------------------------------------

SERVER_MUSTS = ("AAA-001", "AAA-002")


def test_an_untested_must_makes_the_run_incomplete_with_its_causes_grouped() -> None:
    records = [
        passed("t::a", "AAA-001", "AAA-003", "BBB-002"),
        skipped(
            "t::b", "AAA-002", message="not tested: needs accounts.*.user_id for the claim 'sub'"
        ),
    ]
    result = run(records)
    assert result.verdict_word == "INCOMPLETE"
    assert result.exit_status == 2
    assert not result.conformant and not result.complete
    line = "1 MUST not tested - needs accounts.*.user_id for the claim 'sub' (1)"
    assert result.reason == line
    data = result.as_json()
    assert (data["complete"], data["verdict"], data["reason"], data["untested"]) == (
        False,
        "INCOMPLETE",
        line,
        line,
    )
    assert schemas.validate("results", data) == []
    assert f"INCOMPLETE: {line}" in summary_lines(result)


def test_a_run_where_nothing_ran_is_incomplete_not_conformant() -> None:
    result = run([])
    assert result.verdict_word == "INCOMPLETE"
    assert result.reason == "2 MUST not tested - no test ran (2)"


def test_causes_are_counted_per_requirement_and_the_most_common_first() -> None:
    cat = Catalogue(
        version="0",
        areas={"AAA": "A"},
        requirements=tuple(Requirement(f"AAA-{i:03d}", "MUST", "M.", "seed") for i in range(6)),
    )
    records = [
        skipped("t::a", "AAA-000", "AAA-001", "AAA-002", message="not tested: needs auth.secret"),
        skipped("t::b", "AAA-003", message="not tested: needs rooms.other in the target file"),
        skipped("t::c", "AAA-003", "AAA-004", message="not tested: needs accounts.member2"),
    ]
    result = aggregate([*records, passed("t::d", "AAA-005")], catalogue=cat)
    assert result.untested_line == (
        "5 MUST not tested - needs auth.secret (3), needs accounts.member2 (2), "
        "needs rooms.other in the target file (1)"
    )


def test_only_the_selection_counts() -> None:
    records = [passed("t::a", "AAA-001")]
    assert run(records, selected={"AAA-001"}).verdict_word == "CONFORMANT"
    assert run(records, selected={"AAA-001", "AAA-002"}).verdict_word == "INCOMPLETE"
    out_of_scope = by_id(run(records, selected={"AAA-001"}), "AAA-002")
    assert (out_of_scope.verdict, out_of_scope.selected) == ("not_tested", False)


def test_a_failed_must_decides_even_with_untested_ones() -> None:
    records = [failed("t::a", ("AAA-001",), ("AAA-001",))]
    result = run(records)
    assert result.verdict_word == "NON-CONFORMANT"
    assert (result.exit_status, result.complete) == (1, True)
    data = result.as_json()
    assert data["untested"] == "1 MUST not tested - no test ran (1)"
    assert "reason" not in data  # no diagnosis: the run failed on its own terms
    assert "also 1 MUST not tested - no test ran (1)" in summary_lines(result)


def test_strict_extends_completeness_to_should() -> None:
    records = [passed("t::a", *SERVER_MUSTS)]
    assert run(records).verdict_word == "CONFORMANT"
    strict = run(records, strict=True)
    assert strict.verdict_word == "INCOMPLETE"
    assert strict.reason == "2 SHOULD not tested - no test ran (2)"


def test_not_applicable_accepts_an_untested_must() -> None:
    records = [
        passed("t::a", "AAA-001"),
        skipped(
            "t::b", "AAA-002", message="not tested: needs auth.secret to mint an expired token"
        ),
    ]
    result = run(records, not_applicable={"AAA-002": "tokens come from our IdP"})
    assert result.verdict_word == "CONFORMANT" and result.exit_status == 0
    entry = by_id(result, "AAA-002")
    assert entry.verdict == "not_applicable"
    assert entry.reason == (
        "not applicable (tokens come from our IdP); "
        "not tested: needs auth.secret to mint an expired token"
    )
    assert result.summary()["MUST"]["not_applicable"] == 1
    assert schemas.validate("results", result.as_json()) == []


def test_not_applicable_never_hides_a_failure_and_a_pass_says_the_entry_can_go() -> None:
    na = {"AAA-001": "cannot test", "AAA-002": "cannot test"}
    records = [passed("t::a", "AAA-001"), failed("t::b", ("AAA-002",), ("AAA-002",))]
    result = run(records, not_applicable=na)
    assert result.verdict_word == "NON-CONFORMANT"
    assert by_id(result, "AAA-002").verdict == "failed"
    passed_entry = by_id(result, "AAA-001")
    assert (passed_entry.verdict, passed_entry.fixed) == ("passed", True)
    assert "[[not_applicable]]" in (passed_entry.reason or "")


def test_a_known_failure_is_tested_and_does_not_make_the_run_incomplete() -> None:
    records = [passed("t::a", "AAA-001"), failed("t::b", ("AAA-002",), ("AAA-002",))]
    assert run(records, baseline={"AAA-002": "issue #7"}).verdict_word == "CONFORMANT"


def test_baseline_reads_not_applicable_entries(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[known]]\nid = "AAA-001"\nreason = "issue #7"\n'
        '[[not_applicable]]\nid = "AAA-002"\nreason = "tokens come from our IdP"\n',
    )
    assert load_baseline(path, CAT) == Baseline(
        {"AAA-001": "issue #7"}, {"AAA-002": "tokens come from our IdP"}
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[[not_applicable]]\nid = "AAA-002"\n', "not_applicable[0] (AAA-002): give a reason"),
        ('[[not_applicable]]\nid = "ZZZ-002"\nreason = "x"\n', "ZZZ-002 is not in the catalogue"),
        (
            '[[known]]\nid = "AAA-002"\nreason = "x"\n[[not_applicable]]\nid = "AAA-002"\n'
            'reason = "y"\n',
            "AAA-002 is both [[known]] and [[not_applicable]]",
        ),
        ("not_applicable = 3\n", "not_applicable: write entries as [[not_applicable]] tables"),
    ],
)
def test_bad_not_applicable_entries_are_one_line(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(BaselineError) as info:
        load_baseline(write(tmp_path, text), CAT)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


# --- junit.xml ----------------------------------------------------------------------------


def _cases(result: RunResult) -> dict[str, Any]:
    from xml.etree import ElementTree as ET

    from harness.render import junit

    root = ET.fromstring(junit.render(result))
    cases = {
        c.find("properties/property[@name='requirement']").get("value"): c
        for c in root.iter("testcase")
    }  # type: ignore[union-attr]
    return {"root": root, **cases}


def test_junit_shows_an_untested_must_as_an_error_and_not_applicable_as_skipped() -> None:
    records = [passed("t::a", "AAA-001"), skipped("t::b", "AAA-003", message="not tested: x")]
    result = run(records, not_applicable={"BBB-002": "cannot"})
    cases = _cases(result)
    error = cases["AAA-002"].find("error")
    assert error is not None and error.get("type") == "not_tested"
    assert cases["AAA-003"].find("skipped") is not None  # a SHOULD: not deciding without --strict
    assert cases["AAA-003"].find("error") is None
    skipped_na = cases["BBB-002"].find("skipped")
    assert skipped_na is not None and "not applicable (cannot)" in str(skipped_na.get("message"))
    root = cases["root"]
    assert (root.get("errors"), root.get("failures")) == ("1", "0")
    verdicts = {p.get("value") for p in root.iter("property") if p.get("name") == "verdict"}
    assert "INCOMPLETE" in verdicts
    reasons = [p.get("value") for p in root.iter("property") if p.get("name") == "reason"]
    assert reasons and reasons[0] == "1 MUST not tested - no test ran (1)"


def test_junit_of_a_conformant_run_has_no_error() -> None:
    cases = _cases(run([passed("t::a", *SERVER_MUSTS)]))
    assert cases["root"].get("errors") == "0"


# --- needs, held requirements, figures -------------------------------------------------------

NEEDY = Catalogue(
    version="0.0.1",
    areas={"AAA": "Area A", "NOD": "Nodes"},
    requirements=(
        Requirement("AAA-001", "MUST", "Must one.", "seed"),
        Requirement("NOD-001", "MUST", "Across nodes.", "notes", needs="nodes"),
    ),
)


def test_a_requirement_the_target_cannot_offer_is_out_of_scope_not_incomplete() -> None:
    result = aggregate(
        [passed("t::a", "AAA-001"), skipped("t::n", "NOD-001", message="needs nodes")],
        catalogue=NEEDY,
        lacking={"nodes"},
    )
    node = result.by_id("NOD-001")
    assert (node.verdict, node.selected, node.applies) == ("not_tested", False, False)
    assert node.reason is not None and "needs nodes = [...] in the target file" in node.reason
    assert result.verdict_word == "CONFORMANT"
    assert node.as_json()["applies"] is False
    assert "applies" not in result.by_id("AAA-001").as_json()


def test_with_the_need_met_an_untested_requirement_makes_the_run_incomplete() -> None:
    result = aggregate(
        [passed("t::a", "AAA-001"), skipped("t::n", "NOD-001", message="timed out")],
        catalogue=NEEDY,
    )
    assert result.verdict_word == "INCOMPLETE"


def test_a_requirement_a_failed_test_proved_held_passes() -> None:
    record = failed("t::burst", ("AAA-001", "AAA-003", "BBB-001"), ("AAA-003",))
    record.held_requirements = ("AAA-001", "BBB-001")
    result = run([record])
    assert verdicts(result)["AAA-001"][0] == "passed"
    assert verdicts(result)["BBB-001"][0] == "passed"
    assert verdicts(result)["AAA-003"][0] == "failed"


def test_figures_reach_their_requirement_and_results_json() -> None:
    figure = {"kind": "lag", "messages": 3, "delivered": 3, "missing": 0}
    result = run([passed("t::lag", "AAA-001", figures={"AAA-001": figure})])
    assert result.by_id("AAA-001").figures == [figure]
    assert result.by_id("AAA-001").as_json()["figures"] == [figure]
    assert schemas.validate("results", result.as_json()) == []


def test_a_run_whose_whole_scope_lacks_its_needs_tested_nothing_and_is_incomplete() -> None:
    result = aggregate(
        [skipped("t::n", "NOD-001", message="needs nodes")],
        catalogue=NEEDY,
        selected={"NOD-001"},
        lacking={"nodes"},
    )
    assert result.tested_nothing and result.verdict_word == "INCOMPLETE"
    assert result.reason is not None
    assert result.reason.startswith(
        "nothing in the run's scope was tested (not tested: needs nodes"
    )


# --- out of scope: counted apart from not tested -------------------------------------------

#: A single-node target's default run in small: everything passes but the node requirement,
#: which the target cannot offer.
NODE_REASON = "needs nodes = [...] in the target file (two or more nodes named one by one)"


def single_node_run() -> RunResult:
    return aggregate(
        [passed("t::a", "AAA-001"), skipped("t::n", "NOD-001", message="not tested: x")],
        catalogue=NEEDY,
        lacking={"nodes"},
        started=STARTED,
        harness_version="9.9.9",
    )


def test_summary_counts_what_the_target_lacks_as_out_of_scope_not_as_not_tested() -> None:
    result = single_node_run()
    must = result.summary()["MUST"]
    assert (must["passed"], must["not_tested"], must["out_of_scope"]) == (1, 0, 1)
    assert sum(must.values()) == 2  # every MUST counted once
    assert result.verdict_word == "CONFORMANT"
    node = result.by_id("NOD-001")
    assert node.out_of_scope and node.scope_reason == NODE_REASON
    assert result.scope_causes() == [(NODE_REASON, 1)]


def test_summary_counts_what_the_selection_left_out_as_out_of_scope() -> None:
    records = [passed("t::a", "AAA-001"), skipped("t::c", "AAA-003", message="not tested: x")]
    result = run(records, selected={"AAA-001", "AAA-003"})
    summary = result.summary()
    assert summary["MUST"] == {
        "passed": 1,
        "failed": 0,
        "not_tested": 0,
        "known": 0,
        "not_applicable": 0,
        "out_of_scope": 1,
    }
    # AAA-003 was selected and not tested: not tested, not out of scope.
    assert (summary["SHOULD"]["not_tested"], summary["SHOULD"]["out_of_scope"]) == (1, 1)
    assert (summary["INFO"]["not_tested"], summary["INFO"]["out_of_scope"]) == (0, 1)
    for level, counts in summary.items():
        assert sum(counts.values()) == sum(1 for r in CAT.scoped("server") if r.level == level)
    assert result.scope_causes() == [("not selected (--only)", 3)]


def test_an_unselected_requirement_a_test_passed_counts_as_passed_not_out_of_scope() -> None:
    """A test of a selected requirement that names another one too judges both."""
    result = run([passed("t::a", "AAA-001", "AAA-002")], selected={"AAA-001"})
    other = result.by_id("AAA-002")
    assert (other.verdict, other.selected, other.out_of_scope) == ("passed", False, False)
    assert result.summary()["MUST"]["passed"] == 2
    assert result.summary()["MUST"]["out_of_scope"] == 0
    assert other.as_json()["in_scope"] is False


def test_results_json_keeps_the_verdict_and_says_in_scope_false() -> None:
    data = single_node_run().as_json()
    node = next(r for r in data["requirements"] if r["id"] == "NOD-001")
    assert (node["verdict"], node["applies"], node["in_scope"]) == ("not_tested", False, False)
    assert node["reason"] == f"not tested: {NODE_REASON}"
    assert "in_scope" not in next(r for r in data["requirements"] if r["id"] == "AAA-001")
    assert data["summary"]["MUST"]["out_of_scope"] == 1
    assert data["summary"]["MUST"]["not_tested"] == 0
    assert schemas.validate("results", data) == []


def test_a_run_stopped_before_its_tests_keeps_why_a_requirement_is_out_of_scope() -> None:
    result = stopped_before_tests(
        "target unreachable",
        catalogue=CAT,
        selected={"AAA-001"},
        started=STARTED,
        harness_version="9.9.9",
    )
    assert result.by_id("AAA-001").reason == "the run stopped before any test"
    assert result.by_id("AAA-002").reason == "not selected (--only)"
    assert result.summary()["MUST"]["out_of_scope"] == 1
    assert schemas.validate("results", result.as_json()) == []


def test_terminal_table_shows_out_of_scope_in_a_column_of_its_own() -> None:
    lines = summary_lines(single_node_run())
    assert lines[0] == ("level     passed  failed  not tested  known   n/a  out of scope")
    assert lines[1] == "MUST           1       0           0      0     0             1"
    assert lines[-1].startswith("verdict: CONFORMANT")


def test_junit_skips_an_out_of_scope_requirement_with_its_reason_and_counts_it_per_suite() -> None:
    cases = _cases(single_node_run())
    node = cases["NOD-001"]
    skipped_el = node.find("skipped")
    assert skipped_el is not None and skipped_el.get("type") == "out_of_scope"
    assert skipped_el.get("message") == f"out of scope: {NODE_REASON}"
    assert node.find("error") is None
    scope = node.find("properties/property[@name='scope']")
    assert scope is not None and scope.get("value") == "out of scope"
    assert cases["AAA-001"].find("properties/property[@name='scope']") is None
    root = cases["root"]
    counts = {
        suite.get("name"): [
            p.get("value") for p in suite.iter("property") if p.get("name") == "out_of_scope"
        ]
        for suite in root.iter("testsuite")
    }
    assert counts == {"AAA: Area A": ["0"], "NOD: Nodes": ["1"]}
    assert (root.get("errors"), root.get("skipped")) == ("0", "1")


def test_junit_keeps_an_in_scope_untested_must_an_error_beside_out_of_scope_ones() -> None:
    result = run([passed("t::a", "AAA-001", "AAA-003")], selected={"AAA-001", "AAA-002"})
    cases = _cases(result)
    error = cases["AAA-002"].find("error")
    assert error is not None and error.get("type") == "not_tested"
    assert cases["AAA-002"].find("properties/property[@name='scope']") is None
    out = cases["BBB-002"].find("skipped")
    assert out is not None and out.get("message") == "out of scope: not selected (--only)"
