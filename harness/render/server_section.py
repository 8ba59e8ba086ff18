"""The conformance section of the server-mode HTML report, above pytest-html's own summary.

A header (target, date, versions, duration and time budget, the verdict in one word), a
per-level summary, the failed requirements, the slowest tests (folded), and the requirement
matrix grouped by area, with filters, each requirement's duration (the wall time of the tests
that tested it) and, for every failed requirement, its failure detail
(:mod:`harness.render.server_detail`). A run over its time budget says so in the header, with
its slowest tests (the terminal's line). A requirement out of the run's scope (left out by
``--only``, or needing what the target lacks) that nothing tested is "out of scope" with its
reason, counted and filtered apart from "not tested" (its row keeps
``data-verdict="not_tested"`` and adds ``data-scope="out"``). Its style (:data:`CSS`) and script
(:data:`SCRIPT`: it moves the section to the top of the page and runs the matrix filters) are
inline: the page needs no external asset.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from harness import redact
from harness.core.catalogue import LEVELS
from harness.core.results import (
    COUNTS,
    OUT_OF_SCOPE,
    RequirementResult,
    RunResult,
    id_runs,
    seconds_text,
)
from harness.render.figures import render_figures
from harness.render.html import (
    COUNT_LABEL,
    OUT_OF_SCOPE_LABEL,
    VERDICT_LABEL,
    esc,
    summary_table,
    verdict_sentences,
)
from harness.render.server_detail import _test_link, esc_code, failure_html

OPEN_TRANSCRIPT = 40  # failure transcripts up to this many entries are shown open in the matrix
SLOWEST_SHOWN = 10  # tests in the report's "slowest tests" list
_PLACEHOLDER = re.compile(r"\{[A-Za-z_]+\}")


def display_target(url: str) -> str:
    """The target's URL template without credentials or query values (then redacted)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact.redact(url)
    if not parts.scheme or not parts.netloc:
        return redact.redact(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = parts.query
    if query:
        pairs = []
        for pair in query.split("&"):
            key, sep, value = pair.partition("=")
            keep = not value or _PLACEHOLDER.fullmatch(value)
            pairs.append(f"{key}{sep}{value if keep else redact.MASK}")
        query = "&".join(pairs)
    return redact.redact(urlunsplit((parts.scheme, netloc, parts.path, query, "")))


def _date(started: str) -> str:
    return started.replace("T", " ").replace("Z", " UTC") if started else "unknown"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s"


def _budget(result: RunResult) -> str:
    """The header's time budget: the budget, and over it the run's slowest tests."""
    if result.time_budget_s is None:
        return ""
    line = result.budget_line()
    if line is None:
        return f'{result.time_budget_s:g} s <span class="es-muted">(within it)</span>'
    return f'<b class="es-over" id="es-over-budget">over</b>: {esc(line)}'


def _verdict_class(result: RunResult) -> str:
    return {"CONFORMANT": "es-ok", "INCOMPLETE": "es-incomplete"}.get(result.verdict_word, "es-bad")


def _header(result: RunResult) -> str:
    word = result.verdict_word
    cls = _verdict_class(result)
    strict = "on: SHOULD failures fail the run" if result.strict else "off"
    rows = [
        ("target", f"<code>{esc(display_target(result.target))}</code>"),
        ("date", esc(_date(result.started))),
        ("duration", esc(_duration(result.duration_s))),
        ("time budget", _budget(result)),
        (
            "versions",
            f"harness {esc(result.harness_version)} &middot; "
            f"catalogue {esc(result.catalogue.version)}",
        ),
        ("--strict", esc(strict)),
    ]
    meta = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows if v)
    return (
        f'<header class="es-header {cls}">'
        f'<div class="es-verdict" id="es-verdict" data-verdict="{esc(word)}">{esc(word)}</div>'
        '<div class="es-heading"><h1>EduSphere chat conformance report</h1>'
        f'<dl class="es-meta">{meta}</dl></div></header>'
    )


