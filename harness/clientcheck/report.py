"""Renderers of a client-check :class:`~harness.clientcheck.results.RunResult`.

``client-compliance.html``: self-contained (inline CSS and SVG, no script, no external asset),
one timeline per scenario (expected windows as shaded bands, observed attempts as marks, refused
ones as crosses), the requirement verdicts with their catalogue statements, and the tolerance.
``client-results.json``: the same model as data. Every client-provided string was redacted when
the model was built; the settings' command is redacted here.
"""

from __future__ import annotations

import datetime as dt
import math
from html import escape
from pathlib import Path

from harness.clientcheck.results import RunResult, ScenarioResult, settings_json

__all__ = ["HTML_NAME", "JSON_NAME", "render_html", "render_timeline_svg", "write_reports"]

HTML_NAME = "client-compliance.html"
JSON_NAME = "client-results.json"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1040px;
color:#1d232b;line-height:1.4;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;
border-bottom:1px solid #d0d7de;padding-bottom:.2rem}h3{font-size:1rem;margin:1rem 0 .3rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f5f7}code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;
font-size:.85em}.v{font-weight:600;white-space:nowrap}
.passed{color:#116329}.failed{color:#b42318}.not_tested{color:#7a5c00}
.banner{padding:.6rem 1rem;border-radius:6px;font-weight:600;margin:1rem 0}
.banner.passed{background:#dafbe1}.banner.failed{background:#ffebe9}
.muted{color:#59636e}ul.details{margin:.2rem 0;padding-left:1.1rem}
.legend span{display:inline-block;margin-right:1.2rem}svg{max-width:100%;height:auto}
.scenario{margin-bottom:1.5rem}.frame{white-space:pre-wrap;word-break:break-all}
"""

_W = 960
_LEFT = 120
_RIGHT = 24
_PLOT = _W - _LEFT - _RIGHT
_Y_SERVER = 34
_Y_EXPECTED = 76  # two sub-rows, so that overlapping windows stay readable
_BAND = 14
_Y_OBSERVED = 124
_Y_AXIS = 158
_H = 186


def _nice_step(span: float) -> float:
    raw = span / 8 if span > 0 else 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 5.0):
        if raw <= factor * power:
            return factor * power
    return 10.0 * power


def _fmt_tick(ms: float, step: float) -> str:
    if step >= 1000:
        return f"{ms / 1000:g} s"
    return f"{ms:g} ms"


def render_timeline_svg(scenario: ScenarioResult) -> str:
    """The scenario's timeline: server events, expected windows, observed attempts."""
    analysis = scenario.analysis
    ends = [scenario.observed_until_ms]
    ends += [e.high_ms for e in analysis.expected]
    ends += [q.start_ms + q.required_ms for q in analysis.quiet]
    ends += [a.at_ms for a in scenario.attempts]
    span = max(max(ends), 1.0) * 1.03

    def x(ms: float) -> float:
        return _LEFT + max(0.0, min(ms, span)) / span * _PLOT

    failed_attempts = {
        f.attempt for f in scenario.findings if f.verdict == "failed" and f.attempt is not None
    }
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" '
        f'height="{_H}" role="img" aria-label="timeline of {escape(scenario.name)}">',
        "<defs>"
        '<pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#9aa4ae" '
        'stroke-width="2"/></pattern></defs>',
        f'<rect x="0" y="0" width="{_W}" height="{_H}" fill="#ffffff"/>',
    ]
    for y, label in (
        (_Y_SERVER, "server"),
        (_Y_EXPECTED, "expected"),
        (_Y_OBSERVED, "observed"),
    ):
        out.append(
            f'<text x="8" y="{y + 4}" font-size="12" fill="#59636e">{label}</text>'
            f'<line x1="{_LEFT}" y1="{y}" x2="{_LEFT + _PLOT}" y2="{y}" stroke="#e6e9ec"/>'
        )
    # axis
    step = _nice_step(span)
    out.append(
        f'<line x1="{_LEFT}" y1="{_Y_AXIS}" x2="{_LEFT + _PLOT}" y2="{_Y_AXIS}" stroke="#59636e"/>'
    )
    tick = 0.0
    while tick <= span:
        tx = x(tick)
        out.append(
            f'<line x1="{tx:.1f}" y1="{_Y_AXIS}" x2="{tx:.1f}" y2="{_Y_AXIS + 4}" '
            'stroke="#59636e"/>'
            f'<text x="{tx:.1f}" y="{_Y_AXIS + 16}" font-size="10" text-anchor="middle" '
            f'fill="#59636e">{escape(_fmt_tick(tick, step))}</text>'
        )
        tick += step
    # quiet windows (hatched) and expected windows (bands)
    for quiet in analysis.quiet:
        x0, x1 = x(quiet.start_ms), x(quiet.start_ms + quiet.required_ms)
        out.append(
            f'<rect x="{x0:.1f}" y="{_Y_EXPECTED - _BAND - 2}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{2 * _BAND + 4}" fill="url(#hatch)" opacity="0.6"><title>'
            f"{escape(quiet.requirement)}: {escape(quiet.reason)}; no attempt from "
            f"{quiet.start_ms:.0f} ms for at least {quiet.required_ms:.0f} ms</title></rect>"
        )
    for row, exp in enumerate(analysis.expected):
        x0, x1, xm = x(exp.low_ms), x(exp.high_ms), x(exp.expected_ms)
        top = _Y_EXPECTED - _BAND - 1 if row % 2 == 0 else _Y_EXPECTED + 1
        label_y = top - 3 if row % 2 == 0 else top + _BAND + 10
        ok = exp.matched
        fill = "#2da44e" if ok else "#cf222e"
        seen = (
            f"observed #{exp.observed} at {exp.observed_ms:.0f} ms"
            if exp.observed_ms is not None
            else "no attempt observed"
        )
        out.append(
            f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{_BAND}" fill="{fill}" fill-opacity="0.18" stroke="{fill}" '
            f'stroke-opacity="0.5"><title>{escape(exp.requirement)}: attempt {exp.n} expected '
            f"at {exp.expected_ms:.0f} ms ({exp.n} x base after the {exp.reference_kind} at "
            f"{exp.reference_ms:.0f} ms), window {exp.low_ms:.0f} to {exp.high_ms:.0f} ms; "
            f"{escape(seen)}</title></rect>"
            f'<line x1="{xm:.1f}" y1="{top}" x2="{xm:.1f}" y2="{top + _BAND}" '
            f'stroke="{fill}" stroke-dasharray="2,2"/>'
            f'<text x="{xm:.1f}" y="{label_y}" font-size="10" text-anchor="middle" '
            f'fill="#59636e">n={exp.n}</text>'
        )
        if exp.observed_ms is not None:
            out.append(
                f'<line x1="{xm:.1f}" y1="{top + _BAND}" x2="{x(exp.observed_ms):.1f}" '
                f'y2="{_Y_OBSERVED - 8}" stroke="{fill}" stroke-opacity="0.45"/>'
            )
    # server events
    for trig in analysis.triggers:
        tx = x(trig.at_ms)
        label, colour = {
            "loss": ("loss", "#cf222e"),
            "failure": ("503", "#bc4c00"),
            "clean-close": ("1000", "#0969da"),
        }[trig.kind]
        what = {
            "loss": "unclean loss (TCP aborted)",
            "failure": "handshake refused (HTTP 503)",
            "clean-close": "clean close (1000)",
        }[trig.kind]
        out.append(
            f'<line x1="{tx:.1f}" y1="{_Y_SERVER - 10}" x2="{tx:.1f}" y2="{_Y_SERVER + 10}" '
            f'stroke="{colour}" stroke-width="2"><title>{what} of attempt #{trig.attempt} at '
            f"{trig.at_ms:.0f} ms</title></line>"
            f'<text x="{tx:.1f}" y="{_Y_SERVER - 13}" font-size="9" text-anchor="middle" '
            f'fill="{colour}">{label}</text>'
        )
    # observed attempts
    for attempt in scenario.attempts:
        ax = x(attempt.at_ms)
        bad = attempt.index in failed_attempts
        tip = (
            f"attempt #{attempt.index} at {attempt.at_ms:.0f} ms to {attempt.path}: "
            f"{attempt.outcome}"
            + (f" (HTTP {attempt.status})" if attempt.status and attempt.status != 101 else "")
            + f", ended: {attempt.end}"
            + (" - a requirement failed here" if bad else "")
        )
        if bad:
            out.append(
                f'<circle cx="{ax:.1f}" cy="{_Y_OBSERVED}" r="10" fill="none" '
                'stroke="#bf8700" stroke-width="2.5"/>'
            )
        if attempt.outcome == "accepted":
            out.append(
                f'<circle cx="{ax:.1f}" cy="{_Y_OBSERVED}" r="6" fill="#2da44e">'
                f"<title>{escape(tip)}</title></circle>"
            )
        else:
            out.append(
                f'<g stroke="#cf222e" stroke-width="2.5"><title>{escape(tip)}</title>'
                f'<line x1="{ax - 5:.1f}" y1="{_Y_OBSERVED - 5}" x2="{ax + 5:.1f}" '
                f'y2="{_Y_OBSERVED + 5}"/><line x1="{ax - 5:.1f}" y1="{_Y_OBSERVED + 5}" '
                f'x2="{ax + 5:.1f}" y2="{_Y_OBSERVED - 5}"/></g>'
            )
        out.append(
            f'<text x="{ax:.1f}" y="{_Y_OBSERVED + 20}" font-size="9" text-anchor="middle" '
            f'fill="#59636e">#{attempt.index}</text>'
        )
    end_x = x(scenario.observed_until_ms)
    out.append(
        f'<line x1="{end_x:.1f}" y1="{_Y_SERVER - 12}" x2="{end_x:.1f}" y2="{_Y_OBSERVED + 10}" '
        'stroke="#59636e" stroke-dasharray="4,3"><title>observation ended at '
        f"{scenario.observed_until_ms:.0f} ms</title></line>"
    )
    out.append("</svg>")
    return "".join(out)


def _verdict(verdict: str) -> str:
    text = {"passed": "passed", "failed": "FAILED", "not_tested": "not tested"}[verdict]
    return f'<span class="v {verdict}">{text}</span>'


def _details(details: tuple[str, ...] | list[str]) -> str:
    if not details:
        return ""
    items = "".join(f"<li>{escape(d)}</li>" for d in details)
    return f'<ul class="details">{items}</ul>'


def _overall_details(result: RunResult, rid: str) -> str:
    """Failures (or reasons) in full; for a pass, where it was shown."""
    verdict = result.verdicts[rid]
    if verdict.verdict != "passed":
        return _details(verdict.details)
    where = [
        f'<a href="#{escape(s.name)}">{escape(s.name)}</a>'
        for s in result.scenarios
        if s.verdicts[rid].verdict == "passed"
    ]
    count = len(verdict.details)
    return f'<div class="muted">{count} check(s) passed in {", ".join(where)}</div>'


def _scenario_html(result: RunResult, scenario: ScenarioResult) -> str:
    parts = [
        f'<section class="scenario" id="{escape(scenario.name)}">',
        f"<h2>{escape(scenario.name)}: {escape(scenario.title)}</h2>",
        f"<p>{escape(scenario.summary)}</p>",
        '<p class="muted">Plan (action per attempt, #0 is the first connection): '
        f"<code>{escape(', '.join(scenario.plan))}</code>, then "
        f"<code>{escape(scenario.default_action)}</code>; quiet period "
        f"{scenario.quiet_ms:.0f} ms after the last planned event; observed until "
        f"{scenario.observed_until_ms:.0f} ms. URL: <code>{escape(scenario.url)}</code>.",
    ]
    if scenario.client_exited_ms is not None:
        parts.append(
            f" The client exited by itself at {scenario.client_exited_ms:.0f} ms "
            f"(status {scenario.client_exit_status})."
        )
    parts.append("</p>")
    if scenario.incomplete:
        parts.append(f'<p class="failed">Incomplete: {escape(scenario.incomplete)}</p>')
    parts.append(render_timeline_svg(scenario))
    rows = []
    ordered = list(scenario.focus) + [
        rid
        for rid in scenario.verdicts
        if rid not in scenario.focus and any(f.requirement == rid for f in scenario.findings)
    ]
    for rid in ordered:
        req = result.catalogue.get(rid)
        verdict = scenario.verdicts[rid]
        focus = "" if rid in scenario.focus else ' <span class="muted">(also seen)</span>'
        rows.append(
            f"<tr><td class='mono'>{escape(rid)}{focus}</td>"
            f"<td>{escape(req.statement if req else '')}</td>"
            f"<td>{_verdict(verdict.verdict)}{_details(verdict.details)}</td></tr>"
        )
    parts.append(
        "<h3>Requirements</h3><table><tr><th>id</th><th>statement</th><th>verdict</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    arows = []
    for a in scenario.attempts:
        frames = "".join(
            f'<div class="frame mono">{a_f.at_ms:.0f} ms: {escape(a_f.text)}'
            + (f" <span class='muted'>({escape(a_f.schema)})</span>" if a_f.schema else "")
            + (f"<span class='failed'>{_details(a_f.violations)}</span>" if a_f.violations else "")
            + "</div>"
            for a_f in a.frames
        )
        status = f" ({a.status})" if a.status is not None else ""
        end = f"{a.end}" + (f" at {a.end_ms:.0f} ms" if a.end_ms is not None else "")
        notes = _details(a.notes)
        arows.append(
            f"<tr><td>#{a.index}</td><td>{a.at_ms:.0f} ms</td>"
            f"<td class='mono'>{escape(a.path)}</td><td>{escape(a.action)}</td>"
            f"<td>{escape(a.outcome)}{status}</td><td>{escape(end)}</td>"
            f"<td>{frames}{notes}</td></tr>"
        )
    parts.append(
        "<h3>Attempts</h3><table><tr><th>#</th><th>arrived</th><th>path</th><th>plan</th>"
        "<th>outcome</th><th>end</th><th>frames sent</th></tr>" + "".join(arows) + "</table>"
    )
    if scenario.notes:
        parts.append("<h3>Notes</h3>" + _details(scenario.notes))
    parts.append("</section>")
    return "".join(parts)


def render_html(result: RunResult) -> str:
    """The whole report as one self-contained HTML document."""
    settings = settings_json(result.settings)
    overall = "failed" if result.exit_status else "passed"
    if not result.exit_status:
        headline = "Every MUST requirement exercised passed."
    else:
        reasons = [", ".join(result.failed_musts)] if result.failed_musts else []
        if result.incomplete:
            reasons.append(f"incomplete: {result.incomplete}")
        headline = "Failed: " + "; ".join(reasons) + "."
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
    req_rows = []
    for req in result.catalogue.requirements:
        verdict = result.verdicts[req.id]
        req_rows.append(
            f"<tr><td class='mono'>{escape(req.id)}</td><td>{escape(req.level)}</td>"
            f"<td>{escape(req.statement)}<div class='muted'>{escape(req.source)}</div></td>"
            f"<td>{_verdict(verdict.verdict)}{_overall_details(result, req.id)}</td></tr>"
        )
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    body = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>EduSphere client conformance (client-check)</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>EduSphere client conformance</h1>",
        f'<p class="muted">edusphere-conformance client-check, catalogue '
        f"{escape(result.catalogue.version)}, generated {generated}</p>",
        f'<div class="banner {overall}">{escape(headline)} Exit status {result.exit_status}.</div>',
        "<table>"
        + "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in srows)
        + "</table>",
        "<h2>Requirements (scope: client)</h2>",
        "<table><tr><th>id</th><th>level</th><th>statement</th><th>verdict</th></tr>"
        + "".join(req_rows)
        + "</table>",
        '<p class="legend muted"><span>Timelines: <b>server</b> lane: loss (TCP aborted), '
        "503 (handshake refused), 1000 (clean close)</span><span><b>expected</b> lane: window "
        "of attempt n (expected time +- tolerance; green when an attempt fell in it, red when "
        "not), hatched: a period with no attempt allowed</span><span><b>observed</b> lane: "
        "green dot = accepted attempt, red cross = refused attempt, amber ring = an attempt "
        "at which a requirement failed</span></p>",
    ]
    body += [_scenario_html(result, s) for s in result.scenarios]
    if not result.scenarios:
        body.append("<p>No scenario ran.</p>")
    body.append("</body></html>")
    return "\n".join(body) + "\n"


def write_reports(result: RunResult, report_dir: Path) -> tuple[Path, Path]:
    """Write ``client-compliance.html`` and ``client-results.json``; returns their paths."""
    report_dir.mkdir(parents=True, exist_ok=True)
    html_path = report_dir / HTML_NAME
    json_path = report_dir / JSON_NAME
    html_path.write_text(render_html(result), encoding="utf-8")
    json_path.write_text(result.dumps(), encoding="utf-8")
    return html_path, json_path
