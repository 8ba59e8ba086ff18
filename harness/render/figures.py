"""What a test measured, as HTML: the delivery figures of the load tests (LOAD-004, LOAD-002)
and the shortest failing sequence of the stateful tests.

A burst's figures (:func:`harness.core.delivery.judge_burst`) become a table, one line per
connection (delivered / expected, missing, duplicates, out of order, latency p50 / p99 / max),
and a small self-contained SVG plot of each connection's deliveries over time: a connection
that lost events ends below the dashed line of what was expected. A lag's figures become one
line. A sequence (a stateful test's steps, shrunk: schemas/results.json, ``figures``) becomes a
table, one line per step (connection, what it did, expected, observed), the failing step
highlighted, the witness lines under it and the command that replays it
(:mod:`harness.render.replay_script`). Renders the figures and never judges; every text is
escaped (a sequence's, which holds frames and bodies, redacted first).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from html import escape
from typing import Any
from urllib.parse import quote

from harness import redact
from harness.core.transcript import shorten
from harness.render import replay_script

__all__ = ["number", "render_figures"]

_W, _H = 640, 170
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 14, 30
#: Connections a table shows open; a longer one is folded (a click opens it).
_ROWS = 40
#: Characters of a step's frame a sequence table shows.
_FRAME_CHARS = 300


def number(value: object, unit: str = "") -> str:
    """A figure for a table: thousands separated, one decimal; "–" for none."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.1f}{unit}"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return escape(str(value))


def render_figures(figures: list[dict[str, Any]]) -> str:
    """The figures of one requirement's tests (``RequirementResult.figures``), as HTML."""
    return "".join(_one(f) for f in figures if isinstance(f, dict))


def _one(figure: dict[str, Any]) -> str:
    kind = figure.get("kind")
    if kind == "burst":
        return _burst(figure)
    if kind == "sequence":
        return _sequence(figure)
    if kind == "lag":
        closed = figure.get("closed")
        return (
            '<div class="es-figures"><b>Lagging reader</b>: '
            f"{number(figure.get('delivered'))} of {number(figure.get('messages'))} events "
            f"({number((figure.get('bytes') or 0) / 2**20)} MiB) after lagging "
            f"{number(figure.get('lagged_s'))} s; missing {number(figure.get('missing'))}"
            + (f"; {escape(str(closed))}" if closed else "")
            + "</div>"
        )
    return ""