def _summary(result: RunResult) -> str:
    verdict = "".join(f"<li>{esc(line)}</li>" for line in verdict_sentences(result))
    cls = _verdict_class(result)
    strict_word = "on" if result.strict else "off"
    return (
        '<section class="es-summary"><h2>Summary</h2><div class="es-summary-grid">'
        f"{summary_table(result, prefix='es-')}"
        f'<div class="es-verdict-box {cls}"><p><b>{esc(result.verdict_word)}</b> '
        f'<span class="es-muted">(--strict {strict_word})</span></p>'
        f"<ul>{verdict}</ul></div></div></section>"
    )


def _failed_list(result: RunResult) -> str:
    failed = [r for r in result.requirements if r.verdict == "failed"]
    if not failed:
        return ""
    order = {lvl: i for i, lvl in enumerate(LEVELS)}
    failed.sort(key=lambda r: order[r.requirement.level])
    items = []
    for r in failed:
        req = r.requirement
        items.append(
            f'<li><a class="es-jump" href="#req-{esc(req.id)}" data-open="{esc(req.id)}">'
            f'<b class="es-rid">{esc(req.id)}</b></a> <span class="es-level es-l-{req.level}">'
            f"{req.level}</span> {esc_code(req.statement)}"
            f'<div class="es-reason">{esc(r.reason or "")}</div></li>'
        )
    return (
        '<section class="es-failed"><h2>Failed requirements</h2>'
        f'<ul class="es-failed-list">{"".join(items)}</ul></section>'
    )


def _slowest(result: RunResult) -> str:
    """The run's slowest tests (:data:`SLOWEST_SHOWN`), folded: duration, requirements, test,
    outcome."""
    tests = result.slowest(SLOWEST_SHOWN)
    if not tests:
        return ""
    rows = "".join(
        f'<tr data-nodeid="{esc(t.nodeid)}" data-duration="{t.duration_s:.3f}">'
        f'<td class="es-n">{esc(seconds_text(t.duration_s))}</td>'
        f'<td class="es-rid">{esc(id_runs(t.speaks_for))}</td>'
        f"<td>{_test_link(t.nodeid)}</td><td>{esc(t.outcome)}</td></tr>"
        for t in tests
    )
    return (
        '<details class="es-slowest" id="es-slowest"><summary>Slowest tests '
        f'<span class="es-muted">({len(tests)} of {len(result.tests)})</span></summary>'
        '<table class="es-slowest-table"><thead><tr><th>duration</th><th>requirements</th>'
        f"<th>test</th><th>outcome</th></tr></thead><tbody>{rows}</tbody></table></details>"
    )


def _requirement_duration(r: RequirementResult) -> str:
    """The wall time of the tests that tested it, small, under them (nothing when none did)."""
    if not r.test_durations:
        return ""
    return (
        f'<div class="es-dur" data-duration="{r.duration_s:.3f}" '
        f'title="wall time of the tests that tested it">{esc(seconds_text(r.duration_s))}</div>'
    )


def _notes(r: RequirementResult) -> str:
    parts = []
    if r.observations:
        parts.append(
            '<ul class="es-obs">' + "".join(f"<li>{esc(o)}</li>" for o in r.observations) + "</ul>"
        )
    if r.verdict == "failed" and r.failures:
        kinds = sorted({f.kind or "error" for f in r.failures})
        parts.append(f'<div class="es-reason">{esc(", ".join(kinds))}: detail below</div>')
    elif r.out_of_scope:
        parts.append(
            f'<div class="es-reason es-scope-reason">{OUT_OF_SCOPE_LABEL}: '
            f"{esc(r.scope_reason)}</div>"
        )
    elif r.reason:
        parts.append(f'<div class="es-reason">{esc(r.reason)}</div>')
    return "".join(parts)


