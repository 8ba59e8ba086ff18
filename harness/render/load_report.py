"""The load mode's output: ``load.json`` (schemas/load.json), ``load.html`` and the summary
lines printed at the end. It renders what the master gathered and the verdict of
:func:`harness.core.tally.judge`; it decides nothing else, and every text is redacted and
escaped.

The verdict: DELIVERED (exit 0) when every connection that stayed open received every
accepted message exactly once and in each sender's order; NOT DELIVERED (exit 1) on loss,
duplicates or disorder; INCOMPLETE (exit 2) when the run stopped before its end, or judged
nothing (no connection stayed open, no message was accepted): never a pass.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from harness import __version__, redact
from harness.core.results import EXIT_INCOMPLETE, EXIT_NONCONFORMANT, EXIT_OK
from harness.core.tally import REQUIREMENT, Reservoir, Timeline, judge, percentile
from harness.render.figures import number
from harness.render.html import CSS, esc, meta_table, page, verdict_badge

__all__ = ["build", "render_html", "summary_lines", "write"]

SCHEMA = "edusphere-conformance/load/1"
#: Connections the HTML table shows (the worst first); load.json has them all.
HTML_ROWS = 500
VERDICTS = {
    "DELIVERED": EXIT_OK,
    "NOT DELIVERED": EXIT_NONCONFORMANT,
    "INCOMPLETE": EXIT_INCOMPLETE,
}
KIND_TEXT = {
    "loss": "events lost: a connection that stayed open missed accepted messages",
    "duplicates": "events delivered more than once",
    "disorder": "one sender's events out of the order sent",
}


def _ms(us: float | None) -> float | None:
    return None if us is None else round(us / 1000, 2)


def build(
    outcome: Mapping[str, Any],
    *,
    settings: Mapping[str, Any],
    target: str,
    started: datetime,
    finished: datetime,
) -> dict[str, Any]:
    """load.json's content from what the master gathered
    (:meth:`harness.load.runtime.Master.outcome`)."""
    connections = list(outcome.get("connections", []))
    verdict = judge(connections)
    samples, seen = Reservoir.merge(outcome.get("samples", []))
    tops = [s["max"] for s in outcome.get("samples", []) if s.get("max") is not None]
    timeline = Timeline.merge(outcome.get("timeline", []), float(outcome.get("width", 1.0)))
    stopped = outcome.get("stopped")
    reason = None
    notes = list(outcome.get("notes", []))
    if verdict.failures:  # a loss seen is a loss, even in a run that stopped early
        word = "NOT DELIVERED"
        if stopped:
            notes.append(f"the run stopped early: {stopped}")
    elif stopped:
        word = "INCOMPLETE"
        reason = f"the run stopped: {stopped}"
    elif verdict.judged == 0:
        word = "INCOMPLETE"
        reason = "no connection stayed open to the end: nothing was judged"
    elif verdict.totals["expected"] == 0:
        word = "INCOMPLETE"
        reason = "no message was accepted (every sender was refused or closed): nothing was judged"
    else:
        word = "DELIVERED"
    sent = sum(int(w.get("sent", 0)) for w in outcome.get("workers", []))
    requirements = {}
    for req in sorted(set(REQUIREMENT.values())):
        kinds = [k for k, r in REQUIREMENT.items() if r == req]
        if any(k in verdict.failures for k in kinds):
            requirements[req] = "failed"
        elif word != "INCOMPLETE":
            requirements[req] = "passed"
        else:
            requirements[req] = "not_tested"
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "harness": __version__,
        "target": redact.redact(target),
        "started": started.isoformat(),
        "finished": finished.isoformat(),
        "verdict": word,
        "exit_status": VERDICTS[word],
        "reason": reason,
        "settings": dict(settings),
        "requirements": requirements,
        "connections": {
            "planned": settings.get("users"),
            "opened": int(outcome.get("connected", 0)),
            "judged": verdict.judged,
            "closed_during_run": sum(1 for c in connections if c.get("closed")),
            "refused": dict(outcome.get("refusals", {})),
        },
        "messages": {"sent": sent},
        "deliveries": verdict.totals,
        "latency_ms": {
            "samples": len(samples),
            "deliveries": seen,
            "exact": len(samples) == seen,
            "p50": _ms(percentile(samples, 50)),
            "p90": _ms(percentile(samples, 90)),
            "p99": _ms(percentile(samples, 99)),
            "max": _ms(max(tops) if tops else None),
        },
        "failures": [
            {"kind": kind, "requirement": REQUIREMENT[kind], "lines": lines}
            for kind, lines in verdict.failures.items()
        ],
        "notes": [*notes, *verdict.notes],
        "phases_s": dict(outcome.get("phases", {})),
        "workers": list(outcome.get("workers", [])),
        "interval_s": float(outcome.get("width", 1.0)),
        "timeline": timeline,
        "per_connection": connections,
    }
    clean: dict[str, Any] = json.loads(redact.redact(json.dumps(data)))
    return clean


def write(report_dir: Path, data: Mapping[str, Any]) -> list[Path]:
    """load.json and load.html in ``report_dir`` (written whole, then moved into place)."""
    paths = []
    for name, text in (
        ("load.json", json.dumps(data, indent=2, ensure_ascii=False) + "\n"),
        ("load.html", render_html(data)),
    ):
        path = report_dir / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        paths.append(path)
    return paths


def summary_lines(data: Mapping[str, Any]) -> list[str]:
    """What the terminal shows at the end: the verdict, the figures, the first failures."""
    d, lat, s = data["deliveries"], data["latency_ms"], data["settings"]
    lines = [f"load: {data['verdict']}" + (f": {data['reason']}" if data.get("reason") else "")]
    if data["connections"]["opened"]:
        lines.append(
            f"load: {data['connections']['opened']:,} connections, "
            f"{data['messages']['sent']:,} messages sent in {s.get('duration', 0):g} s; "
            f"{d['delivered']:,} of {d['expected']:,} deliveries, {d['missing']:,} missing, "
            f"{d['duplicates']:,} duplicates, {d['out_of_order']:,} out of order"
        )
        if lat["p50"] is not None:
            lines.append(
                f"load: latency p50 {lat['p50']} ms, p90 {lat['p90']} ms, p99 {lat['p99']} ms, "
                f"max {lat['max']} ms"
                + ("" if lat["exact"] else f" (from a sample of {lat['samples']:,})")
            )
    for failure in data["failures"]:
        for line in failure["lines"][:3]:
            lines.append(f"load: {failure['requirement']} {failure['kind']}: {line}")
    return lines


# --- HTML -----------------------------------------------------------------------------------

_CSS_MORE = """
.plot{margin:.5rem 0}table.conns td.num{text-align:right}tr.bad td{background:#fff5f5}
"""
_W, _H = 960, 180
_LEFT, _RIGHT, _TOP, _BOTTOM = 72, 24, 22, 34


#: The per-connection count behind each kind of failure.
KIND_COUNT = {"loss": "missing", "duplicates": "duplicates", "disorder": "out_of_order"}


def _how_many(kind: str, data: Mapping[str, Any]) -> str:
    """How widespread a kind of failure is: ``12 of 30 connections: 4,096 events in all``."""
    key = KIND_COUNT.get(kind, kind)
    conns = data["per_connection"]
    hit = sum(1 for c in conns if c.get(key))
    return (
        f"{hit:,} of {len(conns):,} connections: {data['deliveries'].get(key, 0):,} events in "
        "all; the worst first below, and in the table of connections"
    )


def _banner(data: Mapping[str, Any]) -> str:
    word = data["verdict"]
    css = {"DELIVERED": "ok", "NOT DELIVERED": "bad"}.get(word, "incomplete")
    d = data["deliveries"]
    facts = (
        f"{data['connections']['opened']:,} connections; {d['delivered']:,} of "
        f"{d['expected']:,} deliveries; {d['missing']:,} missing, {d['duplicates']:,} "
        f"duplicates, {d['out_of_order']:,} out of order."
    )
    reason = f"<p>{esc(data['reason'])}</p>" if data.get("reason") else ""
    return (
        f'<div class="banner {css}"><span class="word">{esc(word)}</span>'
        f"exit status {data['exit_status']}{reason}<p>{esc(facts)}</p></div>"
    )


def _polyline(points: Sequence[tuple[float, float]], colour: str, dash: str = "") -> str:
    if not points:
        return ""
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"{extra}/>'


#: The two panels of the plot: (title, unit, [(key, label, colour, dash)]).
PANELS = (
    (
        "Latency from send to receipt",
        "ms",
        [
            ("p50_ms", "p50", "#0969da", ""),
            ("p99_ms", "p99", "#cf222e", ""),
            ("max_ms", "max", "#8c959f", "2 2"),
        ],
    ),
    (
        "Rate",
        "/s",
        [
            ("delivered_per_s", "events delivered a second", "#1a7f37", ""),
            ("sent_per_s", "messages sent a second", "#8250df", "4 3"),
        ],
    ),
)


def render_plot(timeline: Sequence[Mapping[str, Any]], duration: float, width: float = 1.0) -> str:
    """Latency (p50, p99, max) and rate (sent and delivered a second) over the run, as two
    self-contained SVG panels; each point sits in the middle of its interval."""
    if not timeline:
        return '<p class="muted">Nothing was sent: no plot.</p>'
    span_x = max(max(float(r["t"]) for r in timeline) + width, duration, 1.0)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    base = _TOP + plot_h

    def x(t: float) -> float:
        return _LEFT + min(t, span_x) / span_x * plot_w

    panels = []
    for title, unit, series in PANELS:
        values = [float(r[k]) for r in timeline for k, *_ in series if r.get(k) is not None]
        top = (max(values, default=0.0) or 1.0) * 1.1

        def y(v: float, top: float = top) -> float:
            return _TOP + plot_h - v / top * plot_h

        parts = [
            f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" '
            f'width="{_W}" height="{_H}" role="img" aria-label="{esc(title)} over time">',
            f'<text x="{_LEFT}" y="{_TOP - 4}" font-size="12" font-weight="600">'
            f"{esc(title)}</text>",
            f'<line x1="{_LEFT}" y1="{base}" x2="{_W - _RIGHT}" y2="{base}" stroke="#8c959f"/>',
            f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{base}" stroke="#8c959f"/>',
        ]
        for key, _label, colour, dash in series:
            points = [
                (x(float(r["t"]) + width / 2), y(float(r[key])))
                for r in timeline
                if r.get(key) is not None
            ]
            parts.append(_polyline(points, colour, dash))
        for frac in (0.0, 0.5, 1.0):
            value = top / 1.1 * frac
            parts.append(
                f'<text x="{_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="10">'
                f"{value:,.{1 if unit == 'ms' else 0}f} {unit}</text>"
                f'<line x1="{_LEFT}" y1="{y(value):.1f}" x2="{_W - _RIGHT}" y2="{y(value):.1f}" '
                'stroke="#eaeef2"/>'
                f'<text x="{x(span_x * frac):.1f}" y="{base + 14}" text-anchor="middle" '
                f'font-size="10">{span_x * frac:,.0f} s</text>'
            )
        legend = "   ".join(
            f'<tspan fill="{colour}">{"- -" if dash else "—"} {esc(label)}</tspan>'
            for _key, label, colour, dash in series
        )
        parts.append(f'<text x="{_LEFT}" y="{_H - 4}" font-size="11">{legend}</text></svg>')
        panels.append("".join(parts))
    return "".join(panels)


def _badness(c: Mapping[str, Any]) -> tuple[int, int, int, str]:
    return (
        -int(c.get("missing") or 0),
        -int(c.get("duplicates") or 0),
        -int(c.get("out_of_order") or 0),
        str(c.get("name")),
    )


def _connections_table(connections: Sequence[Mapping[str, Any]]) -> str:
    rows = sorted(connections, key=_badness)
    head = (
        "<tr><th>connection</th><th>account</th><th>where</th><th>sent</th>"
        "<th>delivered / expected</th><th>missing</th><th>duplicates</th>"
        "<th>out of order</th><th>errors</th><th>closed</th></tr>"
    )
    body = []
    for c in rows[:HTML_ROWS]:
        bad = c.get("missing") or c.get("duplicates") or c.get("out_of_order")
        missing = number(c.get("missing"))
        if c.get("missing_examples"):
            missing += f'<br><span class="muted">{esc(", ".join(c["missing_examples"]))}</span>'
        body.append(
            f'<tr class="{"bad" if bad else ""}"><td class="mono">{esc(c.get("name"))}</td>'
            f"<td>{esc(c.get('account', ''))}</td><td>{esc(c.get('where') or '')}</td>"
            f'<td class="num">{number(c.get("sent"))}</td>'
            f'<td class="num">{number(c.get("delivered"))} / {number(c.get("expected"))}</td>'
            f'<td class="num">{missing}</td><td class="num">{number(c.get("duplicates"))}</td>'
            f'<td class="num">{number(c.get("out_of_order"))}</td>'
            f'<td class="num">{number(c.get("errors"))}</td>'
            f"<td>{esc(c.get('closed') or '')}</td></tr>"
        )
    more = (
        f'<p class="muted">The {HTML_ROWS:,} worst of {len(rows):,} connections; load.json has '
        "every one.</p>"
        if len(rows) > HTML_ROWS
        else ""
    )
    return f'<table class="conns">{head}{"".join(body)}</table>{more}'


#: The requirements a load run judges, as the report names them.
JUDGED = {
    "LOAD-001": "MUST: every connection that stayed open received every accepted message once",
    "LOAD-003": "SHOULD: each sender's messages arrived in the order sent",
}


def _verdicts(requirements: Mapping[str, str]) -> str:
    rows = "".join(
        f'<tr><td class="rid">{esc(rid)}</td><td>{verdict_badge(requirements.get(rid, ""))}</td>'
        f"<td>{esc(text)}</td></tr>"
        for rid, text in JUDGED.items()
    )
    return f"<table><tr><th>id</th><th>verdict</th><th>requirement</th></tr>{rows}</table>"


def render_html(data: Mapping[str, Any]) -> str:
    """load.html: the verdict, the figures, the plot, every failure, every connection."""
    s, lat, d = data["settings"], data["latency_ms"], data["deliveries"]
    body = [
        "<h1>EduSphere chat: delivery under load</h1>",
        f'<p class="muted">{esc(data["target"])} · {esc(data["started"])} · edusphere-conformance '
        f"{esc(data['harness'])}</p>",
        _banner(data),
        "<h2>What was run</h2>",
        meta_table(
            [
                (
                    "connections",
                    f"{s.get('users', 0):,} (opened {data['connections']['opened']:,})",
                ),
                ("messages a second, each", f"{s.get('rate', 0):g}"),
                ("sending for", f"{s.get('duration', 0):g} s"),
                ("workers", str(s.get("workers", 0) or "none (one process)")),
                ("room", str(s.get("room", ""))),
                ("nodes", str(s.get("nodes", 1))),
                ("messages sent", f"{data['messages']['sent']:,}"),
                *[(f"phase: {k}", f"until {v:,.1f} s") for k, v in data["phases_s"].items()],
            ]
        ),
        "<h2>Verdicts</h2>",
        _verdicts(data["requirements"]),
    ]
    for failure in data["failures"]:
        items = "".join(f"<li>{esc(line)}</li>" for line in failure["lines"])
        body.append(
            f"<h3>{esc(failure['requirement'])}: {esc(KIND_TEXT.get(failure['kind'], ''))}</h3>"
            f"<p>{esc(_how_many(failure['kind'], data))}</p>"
            f'<ul class="details">{items}</ul>'
        )
    if data["notes"]:
        items = "".join(f"<li>{esc(n)}</li>" for n in data["notes"])
        body.append(f'<h3>Notes</h3><ul class="details">{items}</ul>')
    refused = data["connections"]["refused"]
    if refused:
        items = "".join(f"<li>{n:,} × {esc(w)}</li>" for w, n in refused.items())
        body.append(f'<h3>Connections not opened</h3><ul class="details">{items}</ul>')
    exact = (
        "exact: every delivery"
        if lat["exact"]
        else f"from a uniform sample of {lat['samples']:,} of {lat['deliveries']:,} deliveries"
    )
    body += [
        "<h2>Latency and rate</h2>",
        f"<p>From each send to each receipt, {esc(exact)} (across machines, as exact as their "
        "clocks agree).</p>",
        meta_table(
            [
                ("deliveries", f"{d['delivered']:,} of {d['expected']:,} expected"),
                ("p50", number(lat["p50"], " ms")),
                ("p90", number(lat["p90"], " ms")),
                ("p99", number(lat["p99"], " ms")),
                ("max", number(lat["max"], " ms")),
            ]
        ),
        render_plot(
            data["timeline"], float(s.get("duration") or 0), float(data.get("interval_s") or 1)
        ),
        "<h2>Connections</h2>",
        _connections_table(data["per_connection"]),
    ]
    return page(f"Load: {data['verdict']}", body, css=CSS + _CSS_MORE)
