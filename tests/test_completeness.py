"""A gate that cannot be fooled: "not tested" is a skip wherever it is raised (inside hypothesis
included), and a run whose MUSTs were not tested is INCOMPLETE, never CONFORMANT, until the
baseline accepts them as not applicable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reference_server.demo import demo_config, demo_target_dict
from reference_server.runner import ServerThread
from tests.support import run_suites, write_target

PROPERTIES = ("ROBUST-016", "ROBUST-017", "ROBUST-018")


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(demo_config(database=":memory:")) as srv:
        yield srv


def without_member2(tmp_path: Path, server: ServerThread) -> Path:
    data: dict[str, Any] = demo_target_dict(server.url_template)
    del data["accounts"]["member2"]
    data["properties"] = {"examples": 3}
    return write_target(tmp_path / "target.toml", data)


def test_not_tested_inside_a_property_is_a_skip_and_the_run_is_incomplete(
    tmp_path: Path, server: ServerThread
) -> None:
    """The property suites need member2 only once hypothesis runs: the NotTested it raises there
    is "not tested", not a failure (it used to be reported as FAILED ... NotTested)."""
    target = without_member2(tmp_path, server)
    code, results, output = run_suites(target, tmp_path / "r", only=",".join(PROPERTIES))
    assert results is not None, output[-3000:]
    verdicts = {r["id"]: r for r in results["requirements"] if r["id"] in PROPERTIES}
    for rid, entry in verdicts.items():
        assert entry["verdict"] == "not_tested", (rid, entry)
        assert entry["reason"] == "not tested: needs accounts.member2 in the target file"
    assert all(results["summary"][lvl]["failed"] == 0 for lvl in ("MUST", "SHOULD")), output
    assert (code, results["verdict"], results["complete"]) == (2, "INCOMPLETE", False)
    line = "2 MUST not tested - needs accounts.member2 in the target file (2)"  # 018: a SHOULD
    assert results["reason"] == line
    assert f"INCOMPLETE: {line}" in output


def test_the_baseline_accepts_what_cannot_be_tested(tmp_path: Path, server: ServerThread) -> None:
    target = without_member2(tmp_path, server)
    baseline = tmp_path / "baseline.toml"
    baseline.write_text(
        "".join(
            f'[[not_applicable]]\nid = "{rid}"\nreason = "one participant only"\n'
            for rid in PROPERTIES
        ),
        encoding="utf-8",
    )
    code, results, output = run_suites(
        target, tmp_path / "r", "--baseline", str(baseline), only=",".join(PROPERTIES)
    )
    assert code == 0, output[-3000:]
    assert results is not None and results["verdict"] == "CONFORMANT"
    assert {r["verdict"] for r in results["requirements"] if r["id"] in PROPERTIES} == {
        "not_applicable"
    }
    summary = results["summary"]
    assert (summary["MUST"]["not_applicable"], summary["SHOULD"]["not_applicable"]) == (2, 1)


def test_collect_only_gives_no_verdict(tmp_path: Path, server: ServerThread) -> None:
    target = without_member2(tmp_path, server)
    code, results, output = run_suites(target, tmp_path / "r", "--collect-only")
    assert (code, results) == (0, None), output[-2000:]