def _scope_attr(r: RequirementResult) -> str:
    """``data-scope="out"`` on the rows of a requirement out of the run's scope (the filter's
    key for them; ``data-verdict`` stays the verdict of results.json)."""
    return ' data-scope="out"' if r.out_of_scope else ""


def _badge(r: RequirementResult) -> str:
    req = r.requirement
    if r.out_of_scope:
        return (
            f'<span class="es-badge es-v-{OUT_OF_SCOPE}" title="{esc(r.scope_reason)}">'
            f"{OUT_OF_SCOPE_LABEL}</span>"
        )
    if r.verdict in ("failed", "known") and r.failures:
        return (
            f'<a class="es-badge es-v-{r.verdict}" href="#detail-{esc(req.id)}" '
            f'data-open="{esc(req.id)}">{VERDICT_LABEL[r.verdict]}</a>'
        )
    return f'<span class="es-badge es-v-{r.verdict}">{VERDICT_LABEL[r.verdict]}</span>'


def _requirement_rows(r: RequirementResult) -> str:
    req = r.requirement
    tests = "".join(f"<li>{_test_link(t)}</li>" for t in r.tests)
    verdict = _badge(r)
    if r.fixed:
        verdict += ' <span class="es-badge es-v-fixed">fixed</span>'
    scope = _scope_attr(r)
    title = f' title="{esc(OUT_OF_SCOPE_LABEL)}: {esc(r.scope_reason)}"' if r.out_of_scope else ""
    row = (
        f'<tr class="es-req" id="req-{esc(req.id)}" data-requirement="{esc(req.id)}" '
        f'data-level="{req.level}" data-verdict="{r.verdict}"{scope}{title}>'
        f'<td class="es-rid">{esc(req.id)}</td>'
        f'<td><span class="es-level es-l-{req.level}">{req.level}</span></td>'
        f'<td class="es-statement" title="source: {esc(req.source)}">{esc_code(req.statement)}</td>'
        f"<td>{verdict}</td>"
        f'<td><ul class="es-tests">{tests}</ul>{_requirement_duration(r)}</td>'
        f'<td class="es-notes">{_notes(r)}</td></tr>'
    )
    if r.figures:
        row += (
            f'<tr class="es-figrow" data-requirement="{esc(req.id)}" data-level="{req.level}" '
            f'data-verdict="{r.verdict}"{scope}><td colspan="6">{render_figures(r.figures)}</td>'
            "</tr>"
        )
    if r.verdict not in ("failed", "known") or not r.failures:
        return row
    failed = r.verdict == "failed"
    cards = "".join(
        failure_html(f, None, open_transcript=failed and len(f.transcript) <= OPEN_TRANSCRIPT)
        for f in r.failures
    )
    what = "Failure detail" if failed else "Known failure (baseline)"
    return row + (
        f'<tr class="es-detail" id="detail-{esc(req.id)}" data-requirement="{esc(req.id)}" '
        f'data-level="{req.level}" data-verdict="{r.verdict}"><td colspan="6">'
        f'<details class="es-detail-box" data-detail="{esc(req.id)}"{" open" if failed else ""}>'
        f"<summary>{what} for {esc(req.id)}: expected, actual, transcript</summary>"
        f"{cards}</details></td></tr>"
    )


_COLS = "".join(f'<col class="es-c-{c}">' for c in ("id", "lvl", "st", "v", "tests", "notes"))


