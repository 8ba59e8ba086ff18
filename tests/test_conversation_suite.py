"""The stateful suite against faults only sequences find: each is caught, the failure is a short
story, and the replay script written beside the report fails the same way when run alone (and
passes against a correct server).

The mutation matrix (tests/test_mutation_matrix.py) proves the other half: with every suite
running, only the stateful one fails these faults.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from harness.target import parse
from harness.tokens import Minter
from harness.wire import replay_runtime
from reference_server.demo import demo_config, demo_target_dict
from reference_server.faults import FAULTS
from reference_server.runner import ServerThread
from tests.mutation import CONVERSATION_BUDGET, CONVERSATION_TEST, limited_target
from tests.support import run_suites, write_target

SEQUENCE_FAULTS = [name for name, fault in FAULTS.items() if fault.sequence]

#: At most this many steps in a shrunk story ("a handful").
HANDFUL = 6


def tokens(url_template: str) -> dict[str, str]:
    target = parse(demo_target_dict(url_template), env={})
    minter = Minter(target.auth)
    return {
        replay_runtime.token_variable(role): minter.valid(account)
        for role, account in target.accounts.items()
    }


def run_replay(script: Path, url_template: str) -> subprocess.CompletedProcess[str]:
    """The script, alone, against the server of ``url_template`` (``--server``)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EDUSPHERE_")}
    server = urlunsplit(urlsplit(url_template)._replace(path="", query=""))
    return subprocess.run(
        [sys.executable, str(script), "--timeout", "5", "--server", server],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env={**clean, "PYTHONIOENCODING": "utf-8", **tokens(url_template)},
        cwd=script.parent,
        check=False,
    )


@pytest.fixture(scope="module")
def clean_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    base = tmp_path_factory.mktemp("clean")
    with ServerThread(demo_config(database=str(base / "clean.sqlite3"))) as server:
        yield server


def conversation_run(server: ServerThread, base: Path, config: Any) -> tuple[int, dict[str, Any]]:
    data = limited_target(server.url_template, config)
    data["receive_timeout"] = 2.0
    data["conversations"] = {"time_budget": CONVERSATION_BUDGET}
    target = write_target(base / "target.toml", data)
    code, results, output = run_suites(target, base / "reports", only="CONV")
    assert results is not None, output[-3000:]
    return code, results


@pytest.mark.parametrize("name", SEQUENCE_FAULTS)
def test_a_sequence_fault_is_a_short_story_that_replays_alone(
    name: str, tmp_path: Path, clean_server: ServerThread
) -> None:
    fault = FAULTS[name]
    config = demo_config(database=str(tmp_path / "fault.sqlite3"), faults=frozenset({name}))
    with ServerThread(config) as server:
        code, results = conversation_run(server, tmp_path, config)
        assert code == 1, f"{name}: not caught"
        failed = {r["id"]: r for r in results["requirements"] if r["verdict"] == "failed"}
        assert set(fault.requirements) <= set(failed), f"{name}: failed {sorted(failed)}"
        requirement = failed[fault.requirements[0]]
        assert requirement["failed_by"] == [CONVERSATION_TEST]
        figure = next(f for f in requirement["figures"] if f["kind"] == "sequence")
        steps = figure["steps"]
        assert len(steps) <= HANDFUL, json.dumps(steps, indent=1)[:3000]
        assert figure["failed_step"] == steps[-1]["n"]
        assert [s["ok"] for s in steps] == [True] * (len(steps) - 1) + [False]
        # The failure message is the story, numbered.
        assert f"{len(steps)}. " in requirement["reason"]
        script = tmp_path / "reports" / figure["replay"]
        replayed = run_replay(script, server.url_template)
        assert replayed.returncode == 1, replayed.stdout + replayed.stderr
        assert f"FAIL at step {figure['failed_step']}" in replayed.stdout, replayed.stdout
    # The same story against a correct server passes: the script judges, it does not assume.
    passed = run_replay(script, clean_server.url_template)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "PASS" in passed.stdout


def test_a_correct_server_passes_the_conversations_and_says_how_many_ran(
    tmp_path: Path, clean_server: ServerThread
) -> None:
    config = demo_config(database=str(tmp_path / "unused.sqlite3"))
    code, results = conversation_run(clean_server, tmp_path, config)
    assert code == 0
    by_id = {r["id"]: r for r in results["requirements"]}
    assert all(by_id[f"CONV-00{n}"]["verdict"] == "passed" for n in range(1, 5))
    (line, *_) = by_id["CONV-004"]["observations"]
    assert "sequences" in line and "steps in all" in line
    assert not list((tmp_path / "reports").glob("replay-*.py"))


# --- a frame missing in a crowd ---------------------------------------------------------


def _suite_module() -> Any:
    """suites/test_conversation.py, imported by path (the suites are no package)."""
    import importlib.util

    from tests.support import SUITES

    spec = importlib.util.spec_from_file_location(
        "conversation_suite_under_test", SUITES / "test_conversation.py"
    )
    assert spec is not None and spec.loader is not None
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("crowded", [True, False])
def test_a_frame_missing_in_a_crowd_ends_the_conversations_without_more_io(
    crowded: bool,
) -> None:
    """In a crowd a frame that never came is no verdict (the test runs again alone): every later
    step fails at once without I/O, so hypothesis' shrinking costs no ``receive_timeout``, and
    the test fails for the scheduler's rerun without shrinking. Alone, the finding is judged
    and shrunk as ever."""
    from harness.core import conversation as conv
    from harness.core.failures import ConformanceFailure
    from tests.fakewire import FakeServer

    suite = _suite_module()
    chat = FakeServer().chat()
    chat.crowded = lambda: crowded
    c = suite.Conversations(chat)
    missing = conv.Finding("BCAST-002", 1, "a new event", "nothing came", awaited=True)
    steps: list[str] = []

    def run(coro: Any) -> conv.Finding:
        coro.close()
        steps.append("step")
        return missing

    c.run = run
    try:
        seq = c.begin()
        op = suite.Op("connect", conn="c1", role="host", room="main")
        for _ in range(3):
            with pytest.raises(suite.SequenceFailed):
                c.play(seq, op)
        assert steps == (["step"] if crowded else ["step"] * 3)
        assert (c.starved is missing) is crowded
        shrunk: list[int] = []
        c.shrink = lambda best: shrunk.append(1) or best
        c.replay = lambda ops: (seq, missing)
        with pytest.raises(ConformanceFailure) as failed:
            suite._report(c, c.best)
        assert failed.value.requirement == "BCAST-002"
        assert failed.value.frame_awaited
        assert shrunk == ([] if crowded else [1])
    finally:
        c.loop.close()
