"""The pieces every HTML report shares, rendered from :class:`harness.core.results.RunResult`.

Mode-agnostic: the style sheet, escaping (redaction first), the verdict banner (verdict word,
target, counts per level, why a run is INCOMPLETE), the summary table per level and the
requirements table (id, level, statement, verdict, reason or details). A mode's report puts its
own sections around them (client-check: settings and one timeline per scenario). The pieces
compute no verdict; they need no script and no external asset.

A requirement out of the run's scope (the selection left it out, or the target lacks what it
needs) that nothing tested is shown as "out of scope" with its reason, and counted apart from
"not tested" (:attr:`harness.core.results.RequirementResult.out_of_scope`); its row keeps
``data-verdict="not_tested"`` (its verdict in results.json) and adds ``data-scope="out"``.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence

from harness import redact
from harness.core.catalogue import LEVELS
from harness.core.results import COUNTS, OUT_OF_SCOPE, RequirementResult, RunResult, grouped

__all__ = [
    "COUNT_LABEL",
    "CSS",
    "LEVEL_NOTE",
    "OUT_OF_SCOPE_LABEL",
    "VERDICT_LABEL",
    "banner",
    "details_list",
    "esc",
    "meta_table",
    "page",
    "plural",
    "requirement_badge",
    "requirements_table",
    "scope_sentence",
    "summary_table",
    "verdict_badge",
    "verdict_sentences",
]

VERDICT_LABEL = {
    "passed": "passed",
    "failed": "failed",
    "not_tested": "not tested",
    "known": "known",
    "not_applicable": "not applicable",
}
OUT_OF_SCOPE_LABEL = "out of scope"
#: The label of each count of :meth:`RunResult.summary` (the verdicts, then out of scope).
COUNT_LABEL = {**VERDICT_LABEL, OUT_OF_SCOPE: OUT_OF_SCOPE_LABEL}
LEVEL_NOTE = {
    "MUST": "a failure fails the run",
    "SHOULD": "a failure fails the run with --strict only",
    "INFO": "observations: never fails the run",
}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1040px;
color:#1d232b;line-height:1.4;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;
border-bottom:1px solid #d0d7de;padding-bottom:.2rem}h3{font-size:1rem;margin:1rem 0 .3rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f5f7}code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;
font-size:.85em}.v{font-weight:600;white-space:nowrap}.rid{white-space:nowrap}
.passed{color:#116329}.failed{color:#b42318}.not_tested{color:#7a5c00}.known{color:#8250df}
.not_applicable{color:#59636e}.out_of_scope{color:#59636e;font-weight:normal;font-style:italic}
tr[data-scope=out]{color:#59636e}
.banner{padding:.6rem 1rem;border-radius:6px;margin:1rem 0;border:2px solid}
.banner .word{font-size:1.3rem;font-weight:800;margin-right:.6rem}
.banner.ok{background:#dafbe1;border-color:#1a7f37}.banner.bad{background:#ffebe9;
border-color:#cf222e}.banner.incomplete{background:#fff8c5;border-color:#bf8700}
.banner p{margin:.2rem 0}
table.counts{width:auto}table.counts td{text-align:right;min-width:5rem}
table.counts td.zero{color:#afb8c1}table.counts td.v-passed:not(.zero){color:#116329}
table.counts td.v-failed:not(.zero){color:#b42318;font-weight:600}
table.counts td.v-not_tested:not(.zero){color:#7a5c00}
table.counts td.v-known:not(.zero){color:#8250df}
table.counts td.v-out_of_scope:not(.zero){color:#59636e}
.level-note{display:block;font-size:.8em}
.muted{color:#59636e}ul.details{margin:.2rem 0;padding-left:1.1rem}
.legend span{display:inline-block;margin-right:1.2rem}svg{max-width:100%;height:auto}
.scenario{margin-bottom:1.5rem}.frame{white-space:pre-wrap;word-break:break-all}
"""


def esc(text: object) -> str:
    """Redact secrets, then escape for HTML text and attribute values."""
    return html.escape(redact.redact(str(text)), quote=True)


def verdict_badge(verdict: str) -> str:
    """A verdict as a coloured word (a failure in capitals, to stand out)."""
    label = "FAILED" if verdict == "failed" else VERDICT_LABEL.get(verdict, verdict)
    return f'<span class="v {esc(verdict)}">{esc(label)}</span>'