def _matrix(result: RunResult) -> str:
    counts = dict.fromkeys(COUNTS, 0)
    for r in result.requirements:
        counts[r.counted_as] += 1
    buttons = [
        f'<button type="button" class="es-filter es-on" data-filter="all">all '
        f"({len(result.requirements)})</button>"
    ]
    for v in ("failed", "not_tested", "known", "not_applicable", "passed", OUT_OF_SCOPE):
        disabled = " disabled" if not counts[v] else ""
        buttons.append(
            f'<button type="button" class="es-filter es-fv-{v}" data-filter="{v}"{disabled}>'
            f"only {COUNT_LABEL[v]} ({counts[v]})</button>"
        )
    areas: dict[str, list[RequirementResult]] = {}
    for r in result.requirements:
        areas.setdefault(r.requirement.area, []).append(r)
    ordered = [a for a in result.catalogue.areas if a in areas]
    ordered += [a for a in areas if a not in ordered]
    sections = []
    for area in ordered:
        rows = areas[area]
        tally = ", ".join(
            f'<span class="es-t-{v}">{n} {COUNT_LABEL[v]}</span>'
            for v in COUNTS
            if (n := sum(1 for r in rows if r.counted_as == v))
        )
        name = result.catalogue.areas.get(area, area)
        # An area where no test ran at all (e.g. left out by --only) starts folded.
        ran = any(r.tests for r in rows)
        reasons = {r.scope_reason if r.out_of_scope else r.reason or "" for r in rows}
        why = "" if ran else "; ".join(sorted(reasons - {""}))
        sections.append(
            f'<details class="es-area" data-area="{esc(area)}" data-open="{int(ran)}"'
            f"{' open' if ran else ''}><summary>"
            f'<h3>{esc(name)} <span class="es-muted">({esc(area)})</span> '
            f'<span class="es-tally">{tally}</span>'
            f"{f' <span class=es-muted>&mdash; {esc(why)}</span>' if why else ''}</h3></summary>"
            f'<table class="es-matrix-table"><colgroup>{_COLS}</colgroup>'
            "<thead><tr><th>id</th><th>level</th><th>requirement</th><th>verdict</th>"
            "<th>tests</th><th>reason / observations</th></tr></thead><tbody>"
            + "".join(_requirement_rows(r) for r in rows)
            + "</tbody></table></details>"
        )
    return (
        '<section class="es-matrix" id="es-matrix"><h2>Requirements</h2>'
        f'<div class="es-filters" role="group" aria-label="filter">{"".join(buttons)}</div>'
        + "".join(sections)
        + "</section>"
    )


def render_section(result: RunResult) -> str:
    """The whole conformance section: header, summary, failed list, slowest tests, requirement
    matrix."""
    return (
        f'<style type="text/css">{CSS}</style>'
        '<section id="es-report">'
        + _header(result)
        + _summary(result)
        + _failed_list(result)
        + _slowest(result)
        + _matrix(result)
        + '<h2 class="es-divider">Tests (pytest-html)</h2></section>'
        + f"<script>{SCRIPT}</script>"
    )


