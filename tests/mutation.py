"""The mutation matrix: run the suites against the reference server with one fault switched on.

Shared by tests/test_mutation_matrix.py and bench/mutation_matrix.py (which prints the table the
README quotes).
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import catalogue
from reference_server.config import ServerConfig
from reference_server.demo import demo_config, demo_target_dict
from reference_server.faults import FAULTS, Fault
from reference_server.runner import ClusterProcess, RedisServer, ServerThread
from tests.matrix import restart_server
from tests.support import run_suites, write_target

#: The matrix uses a short receive timeout: the reference server answers in milliseconds, and
#: faults such as accept-then-silence make every refusal check wait it out.
RECEIVE_TIMEOUT = 1.0

#: Nodes of the reference cluster that the faults across nodes run on.
CLUSTER_NODES = 2

#: Examples per property: enough that every kind of near miss is drawn (one in nine each).
EXAMPLES = 100

#: The stateful suite's test: the only one that may fail a sequence fault (``Fault.sequence``).
CONVERSATION_TEST = "suites/test_conversation.py::test_conversations_follow_the_model"

#: Seconds the stateful suite may draw (and as many shrink) in the matrix: the short receive
#: timeout would make its default budget (2 x receive_timeout) cut the shrinking short.
CONVERSATION_BUDGET = 30.0


@dataclass
class Outcome:
    fault: str
    exit_code: int
    failed: dict[str, str]  # id -> level
    expected: tuple[str, ...]
    output: str
    #: id -> the tests whose failure blamed it (results.json ``failed_by``).
    failed_by: dict[str, list[str]] = field(default_factory=dict)

    def row(self) -> dict[str, object]:
        return {
            "fault": self.fault,
            "level": FAULTS[self.fault].level,
            "expected": list(self.expected),
            "failed": sorted(self.failed),
        }

    @property
    def missing(self) -> list[str]:
        return [r for r in self.expected if r not in self.failed]

    @property
    def found_elsewhere(self) -> list[str]:
        """Tests other than the stateful suite's that failed a requirement: for a sequence
        fault, a suite that catches it without a sequence (then it is no sequence fault)."""
        return sorted({t for tests in self.failed_by.values() for t in tests} - {CONVERSATION_TEST})

    @property
    def unexplained(self) -> list[str]:
        allowed = set(self.expected) | set(FAULTS[self.fault].collateral)
        return sorted(r for r in self.failed if r not in allowed)


def table(rows: list[dict[str, object]]) -> list[str]:
    """switch | expected | observed, one line each (rows from :meth:`Outcome.row`)."""
    lines = [f"{'switch':<24} {'level':<7}{'expected (must fail)':<44} observed failures"]
    for row in sorted(rows, key=lambda r: str(r["fault"])):
        expected = list(row["expected"])  # type: ignore[call-overload]
        failed = list(row["failed"])  # type: ignore[call-overload]
        seen = ", ".join(r for r in expected if r in failed) or "-"
        extra = [r for r in failed if r not in expected]
        if extra:
            seen += f" (+ explained: {', '.join(extra)})"
        missed = [r for r in expected if r not in failed]
        if missed:
            seen += f"  MISSED {', '.join(missed)}"
        lines.append(f"{row['fault']!s:<24} {row['level']!s:<7}{', '.join(expected):<44} {seen}")
    return lines


def areas_for(fault: Fault) -> str:
    cat = catalogue.load()
    areas = {cat[r].area for r in fault.requirements}
    return ",".join(sorted(areas))


def serve_argv(database: str, *options: str) -> list[str]:
    """The reference server as a process of its own: demo data, a free port, ``database``."""
    argv = [sys.executable, "-m", "reference_server", "serve", "--demo", "--port=0"]
    return [*argv, "--db", database, *options]


def limited_target(url: str, config: ServerConfig, restart: str | None = None) -> dict[str, Any]:
    """The demo target of a reference server at ``url`` with ``config``'s limits (and a
    ``[restart] command``)."""
    data = demo_target_dict(url)
    data["limits"] = {"max_length": config.max_length, "max_frame_bytes": config.max_frame_bytes}
    if restart:
        data["restart"] = {"command": restart}
    return data


@contextlib.contextmanager
def server_process(argv: list[str], base: Path) -> Iterator[tuple[str, str]]:
    """A reference server in its own process, restartable by a `[restart] command`."""
    proc, url = restart_server.start(argv)
    state = base / "server-state.json"
    port = int(url.split(":")[2].split("/")[0])
    state.write_text(json.dumps({"pid": proc.pid, "argv": argv, "port": port}))
    command = f"{sys.executable} {Path(restart_server.__file__)} {state}"
    try:
        yield url, command
    finally:
        restart_server.stop(json.loads(state.read_text())["pid"])
        proc.wait(timeout=10)


def run_fault(name: str, workdir: Path | None = None, *, whole: bool = False) -> Outcome:
    """One fault switch's run: the areas its requirements belong to, with a short receive
    timeout (the matrix test); ``whole``: every suite with the default timeouts, as a user's
    run against a broken deploy would be (``bench/mutation_matrix.py --whole``)."""
    fault = FAULTS[name]
    with tempfile.TemporaryDirectory(prefix=f"fault-{name}-") as tmp:
        base = Path(workdir or tmp)
        base.mkdir(parents=True, exist_ok=True)
        config = demo_config(database=str(base / "fault.sqlite3"), faults=frozenset({name}))
        extra = ["--strict"] if fault.level == "SHOULD" else []
        with contextlib.ExitStack() as stack:
            restart_command = None
            nodes: list[str] = []
            if any(r.startswith("NODE-") for r in fault.requirements):
                # Across nodes: the fault on every node of a reference cluster on Redis.
                redis = stack.enter_context(RedisServer())
                args = ["--demo", "--db", config.database, "--fault", name]
                cluster = stack.enter_context(ClusterProcess(args, CLUSTER_NODES, redis.url))
                nodes = cluster.urls
                url = nodes[0]
            elif "RECON-006" in fault.requirements:
                argv = serve_argv(config.database, "--fault", name)
                url, restart_command = stack.enter_context(server_process(argv, base))
                server = None
            else:
                server = stack.enter_context(ServerThread(config))
                url = server.url_template
            data = limited_target(url, config, restart_command)
            if nodes:
                data["nodes"] = nodes
            if not whole:
                data["receive_timeout"] = RECEIVE_TIMEOUT
            if fault.sequence:
                data["conversations"] = {"time_budget": CONVERSATION_BUDGET}
            target = write_target(base / "target.toml", data)
            code, results, output = run_suites(
                target,
                base / "reports",
                *extra,
                # One test at a time: a fault that breaks the room for everyone in it (a dead
                # connection stops the fan-out) would otherwise fail its neighbours' tests too.
                *(() if whole else ("--examples", str(EXAMPLES), "--concurrency", "1")),
                # A sequence fault: every suite, to show that only the stateful one finds it.
                only=None if whole or fault.sequence else areas_for(fault),
            )
    failed: dict[str, str] = {}
    failed_by: dict[str, list[str]] = {}
    if results is not None:
        for r in results["requirements"]:
            if r["verdict"] == "failed":
                failed[r["id"]] = r["level"]
                failed_by[r["id"]] = list(r.get("failed_by", []))
    return Outcome(name, code, failed, fault.requirements, output, failed_by)
