"""``edusphere-conformance load``: delivery under sustained load, on Locust.

Each run is short (a couple of seconds of sending, a few connections) and bounded by the
subprocess timeout: it passes the bundled server with two workers (one forked, one joined the
way a remote machine joins), passes the reference cluster with two workers, fails every
delivery fault of the reference server, and ends in bounded time, with load.json written and
one line on stderr, against an unreachable target, refused tokens, a server that dies during
the run, and hostile servers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.schemas import validate
from reference_server.demo import DEMO_SECRET, demo_target_dict
from reference_server.runner import ServerProcess
from tests import hostile
from tests.support import cli, closed_port, write_target
from tests.test_cluster import cluster  # noqa: F401 - the fixture

#: Seconds a load run may take here: a few of sending, Locust's start, the drain.
BOUND = 60.0
#: A busy room: 20 connections x 25 messages a second = 500 events a second to each connection
#: (the load faults strike past 50 a second; drop-when-busy past 640).
BUSY = ["--users", "20", "--rate", "40", "--duration", "2"]
QUIET = ["--users", "6", "--rate", "5", "--duration", "2"]
#: How local workers start, and how a worker on another machine starts.
MODULE = [sys.executable, "-m", "harness.load"]


def load(*args: str, timeout: float = BOUND) -> subprocess.CompletedProcess[str]:
    """``edusphere-conformance load ARGS``; the timeout is the hang guard."""
    return cli("load", *args, timeout=timeout)


def results(report_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((report_dir / "load.json").read_text())
    assert validate("load", data) == [], validate("load", data)
    return data


def assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("edusphere-conformance load: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A reference server (with ``request.param`` as its fault, if any); its target file, with a
    1 s receive_timeout (the drain after a loss ends after 1 s of silence)."""
    fault = getattr(request, "param", None)
    args = ["--demo", "--db", str(tmp_path / "ref.sqlite3")]
    srv = ServerProcess(args + (["--fault", fault] if fault else [])).launch()
    try:
        data = demo_target_dict(srv.wait_ready())
        data["receive_timeout"] = 1.0
        yield write_target(tmp_path / "target.toml", data)
    finally:
        srv.stop()


