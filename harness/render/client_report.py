"""Client mode's reports: the renderers of a client-check run (``ClientRun``).

They read :class:`~harness.client.results.ClientRun`; the files, in the report directory:

- ``client-compliance.html``: self-contained (inline CSS and SVG, no script, no external asset):
  the pieces every HTML report shares (:mod:`harness.render.html`: verdict banner, summary per
  level, requirements table) with the settings and one section per scenario: its timeline
  (:mod:`harness.render.svg`; expected windows as shaded bands, observed attempts as marks,
  refused ones as crosses), its verdicts and its attempts with their frames.
- ``client-results.json``: :meth:`RunResult.as_json` (schemas/results.json, ``mode: client``)
  with client-check's own keys (settings, scenarios, ...).
- ``client-junit.xml``: :mod:`harness.render.junit`, one test case per client requirement.

Every client-provided string was redacted when the model was built; the renderers redact again.

:mod:`harness.client` is imported for its types only, and in the functions that read the
model: its package imports its CLI, which imports this module.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from harness.core.results import RequirementResult
from harness.render import files
from harness.render.html import (
    banner,
    details_list,
    esc,
    meta_table,
    page,
    requirements_table,
    summary_table,
    verdict_badge,
)
from harness.render.svg import render_timeline_svg

if TYPE_CHECKING:
    from harness.client.results import ClientRun, ScenarioResult

__all__ = [
    "HTML_NAME",
    "JSON_NAME",
    "JUNIT_NAME",
    "Reports",
    "render_html",
    "render_timeline_svg",
    "write_reports",
]

HTML_NAME = "client-compliance.html"
JSON_NAME = "client-results.json"
JUNIT_NAME = "client-junit.xml"


def _overall_notes(run: ClientRun, verdict: RequirementResult) -> str:
    """Failures (or reasons) in full; for a pass, where it was shown."""
    from harness.client.results import evidence

    rid = verdict.requirement.id
    if verdict.verdict != "passed":
        return details_list(evidence(verdict, run.findings))
    where = [
        f'<a href="#{esc(s.name)}">{esc(s.name)}</a>'
        for s in run.scenarios
        if s.verdicts[rid].verdict == "passed"
    ]
    count = len(evidence(verdict, run.findings))
    return f'<div class="muted">{count} check(s) passed in {", ".join(where)}</div>'


def _scenario_html(run: ClientRun, scenario: ScenarioResult) -> str:
    from harness.client.results import evidence

    parts = [
        f'<section class="scenario" id="{esc(scenario.name)}">',
        f"<h2>{esc(scenario.name)}: {esc(scenario.title)}</h2>",
        f"<p>{esc(scenario.summary)}</p>",
        '<p class="muted">Plan (action per attempt, #0 is the first connection): '
        f"<code>{esc(', '.join(scenario.plan))}</code>, then "
        f"<code>{esc(scenario.default_action)}</code>; quiet period "
        f"{scenario.quiet_ms:.0f} ms after the last planned event; observed until "
        f"{scenario.observed_until_ms:.0f} ms. URL: <code>{esc(scenario.url)}</code>.",
    ]
    if scenario.client_exited_ms is not None:
        parts.append(
            f" The client exited by itself at {scenario.client_exited_ms:.0f} ms "
            f"(status {scenario.client_exit_status})."
        )
    parts.append("</p>")
    if scenario.incomplete:
        parts.append(f'<p class="failed">Incomplete: {esc(scenario.incomplete)}</p>')
    parts.append(render_timeline_svg(scenario))
    shown = [*scenario.focus] + [
        rid
        for rid in scenario.verdicts
        if rid not in scenario.focus and any(f.requirement == rid for f in scenario.findings)
    ]
    rows = []
    for rid in shown:
        verdict = scenario.verdicts[rid]
        also = "" if rid in scenario.focus else ' <span class="muted">(also seen)</span>'
        rows.append(
            f"<tr><td class='mono'>{esc(rid)}{also}</td>"
            f"<td>{esc(verdict.requirement.statement)}</td>"
            f"<td>{verdict_badge(verdict.verdict)}"
            f"{details_list(evidence(verdict, scenario.findings))}</td></tr>"
        )
    parts.append(
        "<h3>Requirements</h3><table><tr><th>id</th><th>statement</th><th>verdict</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    arows = []
    for a in scenario.attempts:
        frames = "".join(
            f'<div class="frame mono">{f.at_ms:.0f} ms: {esc(f.text)}'
            + (f" <span class='muted'>({esc(f.schema)})</span>" if f.schema else "")
            + (f"<span class='failed'>{details_list(f.violations)}</span>" if f.violations else "")
            + "</div>"
            for f in a.frames
        )
        status = f" ({a.status})" if a.status is not None else ""
        end = f"{a.end}" + (f" at {a.end_ms:.0f} ms" if a.end_ms is not None else "")
        arows.append(
            f"<tr><td>#{a.index}</td><td>{a.at_ms:.0f} ms</td>"
            f"<td class='mono'>{esc(a.path)}</td><td>{esc(a.action)}</td>"
            f"<td>{esc(a.outcome)}{status}</td><td>{esc(end)}</td>"
            f"<td>{frames}{details_list(a.notes)}</td></tr>"
        )
    parts.append(
        "<h3>Attempts</h3><table><tr><th>#</th><th>arrived</th><th>path</th><th>plan</th>"
        "<th>outcome</th><th>end</th><th>frames sent</th></tr>" + "".join(arows) + "</table>"
    )
    if scenario.notes:
        parts.append("<h3>Notes</h3>" + details_list(scenario.notes))
    parts.append("</section>")
    return "".join(parts)


_LEGEND = (
    '<p class="legend muted"><span>Timelines: <b>server</b> lane: loss (TCP aborted), '
    "503 (handshake refused), 1000 (clean close)</span><span><b>expected</b> lane: window "
    "of attempt n (expected time +- tolerance; green when an attempt fell in it, red when "
    "not), hatched: a period with no attempt allowed</span><span><b>observed</b> lane: "
    "green dot = accepted attempt, red cross = refused attempt, amber ring = an attempt "
    "at which a requirement failed</span></p>"
)


def render_html(run: ClientRun) -> str:
    """The whole report as one self-contained HTML document."""
    from harness.client.results import settings_json

    result = run.result
    settings = settings_json(run.settings)
    tolerance = f"{settings['tolerance_ms']:g} ms" + (
        " (default: max(250 ms, 20 % of the base delay))"
        if settings["tolerance_is_default"]
        else ""
    )
    srows = [
        ("mode", str(settings["mode"])),
        ("client command", str(settings["command"] or "(external client, listen-only)")),
        ("base delay (RECONNECT_DELAY)", f"{settings['base_delay_ms']:g} ms"),
        ("max attempts (MAX_RECONNECT_ATTEMPTS)", str(settings["max_attempts"])),
        ("tolerance", tolerance),
        ("room path", str(settings["room_path"])),
        ("delay reference", str(settings["delay_reference"])),
        ("frame wait", f"{settings['frame_wait_ms']:g} ms"),
    ]
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    body = [
        "<h1>EduSphere client conformance</h1>",
        f'<p class="muted">edusphere-conformance client-check, harness '
        f"{esc(result.harness_version)}, catalogue {esc(result.catalogue.version)}, started "
        f"{esc(result.started or 'unknown')}, {result.duration_s:.1f} s; generated "
        f"{generated}</p>",
        banner(result),
        meta_table(srows),
        "<h2>Summary</h2>",
        summary_table(result),
        "<h2>Requirements (scope: client)</h2>",
        requirements_table(result, lambda r: _overall_notes(run, r)),
        _LEGEND,
    ]
    body += [_scenario_html(run, s) for s in run.scenarios]
    if not run.scenarios:
        body.append("<p>No scenario ran.</p>")
    return page("EduSphere client conformance (client-check)", body)


class Reports(NamedTuple):
    """The files :func:`write_reports` wrote."""

    html: Path
    json: Path
    junit: Path


def write_reports(run: ClientRun, report_dir: Path) -> Reports:
    """Write ``client-compliance.html``, ``client-results.json`` and ``client-junit.xml``."""
    report_dir.mkdir(parents=True, exist_ok=True)
    html_path = report_dir / HTML_NAME
    json_path = report_dir / JSON_NAME
    html_path.write_text(render_html(run), encoding="utf-8")
    json_path.write_text(run.dumps(), encoding="utf-8")
    junit_path = files.write_junit(run.result, report_dir / JUNIT_NAME)
    return Reports(html_path, json_path, junit_path)
