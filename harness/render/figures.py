"""What a test measured, as HTML: the delivery figures of the load tests (LOAD-004, LOAD-002).

A burst's figures (:func:`harness.core.delivery.judge_burst`) become a table, one line per
connection (delivered / expected, missing, duplicates, out of order, latency p50 / p99 / max),
and a small self-contained SVG plot of each connection's deliveries over time: a connection
that lost events ends below the dashed line of what was expected. A lag's figures become one
line. Renders the figures and never judges; every text is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["number", "render_figures"]

_W, _H = 640, 170
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 14, 30
#: Connections a table shows open; a longer one is folded (a click opens it).
_ROWS = 40


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