def requirement_badge(r: RequirementResult) -> str:
    """A requirement's verdict as a coloured word; one out of the run's scope that nothing
    tested is "out of scope", its reason in the title."""
    if r.out_of_scope:
        return (
            f'<span class="v {OUT_OF_SCOPE}" title="{esc(r.scope_reason)}">'
            f"{esc(OUT_OF_SCOPE_LABEL)}</span>"
        )
    return verdict_badge(r.verdict)


def details_list(details: Iterable[str]) -> str:
    """A bulleted list of texts (empty string for none)."""
    items = "".join(f"<li>{esc(d)}</li>" for d in details)
    return f'<ul class="details">{items}</ul>' if items else ""


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def scope_sentence(result: RunResult) -> str | None:
    """The requirements out of the run's scope, their reasons grouped, in one sentence:
    ``3 requirements out of scope: needs nodes = [...] in the target file ... (3).``"""
    causes = result.scope_causes()
    if not causes:
        return None
    total = sum(n for _, n in causes)
    return (
        f"{plural(total, 'requirement')} out of scope: {grouped(causes, '; ')}. "
        "They are not tested and do not count towards the verdict."
    )


def verdict_sentences(result: RunResult) -> list[str]:
    """What decided the verdict, in sentences (every report shows them): why a run is
    INCOMPLETE, which levels failed and whether that fails the run, what was not tested, what
    the endpoint looks like."""
    summary = result.summary()
    lines = [f"Warning: {warning}." for warning in result.warnings]
    if not result.finished:
        lines.append(f"Incomplete: {result.reason or 'the run stopped early'}.")
    must_failed = summary["MUST"]["failed"]
    should_failed = summary["SHOULD"]["failed"]
    if must_failed:
        lines.append(f"{plural(must_failed, 'MUST requirement')} failed.")
    if should_failed:
        effect = (
            "fail the run (--strict)" if result.strict else "do not fail the run without --strict"
        )
        lines.append(f"{plural(should_failed, 'SHOULD requirement')} failed: they {effect}.")
    if not (must_failed or should_failed):
        lines.append(
            "No MUST requirement failed"
            + (" and no SHOULD requirement failed (--strict)." if result.strict else ".")
        )
    if result.diagnosis and not result.conformant:
        lines.append(f"The endpoint {result.diagnosis}")
    untested = result.untested_line
    if untested and not result.finished:
        lines.append(f"{untested}.")
    elif untested:
        effect = (
            "the run is INCOMPLETE: a requirement that was not tested is never a pass"
            if result.verdict_word == "INCOMPLETE"
            else "they would make the run INCOMPLETE if nothing had failed"
        )
        lines.append(
            f"{untested}: {effect}. Make them testable (see the reasons), or accept them in the "
            "baseline file as [[not_applicable]] with a reason."
        )
    elif summary["SHOULD"]["not_tested"] and not result.strict:
        lines.append(
            f"{plural(summary['SHOULD']['not_tested'], 'SHOULD requirement')} not tested: "
            "they decide the verdict with --strict only."
        )
    scope = scope_sentence(result)
    if scope:
        lines.append(scope)
    known = sum(summary[lvl]["known"] for lvl in LEVELS)
    if known:
        lines.append(f"{plural(known, 'known failure')} (baseline) did not count.")
    accepted = sum(summary[lvl]["not_applicable"] for lvl in LEVELS)
    if accepted:
        lines.append(
            f"{plural(accepted, 'requirement')} not tested and accepted as not applicable "
            "(baseline)."
        )
    return lines


