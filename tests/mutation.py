"""The mutation matrix: run the suites against the reference server with one fault switched on.

Shared by tests/test_mutation_matrix.py and bench/mutation_matrix.py (which prints the table the
README quotes).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import catalogue
from reference_server.demo import demo_config, demo_target_dict
from reference_server.faults import FAULTS, Fault
from reference_server.runner import ServerThread
from tests.support import run_suites, write_target

#: Failures a fault causes besides the ones it documents, each with why. Kept short on purpose:
#: a requirement here is one the broken behaviour really breaks too, not noise.
EXPLAINED: dict[str, dict[str, str]] = {}

#: The matrix uses a short receive timeout: the reference server answers in milliseconds, and
#: faults such as accept-then-silence make every refusal check wait it out.
RECEIVE_TIMEOUT = 2.0


@dataclass
class Outcome:
    fault: str
    exit_code: int
    failed: dict[str, str]  # id -> level
    expected: tuple[str, ...]
    output: str

    @property
    def missing(self) -> list[str]:
        return [r for r in self.expected if r not in self.failed]

    @property
    def unexplained(self) -> list[str]:
        allowed = set(self.expected) | set(EXPLAINED.get(self.fault, {}))
        return sorted(r for r in self.failed if r not in allowed)


def areas_for(fault: Fault) -> str:
    cat = catalogue.load()
    areas = {cat[r].area for r in fault.requirements}
    areas |= {cat[r].area for r in EXPLAINED.get(fault.name, {})}
    return ",".join(sorted(areas))


def run_fault(name: str, workdir: Path | None = None) -> Outcome:
    fault = FAULTS[name]
    with tempfile.TemporaryDirectory(prefix=f"fault-{name}-") as tmp:
        base = Path(workdir or tmp)
        base.mkdir(parents=True, exist_ok=True)
        config = demo_config(database=str(base / "fault.sqlite3"), faults=frozenset({name}))
        with ServerThread(config) as server:
            data = demo_target_dict(server.url_template)
            data["receive_timeout"] = RECEIVE_TIMEOUT
            data["limits"] = {"max_length": config.max_length, "max_frame_bytes": config.max_frame_bytes}
            target = write_target(base / "target.toml", data)
            restart = ["-p", "tests.matrix.restart_hook"] if "RECON-006" in fault.requirements else []
            extra = ["--strict"] if fault.level == "SHOULD" else []
            code, results, output = run_suites(
                target, base / "reports", *extra, *restart, only=areas_for(fault)
            )
    failed = {}
    if results is not None:
        failed = {r["id"]: r["level"] for r in results["requirements"] if r["verdict"] == "failed"}
    return Outcome(name, code, failed, fault.requirements, output)
