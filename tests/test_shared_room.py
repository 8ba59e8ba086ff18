"""Strangers in the room: two runs at once, or one run on two workers, give the verdicts of one
run alone (issue 12).

A staging room is shared: another pipeline's run, or the other worker of ``-n 2``, causes events
every connection of the room receives. A check may fail only on a frame it can attribute to its
own test (:mod:`harness.core.attribution`); the rest is observed. Judged against a reference
server with a fault that breaks broadcasts (``nonstring-body``: a non-string message is
broadcast with that value as its body), and against the clean server.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import Any

import pytest

from reference_server.demo import demo_config
from reference_server.runner import ServerThread
from tests.mutation import limited_target
from tests.support import run_suites, write_target

#: The areas the fault's requirements live in: what its runs are judged on.
AREAS = "EVT,ROBUST"


def _verdicts(results: dict[str, Any] | None, output: str) -> dict[str, str]:
    assert results is not None, output[-2000:]
    return {r["id"]: r["verdict"] for r in results["requirements"] if r["area"] in AREAS}


def _run(target: Path, out: Path, *extra: str) -> dict[str, str]:
    code, results, output = run_suites(target, out, *extra, only=AREAS)
    assert code in (0, 1), output[-2000:]
    return _verdicts(results, output)


@pytest.fixture(params=["nonstring-body", "clean"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    faults = frozenset() if request.param == "clean" else frozenset({request.param})
    config = demo_config(database=str(tmp_path / "room.sqlite3"), faults=faults)
    with ServerThread(config) as server:
        data = limited_target(server.url_template, config)
        data["receive_timeout"] = 2.0
        yield request.param, write_target(tmp_path / "target.toml", data)


def test_concurrent_runs_and_two_workers_give_the_verdicts_of_one_run(
    shared: tuple[str, Path], tmp_path: Path
) -> None:
    name, target = shared
    alone = _run(target, tmp_path / "alone")
    failed = sorted(rid for rid, verdict in alone.items() if verdict == "failed")
    if name == "clean":
        assert failed == []
    else:
        assert {"EVT-002", "ROBUST-010", "ROBUST-017"} <= set(failed)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(_run, target, tmp_path / "first")
        second = pool.submit(_run, target, tmp_path / "second")
        together = [first.result(), second.result()]
    assert together == [alone, alone]

    assert _run(target, tmp_path / "workers", "-n", "2") == alone