def banner(result: RunResult) -> str:
    """The verdict in one word, against what, the sentences that explain it, the counts and
    the exit status. An INCOMPLETE run says why; its counts cover what ran before it stopped.
    """
    cls = {"CONFORMANT": "ok", "INCOMPLETE": "incomplete"}.get(result.verdict_word, "bad")
    summary = result.summary()
    counts = []
    for lvl in LEVELS:
        level = summary[lvl]
        if not sum(level.values()):
            continue
        shown = ", ".join(
            f"{level[v]} {COUNT_LABEL[v]}"
            for v in COUNTS
            if level[v] or v not in ("known", "not_applicable", OUT_OF_SCOPE)
        )
        counts.append(f"{lvl}: {shown}")
    failed = [r.requirement.id for r in result.failed("MUST")]
    if result.strict:
        failed += [r.requirement.id for r in result.failed("SHOULD")]
    parts = [
        f'<div class="banner {cls}" id="verdict" data-verdict="{esc(result.verdict_word)}">',
        f'<p><span class="word">{esc(result.verdict_word)}</span> '
        f"against <code>{esc(result.target)}</code></p>",
    ]
    if failed:
        parts.append(f"<p>Failed: {esc(', '.join(failed))}</p>")
    parts.extend(f"<p>{esc(line)}</p>" for line in verdict_sentences(result))
    parts.append(
        f'<p class="muted">{esc("; ".join(counts))}. Exit status {result.exit_status}.</p></div>'
    )
    return "".join(parts)


def summary_table(result: RunResult, prefix: str = "") -> str:
    """Counts of requirements per level (rows) and verdict (columns), then those out of scope
    (a column of their own, not counted as not tested). ``prefix`` starts every class name (the
    server report's sheet uses ``es-``); each count cell carries its level and its key of
    :meth:`RunResult.summary` (``data-verdict``, ``out_of_scope`` for the last column) as data
    attributes, so a test can read the page back."""
    p = prefix
    summary = result.summary()
    head = "".join(f'<th class="{p}v-{v}">{esc(COUNT_LABEL[v])}</th>' for v in COUNTS)
    rows = []
    for lvl in LEVELS:
        cells = "".join(
            f'<td class="{p}n{f" {p}zero" if not summary[lvl][v] else ""} {p}v-{v}" '
            f'data-level="{lvl}" data-verdict="{v}">{summary[lvl][v]}</td>'
            for v in COUNTS
        )
        rows.append(
            f'<tr><th scope="row"><span class="{p}level {p}l-{lvl}">{lvl}</span> '
            f'<span class="{p}muted {p}level-note">{esc(LEVEL_NOTE[lvl])}</span></th>{cells}</tr>'
        )
    return (
        f'<table class="{p}counts"><thead><tr><th>level</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _default_notes(r: RequirementResult) -> str:
    if r.verdict == "failed" and len(r.details) > 1:
        return details_list(r.details)
    if r.out_of_scope:
        return f'<div class="muted">{esc(OUT_OF_SCOPE_LABEL)}: {esc(r.scope_reason)}</div>'
    return f'<div class="muted">{esc(r.reason)}</div>' if r.reason else ""


def requirements_table(
    result: RunResult,
    notes: Callable[[RequirementResult], str] | None = None,
    *,
    requirements: Sequence[RequirementResult] | None = None,
) -> str:
    """One row per requirement: id, level, statement (with its source), verdict, notes.

    ``notes`` renders the last cell (HTML); by default the reason, or every detail of a failure.
    A row out of the run's scope carries ``data-scope="out"`` and says "out of scope".
    """
    render = notes or _default_notes
    rows = []
    for r in result.requirements if requirements is None else requirements:
        req = r.requirement
        fixed = ' <span class="v passed">fixed</span>' if r.fixed else ""
        scope = ' data-scope="out"' if r.out_of_scope else ""
        rows.append(
            f'<tr id="req-{esc(req.id)}" data-verdict="{esc(r.verdict)}"{scope}>'
            f"<td class='mono rid'>{esc(req.id)}</td><td>{esc(req.level)}</td>"
            f"<td>{esc(req.statement)}<div class='muted'>{esc(req.source)}</div></td>"
            f"<td>{requirement_badge(r)}{fixed}</td><td>{render(r)}</td></tr>"
        )
    return (
        "<table><tr><th>id</th><th>level</th><th>statement</th><th>verdict</th>"
        "<th>reason / details</th></tr>" + "".join(rows) + "</table>"
    )


def meta_table(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table of settings or facts; both columns are escaped."""
    return (
        "<table>"
        + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
        + "</table>"
    )


def page(title: str, body: Iterable[str], *, css: str = CSS) -> str:
    """A whole self-contained HTML document: inline style, no script, no external asset."""
    return (
        "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en"><head><meta charset="utf-8">',
                f"<title>{esc(title)}</title>",
                f"<style>{css}</style></head><body>",
                *body,
                "</body></html>",
            ]
        )
        + "\n"
    )
