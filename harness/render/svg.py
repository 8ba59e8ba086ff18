"""Timelines as inline SVG: server events, expected windows, observed attempts (client-check).

One lane each for what the harness did (loss, 503, clean close), where the policy expects
attempts (a band per expected window, hatched periods with no attempt allowed) and what was
observed (accepted attempts as dots, refused ones as crosses, a ring where a requirement
failed). The SVG is self-contained (no script, no external reference); every text is
escaped. It renders the model and never judges: windows and failed attempts come from it.
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only the types: rendering needs no socket code
    from harness.client.results import ScenarioResult

__all__ = ["render_timeline_svg"]

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