# Everything is scoped to es-* classes, except one rule for pytest-html's log: it wraps at spaces
# only, so a long frame in a failure's traceback would make its whole table thousands of px wide.
CSS = """
#es-report{color:#1f2328;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,
Arial,sans-serif;max-width:1500px;margin:0 0 24px}
#es-report h2{font-size:19px;margin:22px 0 8px;color:#1f2328}
#es-report h3{font-size:15px;margin:18px 0 6px;color:#1f2328}
#es-report code,.es-extra code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,
"DejaVu Sans Mono",monospace;background:#f1f3f5;padding:0 3px;border-radius:3px}
.es-muted{color:#656d76;font-weight:normal}
.es-header{display:flex;align-items:center;gap:22px;padding:16px 20px;border-radius:8px;
border:2px solid;margin-top:6px}
.es-header.es-ok{background:#e9f7ee;border-color:#1a7f37}
.es-header.es-bad{background:#fdecec;border-color:#cf222e}
.es-header.es-incomplete{background:#fff8c5;border-color:#bf8700}
.es-verdict{font-size:30px;font-weight:800;letter-spacing:.5px;color:#fff;padding:10px 18px;
border-radius:6px;white-space:nowrap}
.es-ok .es-verdict{background:#1a7f37}.es-bad .es-verdict{background:#cf222e}
.es-incomplete .es-verdict{background:#9a6700}
.es-heading h1{font-size:22px;margin:0 0 6px;color:#1f2328}
.es-meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0}
.es-meta dt{color:#656d76}.es-meta dd{margin:0}
.es-summary-grid{display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap}
.es-counts{border-collapse:collapse}
.es-counts th,.es-counts td{border:1px solid #d0d7de;padding:5px 12px}
.es-counts thead th{background:#f6f8fa;font-weight:600}
.es-counts td.es-n{text-align:right;font-size:17px;font-weight:700;min-width:64px}
.es-counts td.es-zero{color:#afb8c1;font-weight:400}
.es-counts td.es-v-passed:not(.es-zero){color:#1a7f37}
.es-counts td.es-v-failed:not(.es-zero){color:#fff;background:#cf222e}
.es-counts td.es-v-not_tested:not(.es-zero){color:#7d4e00}
.es-counts td.es-v-known:not(.es-zero){color:#8250df}
.es-counts td.es-v-out_of_scope:not(.es-zero){color:#59636e}
.es-counts th[scope=row]{text-align:left;font-weight:400}
.es-level-note{display:block;font-size:11.5px}
.es-verdict-box{border-left:5px solid;padding:4px 14px;max-width:620px}
.es-verdict-box.es-ok{border-color:#1a7f37}.es-verdict-box.es-bad{border-color:#cf222e}
.es-verdict-box.es-incomplete{border-color:#bf8700}
.es-verdict-box p{margin:4px 0;font-size:16px;color:#1f2328}
.es-verdict-box ul{margin:4px 0;padding-left:18px}
.es-badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;
font-weight:600;white-space:nowrap;text-decoration:none;border:1px solid transparent}
.es-v-passed.es-badge{background:#dafbe1;color:#116329;border-color:#a7e3b6}
.es-v-failed.es-badge{background:#cf222e;color:#fff}
a.es-v-failed.es-badge:hover{background:#a40e26}
.es-v-not_tested.es-badge{background:#fff8c5;color:#7d4e00;border-color:#eed888}
.es-v-known.es-badge{background:#fbefff;color:#8250df;border-color:#d8b9ff}
.es-v-not_applicable.es-badge{background:#f3f5f7;color:#59636e;border-color:#d0d7de}
.es-v-out_of_scope.es-badge{background:#fff;color:#59636e;border:1px dashed #afb8c1}
.es-v-fixed.es-badge{background:#ddf4ff;color:#0969da}
.es-level{display:inline-block;font:600 11px ui-monospace,Menlo,Consolas,monospace;
padding:1px 5px;border-radius:4px;border:1px solid #d0d7de;color:#57606a;min-width:44px;
text-align:center}
.es-l-MUST{color:#fff;background:#57606a;border-color:#57606a}
.es-l-SHOULD{color:#24292f;background:#eaeef2}
.es-l-INFO{color:#0969da;border-color:#b6d4f5;background:#f3f9ff}
.es-failed-list{margin:0;padding-left:0;list-style:none}
.es-failed-list li{padding:6px 10px;border-left:4px solid #cf222e;background:#fff5f5;
margin-bottom:6px}
.es-rid{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:nowrap}
.es-jump{color:#cf222e}
.es-reason{color:#57606a;font-size:13px}
.es-filters{display:flex;gap:6px;flex-wrap:wrap;margin:4px 0 8px}
.es-filter{font:inherit;font-size:13px;padding:4px 12px;border:1px solid #d0d7de;
border-radius:16px;background:#f6f8fa;color:#24292f;cursor:pointer}
.es-filter.es-on{background:#24292f;color:#fff;border-color:#24292f}
.es-filter:disabled{opacity:.45;cursor:default}
.es-area>summary{cursor:pointer;margin:14px 0 6px}
.es-area>summary>h3{display:inline;margin:0}
.es-area:not([open])>summary>h3{color:#57606a}
.es-tally{font-size:12.5px;font-weight:400;margin-left:8px}
.es-t-passed{color:#1a7f37}.es-t-failed{color:#cf222e;font-weight:700}
.es-t-not_tested{color:#7d4e00}.es-t-known{color:#8250df}.es-t-not_applicable{color:#59636e}
.es-t-out_of_scope{color:#59636e;font-style:italic}
.es-matrix-table{border-collapse:collapse;width:100%;table-layout:fixed}
.es-matrix-table th{background:#f6f8fa;text-align:left;font-weight:600;font-size:12.5px}
.es-matrix-table th,.es-matrix-table td{border:1px solid #d8dee4;padding:5px 8px;
vertical-align:top;overflow-wrap:anywhere}
.es-c-id{width:92px}.es-c-lvl{width:70px}.es-c-st{width:38%}.es-c-v{width:96px}
.es-c-tests{width:24%}
tr.es-req[data-verdict=failed]>td{background:#fff5f5}
tr.es-req[data-verdict=failed]>td:first-child{box-shadow:inset 4px 0 #cf222e}
tr.es-req[data-verdict=not_tested]>td{background:#fffdf0}
tr.es-req[data-scope=out]>td{background:#f6f8fa;color:#57606a}
.es-tests{margin:0;padding:0;list-style:none;font-size:12px}
.es-test{color:#0969da;text-decoration:none;font-family:ui-monospace,Menlo,Consolas,monospace}
.es-test:hover{text-decoration:underline}
.es-obs{margin:0;padding-left:16px;color:#0550ae}
tr.es-detail>td{background:#fff;padding:4px 10px 10px 24px;border-left:4px solid #cf222e}
tr.es-detail[data-verdict=known]>td{border-left-color:#8250df}
tr.es-figrow>td{background:#fff;padding:4px 10px 10px 24px;border-left:4px solid #0969da}
.es-figures{font-size:13px;margin:4px 0}.es-fig-plot{display:block;margin:6px 0;max-width:100%}
.es-fig-table{border-collapse:collapse;font-size:12px}.es-fig-table td,.es-fig-table th{
padding:1px 8px;border-bottom:1px solid #eaeef2;text-align:right}
.es-fig-table td:first-child,.es-fig-table th:first-child{text-align:left}
.es-fig-table tr.es-fig-bad td{color:#cf222e}
.es-seq-table{margin:6px 0;max-width:100%}.es-seq-table td,.es-seq-table th{text-align:left;
vertical-align:top;overflow-wrap:anywhere;padding:3px 8px}
.es-seq-table td:first-child{text-align:right;font-family:ui-monospace,Menlo,Consolas,monospace}
.es-seq-table tr.es-seq-fail td{background:#fff5f5;border-top:2px solid #cf222e;
border-bottom:2px solid #cf222e}
.es-seq-table tr.es-seq-fail td:first-child{box-shadow:inset 4px 0 #cf222e;color:#cf222e;
font-weight:700}
.es-seq-ref{font-style:normal;font-weight:700;color:#6e40c9}
.es-seq-note{color:#a40e26;font-size:12px;margin-top:2px}
.es-seq-conns{font-size:12px;color:#57606a;margin:2px 0}
.es-seq-witness{margin:4px 0;padding-left:18px;font-size:12.5px;color:#57606a}
.es-seq-replay{margin:4px 0;font-size:13px}
.es-detail-box>summary,.es-exchange>summary{cursor:pointer;color:#57606a;font-size:13px;
margin:2px 0}
.es-failure{margin:6px 0 10px}
.es-failure-head{font-size:14px;margin-bottom:4px;color:#1f2328}
.es-failure-test{font-size:13px;color:#57606a}
.es-ea{display:grid;grid-template-columns:max-content 1fr;gap:3px 12px;margin:6px 0;
font:12.5px/1.45 ui-monospace,Menlo,Consolas,"DejaVu Sans Mono",monospace}
.es-ea dt{font-weight:700;color:#57606a}
.es-ea dd{margin:0;white-space:pre-wrap;overflow-wrap:anywhere;color:#1f2328}
.es-ea dt:nth-of-type(1)+dd{color:#116329}.es-ea dt:nth-of-type(2)+dd{color:#a40e26}
.es-message{margin:4px 0;color:#a40e26;font-family:ui-monospace,Menlo,Consolas,monospace;
font-size:12.5px;white-space:pre-wrap}
.es-legend{font-size:11.5px;color:#656d76;margin:2px 0}
.es-transcript{font:12px/1.5 ui-monospace,Menlo,Consolas,"DejaVu Sans Mono",monospace;
background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:6px 10px;margin:2px 0;
white-space:pre-wrap;overflow-wrap:anywhere;max-height:480px;overflow:auto;color:#1f2328}
.es-transcript p{margin:0;padding-left:var(--es-indent);text-indent:calc(-1 * var(--es-indent))}
.es-transcript i{font-style:normal;color:#8c959f}.es-transcript b{color:#6e40c9}
.es-transcript u{text-decoration:none;font-weight:700}
.es-transcript .s u{color:#0969da}.es-transcript .r u{color:#1a7f37}
.es-transcript .n{color:#7d4e00}.es-transcript .o{color:#656d76;font-style:italic}
.es-extra{color:#1f2328;font-size:13px;padding:4px 0}
.es-skip{margin:4px 0}
#results-table .log{overflow-wrap:anywhere}
.es-over{color:#cf222e}
.es-dur{font-size:11.5px;color:#656d76;margin-top:2px}
.es-slowest{margin:18px 0 6px}.es-slowest>summary{cursor:pointer;font-size:15px;font-weight:600}
.es-slowest-table{border-collapse:collapse;font-size:12.5px;margin-top:6px}
.es-slowest-table th,.es-slowest-table td{border:1px solid #d8dee4;padding:3px 8px;text-align:left}
.es-slowest-table td.es-n{text-align:right;white-space:nowrap}
.es-divider{border-top:1px solid #d0d7de;padding-top:14px;margin-top:30px}
""".replace("\n", "")

