"""Proof that the suites catch what they claim: one run per fault switch of the reference server.

For every switch (``reference_server/faults.py``): the run is non-conformant at the switch's
level, every requirement the switch documents failed, and nothing failed that the switch does
not explain (``Fault.collateral`` in the registry). The clean server passes everything, with 200
examples per property. The table is printed at the end of the test run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reference_server.faults import FAULTS
from tests.mutation import run_fault
from tests.support import assert_passes_everything, run_suites


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_is_caught_at_its_requirements(name: str, record_property: Any) -> None:
    fault = FAULTS[name]
    outcome = run_fault(name)
    record_property("mutation", json.dumps(outcome.row()))
    tail = outcome.output[-3000:]
    assert outcome.exit_code == 1, f"{name}: the run was not non-conformant\n{tail}"
    assert not outcome.missing, f"{name}: documented requirements passed: {outcome.missing}\n{tail}"
    assert not outcome.unexplained, f"{name}: unexplained failures {outcome.unexplained}\n{tail}"
    if fault.sequence:
        # Every suite ran: the stateful one alone failed it, and no other suite noticed.
        assert not outcome.found_elsewhere, (
            f"{name} is a sequence fault but other suites caught it: {outcome.found_elsewhere}"
        )
        assert any(outcome.failed_by.values()), f"{name}: no failing test named\n{tail}"
    if fault.level == "SHOULD":
        musts = [r for r, level in outcome.failed.items() if level == "MUST"]
        assert not musts, f"{name} is a SHOULD fault but failed MUST {musts}"


def test_clean_server_passes_everything(tmp_path: Path) -> None:
    code, results, output = run_suites(None, tmp_path / "reports", "--examples", "200", "--strict")
    assert_passes_everything(code, results, output, untested_levels=("MUST", "SHOULD", "INFO"))