def _burst(figure: dict[str, Any]) -> str:
    receivers = [r for r in figure.get("receivers", []) if isinstance(r, dict)]
    f = figure.get
    head = (
        f"<b>Burst</b>: {number(f('messages'))} messages from {number(f('senders'))} senders, "
        f"{number(f('deliveries'))} deliveries in {number(f('duration_ms'), ' ms')} "
        f"({number(f('rate_per_s'))} a second); latency p50 {number(f('p50_ms'), ' ms')}, "
        f"p99 {number(f('p99_ms'), ' ms')}, max {number(f('max_ms'), ' ms')}"
    )
    rows = []
    for r in receivers:
        bad = (r.get("missing") or 0) or (r.get("duplicates") or 0) or (r.get("out_of_order") or 0)
        cls = ' class="es-fig-bad"' if bad else ""
        where = f" <small>{escape(str(r['where']))}</small>" if r.get("where") else ""
        rows.append(
            f"<tr{cls}><td>{escape(str(r.get('name', '')))}{where}</td>"
            f"<td>{number(r.get('delivered'))} / {number(r.get('expected'))}</td>"
            f"<td>{number(r.get('missing'))}</td><td>{number(r.get('duplicates'))}</td>"
            f"<td>{number(r.get('out_of_order'))}</td><td>{number(r.get('p50_ms'))}</td>"
            f"<td>{number(r.get('p99_ms'))}</td><td>{number(r.get('max_ms'))}</td>"
            f"<td>{escape(str(r.get('closed') or 'open'))}</td></tr>"
        )
    table = (
        '<table class="es-fig-table"><thead><tr><th>connection</th><th>delivered / expected'
        "</th><th>missing</th><th>duplicates</th><th>out of order</th><th>p50 ms</th>"
        "<th>p99 ms</th><th>max ms</th><th>state</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    if len(receivers) > _ROWS:
        table = f"<details><summary>{len(receivers):,} connections</summary>{table}</details>"
    return f'<div class="es-figures">{head}{_plot(receivers)}{table}</div>'


def _plot(receivers: list[dict[str, Any]]) -> str:
    """Each connection's deliveries over time (ms since the first send), one line each."""
    curves = [r.get("curve") or [] for r in receivers]
    points = [p for c in curves for p in c if isinstance(p, list | tuple) and len(p) == 2]
    if not points:
        return ""
    expected = max((r.get("expected") or 0 for r in receivers), default=0)
    span_x = max(max(float(p[0]) for p in points), 1.0) * 1.02
    span_y = max(expected, max(int(p[1]) for p in points), 1) * 1.05
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def x(ms: float) -> float:
        return _LEFT + max(0.0, min(ms, span_x)) / span_x * plot_w

    def y(n: float) -> float:
        return _TOP + plot_h - n / span_y * plot_h

    parts = [
        f'<svg class="es-fig-plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" '
        f'width="{_W}" height="{_H}" role="img" aria-label="deliveries over time per connection">',
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_W - _RIGHT}" y2="{_TOP + plot_h}" '
        'stroke="#8c959f"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}" stroke="#8c959f"/>',
    ]
    if expected:
        parts.append(
            f'<line x1="{_LEFT}" y1="{y(expected):.1f}" x2="{_W - _RIGHT}" y2="{y(expected):.1f}" '
            'stroke="#1a7f37" stroke-dasharray="4 3"/>'
            f'<text x="{_LEFT - 4}" y="{y(expected) + 4:.1f}" text-anchor="end" font-size="10">'
            f"{expected:,}</text>"
        )
    for r, curve in zip(receivers, curves, strict=True):
        coords = [(0.0, 0)] + [(float(p[0]), int(p[1])) for p in curve]
        line = " ".join(f"{x(t):.1f},{y(n):.1f}" for t, n in coords)
        bad = (r.get("missing") or 0) or (r.get("duplicates") or 0)
        colour = "#cf222e" if bad else "#0969da"
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.2" '
            f'stroke-opacity="0.7"><title>{escape(str(r.get("name", "")))}</title></polyline>'
        )
    for frac in (0.0, 0.5, 1.0):
        ms = span_x / 1.02 * frac
        parts.append(
            f'<text x="{x(ms):.1f}" y="{_H - 12}" text-anchor="middle" font-size="10">'
            f"{ms:,.0f} ms</text>"
        )
    parts.append(
        f'<text x="{_LEFT}" y="{_H - 1}" font-size="10">deliveries per connection since the '
        "first send (dashed: expected)</text></svg>"
    )
    return "".join(parts)


# --- sequence (a stateful test's shortest failing sequence) ---------------------------------


def _text(value: object, limit: int | None = None) -> str:
    """``value`` redacted, shortened to ``limit`` (after the redaction: a secret cut in half
    would escape the mask) and escaped."""
    text = redact.redact(str(value))
    return escape(shorten(text, limit) if limit else text, quote=True)


def _refs(steps: list[Mapping[str, Any]]) -> set[str]:
    """The message refs the figure knows: those its send steps create."""
    return {str(s["creates"]) for s in steps if s.get("creates")}


def _frame_html(step: Mapping[str, Any], refs: set[str]) -> str:
    """A step's frame as JSON, its ``messageId`` shown as the message's ref when known."""
    frame = step.get("frame")
    if not isinstance(frame, Mapping):
        return ""
    shown = dict(frame)
    ref = step.get("message")
    marker = ""
    if ref is not None and str(ref) in refs and "messageId" in shown:
        marker = f"ref-{uuid.uuid4().hex}"
        shown["messageId"] = marker
    text = json.dumps(shown, ensure_ascii=False)
    if marker:
        text = text.replace(json.dumps(marker), "\x00")  # one character, never in JSON text
    body = _text(text, _FRAME_CHARS)
    if marker:
        body = body.replace(
            "\x00", f'<var class="es-seq-ref" title="the id of {_text(ref)}">{_text(ref)}</var>'
        )
    return f"<code>{body}</code>"