SCRIPT = """
(function(){
var sec=document.getElementById('es-report');
if(!sec||!document.body)return;
var style=sec.previousElementSibling;
document.body.insertBefore(sec,document.body.firstChild);
if(style&&style.tagName==='STYLE')document.head.appendChild(style);
var title=document.getElementById('title');
if(title)title.style.display='none';
var v=document.getElementById('es-verdict');
if(v)document.title=v.textContent+' \\u00b7 EduSphere chat conformance report';
function key(tr){
  return tr.getAttribute('data-scope')==='out'?'out_of_scope':tr.getAttribute('data-verdict');
}
function show(f){
  sec.querySelectorAll('.es-filter').forEach(function(b){
    b.classList.toggle('es-on',b.getAttribute('data-filter')===f);});
  sec.querySelectorAll('.es-area').forEach(function(area){
    var any=false;
    area.querySelectorAll('tr[data-verdict]').forEach(function(tr){
      var on=f==='all'||key(tr)===f;
      tr.hidden=!on;if(on)any=true;});
    area.hidden=!any;
    area.open=f==='all'?area.getAttribute('data-open')==='1':any;});
}
sec.querySelectorAll('.es-filter').forEach(function(b){
  b.addEventListener('click',function(){show(b.getAttribute('data-filter'));});});
function open(id){
  var d=sec.querySelector('details[data-detail="'+id+'"]');
  if(d){d.open=true;d.querySelectorAll('details').forEach(function(x){x.open=true;});}
}
sec.querySelectorAll('[data-open]').forEach(function(a){
  a.addEventListener('click',function(){
    var f=sec.querySelector('.es-filter.es-on');
    if(f&&f.getAttribute('data-filter')!=='all'&&f.getAttribute('data-filter')!=='failed')
      show('all');
    open(a.getAttribute('data-open'));});});
})();
"""