def test_two_workers_one_forked_one_joined_pass_the_bundled_server(tmp_path: Path) -> None:
    port = closed_port()
    joiner = subprocess.Popen(
        [*MODULE, "--master-host", "127.0.0.1", "--master-port", str(port), "--join-timeout", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        done = load(
            *QUIET,
            *["--workers", "1", "--expect-workers", "2", "--master-port", str(port)],
            "--report-dir",
            str(tmp_path),
        )
        assert done.returncode == 0, done.stdout + done.stderr
        _, err = joiner.communicate(timeout=BOUND)
    finally:
        joiner.kill()
    assert joiner.returncode == 0, err
    assert "Traceback" not in done.stderr + err
    data = results(tmp_path)
    assert data["verdict"] == "DELIVERED"
    assert data["requirements"] == {"LOAD-001": "passed", "LOAD-003": "passed"}
    assert {c["worker"] for c in data["per_connection"]} == {0, 1}
    assert data["messages"]["sent"] == 6 * 10
    assert data["deliveries"] == {
        "expected": 6 * 60,
        "delivered": 6 * 60,
        "missing": 0,
        "duplicates": 0,
        "out_of_order": 0,
    }
    assert data["latency_ms"]["exact"] is True
    assert data["latency_ms"]["samples"] == 6 * 60
    assert 0 < data["latency_ms"]["p50"] <= data["latency_ms"]["p99"] <= data["latency_ms"]["max"]
    assert sum(row["sent_per_s"] for row in data["timeline"]) == 60
    assert "load: DELIVERED" in done.stdout
    page = (tmp_path / "load.html").read_text()
    assert "DELIVERED" in page and "<svg" in page and "w2-c1" in page
    for text in (done.stdout, done.stderr, page, (tmp_path / "load.json").read_text()):
        assert DEMO_SECRET not in text
        assert not re.search(r"eyJ[\w-]+\.[\w-]+\.", text), "a token in the output"


@pytest.mark.parametrize("server", ["drop-when-busy"], indirect=True)
def test_two_workers_fail_the_server_that_drops_events_when_busy(
    tmp_path: Path, server: Path
) -> None:
    done = load("--target", str(server), *BUSY, "--workers", "2", "--report-dir", str(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    data = results(tmp_path)
    assert data["verdict"] == "NOT DELIVERED"
    assert [f["kind"] for f in data["failures"]] == ["loss"]
    assert data["requirements"]["LOAD-001"] == "failed"
    assert data["deliveries"]["missing"] > 0
    assert {c["worker"] for c in data["per_connection"]} == {0, 1}
    assert "LOAD-001 loss: w" in done.stdout


@pytest.mark.parametrize(
    ("server", "kind"),
    [("duplicate-under-load", "duplicates"), ("reorder-under-load", "disorder")],
    indirect=["server"],
)
def test_one_process_fails_duplicates_and_disorder(tmp_path: Path, server: Path, kind: str) -> None:
    done = load("--target", str(server), *BUSY, "--report-dir", str(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    data = results(tmp_path)
    assert [f["kind"] for f in data["failures"]] == [kind]
    assert data["deliveries"]["missing"] == 0


@pytest.fixture
def cluster_target(tmp_path: Path, cluster: dict[str, object]) -> Path:  # noqa: F811
    """The reference cluster's target file (tests/test_cluster.py's fixture, a fault switch by
    indirect parametrization of ``cluster``), with a 1 s receive_timeout."""
    return write_target(tmp_path / "cluster.toml", {**cluster, "receive_timeout": 1.0})


def test_two_workers_pass_the_reference_cluster(tmp_path: Path, cluster_target: Path) -> None:
    done = load(
        "--target", str(cluster_target), *QUIET, "--workers", "2", "--report-dir", str(tmp_path)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data = results(tmp_path)
    assert data["settings"]["nodes"] == 2
    assert {c["where"].split(" (")[0] for c in data["per_connection"]} == {"node 1", "node 2"}
    assert {c["worker"] for c in data["per_connection"]} == {0, 1}
    assert data["deliveries"]["missing"] == 0


@pytest.mark.parametrize("cluster", ["fanout-one-node"], indirect=True)
def test_fails_a_cluster_whose_events_never_cross_nodes(
    tmp_path: Path, cluster_target: Path
) -> None:
    done = load("--target", str(cluster_target), *QUIET, "--report-dir", str(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    data = results(tmp_path)
    assert [f["kind"] for f in data["failures"]] == ["loss"]
    # every connection misses the other node's senders: half of what it expected
    assert all(c["missing"] == c["expected"] // 2 for c in data["per_connection"])


# --- bad input and faults: one line, bounded, load.json written -----------------------------


def test_an_unreachable_target_is_one_line_and_a_written_report(tmp_path: Path) -> None:
    data = demo_target_dict(f"ws://127.0.0.1:{closed_port()}/ws/chat/{{host}}/{{room}}")
    target = write_target(tmp_path / "t.toml", data)
    done = load("--target", str(target), "--report-dir", str(tmp_path / "r"))
    assert_one_line_error(done, "target unreachable", "127.0.0.1")
    data = results(tmp_path / "r")
    assert data["verdict"] == "INCOMPLETE"
    assert data["exit_status"] == 2
    assert "target unreachable" in data["reason"]


def test_refused_tokens_are_one_line(tmp_path: Path, server: Path) -> None:
    text = server.read_text().replace(DEMO_SECRET, "not-the-servers-secret-0123456789abcdef-xyz")
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(text)
    done = load("--target", str(wrong), "--report-dir", str(tmp_path / "r"))
    line = assert_one_line_error(done, "refused", "HTTP 403", "[auth]")
    assert "xyz" not in line
    assert results(tmp_path / "r")["verdict"] == "INCOMPLETE"


@pytest.mark.parametrize(
    "args",
    [
        ["--users", "0"],
        ["--rate", "-1"],
        ["--duration", "nan"],
        ["--users", "5000", "--rate", "1000", "--duration", "600"],
        ["--target", "ws://127.0.0.1:1/ws"],
        ["--target", "/no/such/target.toml"],
        ["--master-host", "127.0.0.1", "--workers", "2"],
        ["--workers", "2", "--expect-workers", "1"],
    ],
)
def test_usage_errors_are_one_line_and_write_nothing(tmp_path: Path, args: list[str]) -> None:
    done = load(*args, "--report-dir", str(tmp_path / "r"), timeout=30)
    assert_one_line_error(done)
    assert not (tmp_path / "r" / "load.json").exists()


def test_a_worker_without_a_master_leaves_in_bounded_time() -> None:
    port = str(closed_port())
    done = subprocess.run(
        [*MODULE, "--master-host", "127.0.0.1", "--master-port", port, "--join-timeout", "2"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert_one_line_error(done, "no master answered")


@pytest.mark.parametrize(
    ("signal_", "status", "reason"),
    [
        (signal.SIGTERM, 2, "nothing was judged"),  # dies: every connection lost
        (signal.SIGSTOP, 1, None),  # stops answering: the connections stay open, events lost
    ],
    ids=["dies", "stops-answering"],
)
def test_a_server_that_dies_or_stops_mid_run_ends_the_run_with_what_was_measured(
    tmp_path: Path, signal_: signal.Signals, status: int, reason: str | None
) -> None:
    srv = ServerProcess(["--demo", "--db", str(tmp_path / "ref.sqlite3")]).launch()
    data = demo_target_dict(srv.wait_ready())
    data["receive_timeout"] = 1.0
    target = write_target(tmp_path / "t.toml", data)
    report_dir = tmp_path / "r"
    proc = subprocess.Popen(
        [*MODULE, "--target", str(target), *QUIET, "--duration", "4", "--report-dir", report_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server_pid = srv.pid
    assert server_pid is not None
    try:
        wait_for_sending(report_dir, proc)
        os.kill(server_pid, signal_)
        out, err = proc.communicate(timeout=BOUND)
    finally:
        proc.kill()
        os.kill(server_pid, signal.SIGCONT)
        srv.stop()
    assert "Traceback" not in out + err
    assert proc.returncode == status, out + err
    result = results(report_dir)
    assert result["messages"]["sent"] > 0
    if reason:
        assert result["verdict"] == "INCOMPLETE"
        assert reason in result["reason"]
        assert result["connections"]["closed_during_run"] == 6
    else:
        assert result["verdict"] == "NOT DELIVERED"
        assert result["deliveries"]["missing"] > 0


def wait_for_sending(report_dir: Path, proc: subprocess.Popen[str]) -> None:
    """Until the run is sending (its first progress line says so), at most BOUND seconds."""
    assert proc.stdout is not None
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line or line.startswith("load: send"):
            return
    raise AssertionError("the run never started sending")


@pytest.mark.parametrize(("mode", "status"), [("silent", 1), ("flood", 1), ("huge", 2)])
def test_hostile_servers_end_in_bounded_time(tmp_path: Path, mode: str, status: int) -> None:
    with hostile.serve(mode, lifetime=BOUND) as url:
        target = hostile.write_hostile_target(tmp_path / "t.toml", url)
        done = load("--target", str(target), *QUIET, "--report-dir", str(tmp_path))
    assert "Traceback" not in done.stdout + done.stderr
    assert done.returncode == status, done.stdout + done.stderr
    data = results(tmp_path)
    if status == 1:
        assert data["deliveries"]["missing"] > 0  # nothing came back: loss
    else:
        assert data["connections"]["closed_during_run"] == 6  # every frame too big


# --- the report, without Locust ---------------------------------------------------------------


def test_the_report_is_escaped_redacted_and_renders(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from harness import redact
    from harness.core.tally import Reservoir, Tally, Timeline
    from harness.render import load_report as report
    from tests.test_report import chromium

    redact.register("s3cret-load-token")
    good, lossy = Tally("w1-c1", sender=0, account="host"), Tally("<b>w1-c2</b>", sender=1)
    for t in (good, lossy):
        t.arrive(0, 0)
    good.arrive(1, 0)
    for t in (good, lossy):
        t.expect({0: 1, 1: 1})
    lossy.errors, lossy.first_error = 1, "<script>x</script> s3cret-load-token"
    samples, timeline = Reservoir(), Timeline(100.0)
    for at, us in ((100.2, 1_500), (101.4, 2_500), (101.6, 9_000)):
        samples.add(us)
        timeline.delivered(at, us)
        timeline.sent(at)
    outcome = {
        "connected": 2,
        "width": 1.0,
        "workers": [{"worker": 0, "sent": 3}],
        "connections": [good.summary(), lossy.summary()],
        "samples": [samples.as_data()],
        "timeline": [timeline.as_data()],
    }
    now = datetime.now(UTC)
    data = report.build(
        outcome,
        settings={"users": 2, "rate": 1.0, "duration": 2.0, "workers": 0},
        target="t.toml",
        started=now,
        finished=now,
    )
    assert validate("load", data) == []
    assert data["verdict"] == "NOT DELIVERED"
    assert data["exit_status"] == 1
    assert data["latency_ms"] | {"samples": 0} == {
        "samples": 0,
        "deliveries": 3,
        "exact": True,
        "p50": 2.5,
        "p90": 9.0,
        "p99": 9.0,
        "max": 9.0,
    }
    report.write(tmp_path, data)
    page = (tmp_path / "load.html").read_text()
    assert "<script>x" not in page and "&lt;script&gt;" in page and "<b>w1-c2" not in page
    assert "s3cret-load-token" not in page + (tmp_path / "load.json").read_text()
    assert page.count("<svg") == 2
    png = tmp_path / "load.png"
    shot = chromium(tmp_path, "--window-size=1100,1600", f"--screenshot={png}", page_uri(tmp_path))
    assert png.is_file() and png.stat().st_size > 20_000, shot.stderr[-2000:]
    dom = chromium(tmp_path, "--dump-dom", page_uri(tmp_path))
    assert "NOT DELIVERED" in dom.stdout and "1 / 2" in dom.stdout


def page_uri(report_dir: Path) -> str:
    return (report_dir / "load.html").as_uri()


def test_one_process_passes_a_server_with_real_world_habits(tmp_path: Path) -> None:
    """Heartbeats, extra frames on connect and on join and leave, every message in fragments
    and compressed: the load mode reads through them all (issue 25)."""
    habits = ["--ping-interval", "0.2", "--ping-timeout", "2", "--history", "5", "--presence"]
    habits += ["--fragment", "--compression"]
    srv = ServerProcess(["--demo", "--db", str(tmp_path / "ref.sqlite3"), *habits]).launch()
    try:
        data = demo_target_dict(srv.wait_ready())
        data["receive_timeout"] = 1.0
        target = write_target(tmp_path / "target.toml", data)
        done = load("--target", str(target), *QUIET, "--report-dir", str(tmp_path / "r"))
    finally:
        srv.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    report = results(tmp_path / "r")
    assert report["verdict"] == "DELIVERED"
    assert report["deliveries"]["missing"] == 0
    assert sum(c["others"] for c in report["per_connection"]) > 0  # the extra frames came