def _expected_html(items: object) -> str:
    lines = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        conn = str(item.get("conn", ""))
        if "error" in item:
            errors = item["error"] if isinstance(item["error"], list) else [item["error"]]
            what = "error " + " or ".join(json.dumps(e, ensure_ascii=False) for e in errors)
        else:
            what = f"{item.get('event', '')} {item.get('message') or ''}".rstrip()
            if "body" in item:
                what += " " + json.dumps(item["body"], ensure_ascii=False)
        lines.append(f"{conn}: {what}")
    return _lines(lines)


def _lines(lines: list[str]) -> str:
    if not lines:
        return '<span class="es-muted">nothing</span>'
    return "<br>".join(_text(line, _FRAME_CHARS) for line in lines)


def _sequence(figure: Mapping[str, Any]) -> str:
    f = figure.get
    steps = [s for s in f("steps") or [] if isinstance(s, Mapping)]
    refs = _refs(steps)
    failed = f("failed_step")
    requirement = str(f("requirement") or "")
    head = (
        f"<b>Shortest failing sequence</b>: {number(len(steps))} steps, "
        f"{_text(requirement)} broken at step {number(failed)} "
        f"(found in {number(f('sequences'))} sequences, {number(f('steps_run'))} steps in all)"
    )
    conns = [c for c in f("connections") or [] if isinstance(c, Mapping)]
    who = "; ".join(
        f"<b>{_text(c.get('name', ''))}</b> {_text(c.get('role', ''))} ({_text(c.get('user', ''))}"
        f"), room {_text(c.get('room', ''))} <code>{_text(c.get('url', ''))}</code>"
        for c in conns
    )
    rows = []
    for step in steps:
        bad = step.get("n") == failed or step.get("ok") is False
        cls = ' class="es-seq-fail"' if bad else ""
        conn = _text(step.get("conn", ""))
        if step.get("do") == "reconnect" and step.get("from"):
            conn += f" <small>from {_text(step['from'])}</small>"
        did = f"<b>{_text(step.get('do', ''))}</b>"
        if step.get("room"):
            did += f" room {_text(step['room'])}"
        if step.get("message") and not isinstance(step.get("frame"), Mapping):
            did += f" {_text(step['message'])}"
        frame = _frame_html(step, refs)
        did += f" {frame}" if frame else ""
        if step.get("creates"):
            did += f" <small>creates {_text(step['creates'])}</small>"
        observed = _lines([str(o) for o in step.get("observed") or []])
        if step.get("note"):
            observed += f'<div class="es-seq-note">{_text(step["note"])}</div>'
        rows.append(
            f"<tr{cls}><td>{_text(step.get('n', ''))}</td><td>{conn}</td><td>{did}</td>"
            f"<td>{_expected_html(step.get('expect'))}</td><td>{observed}</td></tr>"
        )
    table = (
        '<table class="es-fig-table es-seq-table"><thead><tr><th>step</th><th>connection</th>'
        "<th>what it did</th><th>expected</th><th>observed</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    if len(steps) > _ROWS:
        table = f"<details><summary>{len(steps):,} steps</summary>{table}</details>"
    witness = "".join(f"<li>{_text(w, _FRAME_CHARS)}</li>" for w in f("witness") or [])
    return (
        f'<div class="es-figures es-seq">{head}'
        + (f'<div class="es-seq-conns">{who}</div>' if who else "")
        + table
        + (f'<ul class="es-seq-witness">{witness}</ul>' if witness else "")
        + _replay_line(figure, requirement)
        + "</div>"
    )


def _replay_line(figure: Mapping[str, Any], requirement: str) -> str:
    """ "Replay it": the command (the variables it needs, names only) and a link to the script
    (when the run wrote one: a report directory)."""
    written = figure.get("replay")
    name = str(written) if written else replay_script.replay_name(requirement or "requirement")
    needs = replay_script.variables(figure)
    if replay_script.secure(figure):
        needs.append(f"{replay_script.CA_VARIABLE} (optional)")
    link = (
        f'<a href="{_text(quote(name))}" download>{_text(name)}</a>'
        if written
        else f'<span class="es-muted">{_text(name)}, written with a report directory</span>'
    )
    listed = ", ".join(_text(v) for v in needs) or "nothing"
    return (
        f'<div class="es-seq-replay">Replay it: <code>{_text(replay_script.command(figure, name))}'
        f"</code> &middot; {link} &middot; needs {listed}</div>"
    )
