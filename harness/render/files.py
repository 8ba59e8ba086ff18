"""Writing a run's files: results.json (with the replay scripts of its sequence figures beside it)
and junit.xml, the same way in every mode; and, for a run that stopped before its tests
(:func:`write_stopped_run`, the one writer of every mode), files that say why: all three (with a
compliance page of its own), or the load mode's."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from harness import __version__, redact
from harness.core.results import RunResult, stopped_before_tests
from harness.render import html, junit, load_report, replay_script

#: The server mode's report files.
RESULTS_JSON, JUNIT_XML, COMPLIANCE_HTML = "results.json", "junit.xml", "compliance.html"


def write_results_json(result: RunResult, path: Path) -> Path:
    """results.json at ``path``, and beside it one replay script per ``sequence`` figure
    (:func:`harness.render.replay_script.write_replays`): each such figure of ``result`` gains
    ``"replay"``, the script's file name, before results.json (and the HTML report, rendered
    after it) is written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replay_script.write_replays(
        {
            "requirements": [
                {"id": r.requirement.id, "figures": r.figures} for r in result.requirements
            ]
        },
        path.parent,
    )
    path.write_text(result.dumps(), encoding="utf-8")
    return path


def write_junit(result: RunResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit.render(result), encoding="utf-8")
    return path


def write_stopped(result: RunResult, report_dir: Path) -> list[Path]:
    """Every report file of a run that stopped before its tests (a target file that cannot be
    used, a TLS failure, an unreachable host): ``results.json`` and ``junit.xml`` as always,
    and ``compliance.html`` as a page of its own, whose banner says why. A stale report of an
    earlier run must never stand for this one."""
    report_dir.mkdir(parents=True, exist_ok=True)
    page = html.page(
        "EduSphere chat conformance report",
        [
            "<h1>EduSphere chat conformance report</h1>",
            html.banner(result),
            html.summary_table(result),
            html.requirements_table(result),
        ],
    )
    (report_dir / COMPLIANCE_HTML).write_text(redact.redact(page), encoding="utf-8")
    return [
        write_results_json(result, report_dir / RESULTS_JSON),
        write_junit(result, report_dir / JUNIT_XML),
        report_dir / COMPLIANCE_HTML,
    ]


def write_stopped_run(
    line: str,
    report_dir: Path,
    *,
    started: datetime,
    mode: Literal["server", "load"] = "server",
    **options: Any,
) -> None:
    """The one writer of a run that stopped before its tests, with ``line`` as its reason: the
    server mode's results.json, junit.xml and compliance.html (``options``:
    :func:`harness.core.results.aggregate`'s target, selection, strict), or the load mode's
    load.json and load.html (``options``: its settings and target). A report directory that
    cannot be written loses nothing: the line on the terminal says it all."""
    if mode == "load":
        with contextlib.suppress(OSError):
            report_dir.mkdir(parents=True, exist_ok=True)
            data = load_report.build(
                {"stopped": line}, started=started, finished=datetime.now(UTC), **options
            )
            load_report.write(report_dir, data)
        return
    result = stopped_before_tests(
        line,
        started=started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        harness_version=__version__,
        **options,
    )
    with contextlib.suppress(OSError):
        write_stopped(result, report_dir)
