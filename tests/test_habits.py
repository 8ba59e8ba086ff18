"""A conformant server with real-world habits passes ``--strict``: the first rule, for servers
nobody here wrote (issue 25).

Each habit is a setting of the reference server (``serve --help``): heartbeats that end a client
whose pong is late, idle connections closed with 1001, an open rate limit, extra frames on
connect and on join and leave, every message in fragments and compressed, refusals by close
codes of the 4000 range with claims naming the user by id and a required audience. None is a
defect; a harness that fails one is wrong. What a habit keeps from being tested is "not tested"
with its reason, and only there where the habit explains it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reference_server.demo import demo_config, demo_target_dict
from reference_server.runner import ServerThread
from tests.support import (
    NO_RESTART,
    assert_passes_everything,
    not_tested,
    run_suites,
    verdicts,
    write_not_applicable,
    write_target,
)


@dataclass(frozen=True)
class Habit:
    name: str
    server: dict[str, Any]
    auth: dict[str, Any] = field(default_factory=dict)
    only: str | None = None
    #: tables of the target file to add (``[load]``, say)
    target: dict[str, Any] = field(default_factory=dict)
    #: requirement -> a text one of its observations must carry
    observed: dict[str, str] = field(default_factory=dict)
    #: requirement -> a text its "not tested" reason must carry (what the habit prevents)
    untested: dict[str, str] = field(default_factory=dict)


HABITS = [
    # aiohttp's heartbeat=, as the issue met it: a ping every 0.5 s, a client whose pong is a
    # second late is ended. The lagging reader cannot answer while it does not read.
    # The reader lags 3 s: the server ends it (no close frame gets through), which is not a
    # silent skip.
    Habit(
        "heartbeat-0.5s-load",
        {"ping_interval": 0.5, "ping_timeout": 1.0},
        only="LOAD",
        target={"load": {"lag": 3.0}},
        observed={"LOAD-002": "the server ended the lagging reader after"},
    ),
    Habit("heartbeat-200ms", {"ping_interval": 0.2, "ping_timeout": 2.0}),
    Habit("idle-close-1001", {"idle_timeout": 3.0}),
    # The conversations' budget is cut from 10 s (2 x receive_timeout): at 30 frames a second
    # that is a few sequences, enough to show that the limit's errors are not findings.
    Habit(
        "rate-limit-30",
        {"rate_limit": 30, "rate_limit_error": "Rate limit exceeded."},
        target={"conversations": {"time_budget": 3.0}},
    ),
    Habit("history-and-presence", {"history": 20, "presence": True}),
    Habit("fragments-and-deflate", {"fragment": True, "compression": True}),
    Habit(
        "close-4401-4403-4404-uid-audience",
        {
            "refusal": "close",
            "refusal_close_codes": (4401, 4403, 4404),
            "user_claim": "uid",
            "user_claim_kind": "id",
            "audience": "edusphere-chat",
        },
        auth={
            "claims": {"uid": "{user_id}", "aud": "edusphere-chat", "exp": "{exp}"},
        },
    ),
]


def _run(habit: Habit, tmp_path: Path) -> tuple[int, dict[str, Any] | None, str]:
    config = demo_config(database=str(tmp_path / "habit.sqlite3"), **habit.server)
    with ServerThread(config) as server:
        data = demo_target_dict(server.url_template)
        data["auth"] = {**data["auth"], **habit.auth}
        data["limits"] = {
            "max_length": config.max_length,
            "max_frame_bytes": config.max_frame_bytes,
        }
        data.update(habit.target)
        target = write_target(tmp_path / "target.toml", data)
        baseline = write_not_applicable(tmp_path / "baseline.toml", NO_RESTART)
        outcome = run_suites(
            target,
            tmp_path / "reports",
            "--strict",
            "--baseline",
            str(baseline),
            only=habit.only,
            timeout=600,
        )
        server.raise_errors()
    return outcome


@pytest.mark.parametrize("habit", HABITS, ids=[h.name for h in HABITS])
def test_a_server_with_the_habit_passes_strict(habit: Habit, tmp_path: Path) -> None:
    code, results, output = _run(habit, tmp_path)
    if "rate_limit" in habit.server:  # the run says it paced itself, whatever its verdict
        assert results is not None, output[-3000:]
        assert any("rate-limits one connection" in w for w in results.get("warnings", [])), output
    for rid, text in habit.observed.items():
        assert results is not None, output[-3000:]
        (entry,) = [r for r in results["requirements"] if r["id"] == rid]
        assert any(text in o for o in entry.get("observations", [])), entry
    if habit.only is not None:
        assert results is not None, output[-3000:]
        chosen = [r for r in results["requirements"] if r["id"].startswith(habit.only)]
        assert {r["verdict"] for r in chosen} == {"passed"}, output[-4000:]
        assert code == 0, output[-3000:]
        return
    if not habit.untested:
        assert_passes_everything(code, results, output, label=f"{habit.name}: ")
        return
    assert results is not None, output[-3000:]
    assert verdicts(results, "failed", ("MUST", "SHOULD", "INFO")) == [], output[-4000:]
    reasons = not_tested(results, ("MUST", "SHOULD"))
    assert sorted(reasons) == sorted(habit.untested), output[-4000:]
    for rid, text in habit.untested.items():
        assert text in (reasons[rid] or ""), (rid, reasons[rid])
