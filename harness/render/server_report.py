"""The server-mode HTML report: pytest-html hooks that render the results model.

Registered by :mod:`harness.server.plugin` when pytest-html is active. It renders, and never
decides: verdicts come from :class:`~harness.core.results.RunResult` (``current_result``) and
per-test records (``record_of``). What it adds to pytest-html's file:

- above pytest-html's own summary: the conformance section (:mod:`harness.render.server_section`:
  a header, a per-level summary, the requirement matrix with its filters and failure details);
- on each conformance test's row: a sortable "Requirement" column, and the failure detail or the
  transcript (:mod:`harness.render.server_detail`) as an HTML extra (collapsed for passing
  tests).

Frames come from servers nobody here wrote, so every text is redacted
(:func:`harness.redact.redact`) and then HTML-escaped before it is written.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable

import pytest

from harness.core.catalogue import NEEDS, Catalogue
from harness.core.results import OUT_OF_SCOPE, TestRecord
from harness.render.html import OUT_OF_SCOPE_LABEL, esc
from harness.render.server_detail import _transcript_block, failure_html
from harness.render.server_section import render_section
from harness.server.records import current_result, record_of


def _observations(record: TestRecord) -> str:
    items = [
        f"<li><b class=es-rid>{esc(rid)}</b> {esc(text)}</li>"
        for rid, texts in record.observations.items()
        for text in texts
    ]
    return f'<ul class="es-obs">{"".join(items)}</ul>' if items else ""


def row_extra_html(record: TestRecord, catalogue: Catalogue) -> str:
    """The HTML extra on a test's row in pytest-html's table."""
    if record.outcome == "failed":
        body = failure_html(record, catalogue, open_transcript=True)
    elif record.outcome == "skipped":
        reason = record.message or "skipped"
        lacks = reason.removeprefix("not tested: ") in NEEDS.values()
        badge = (
            f'<span class="es-badge es-v-{OUT_OF_SCOPE}">{OUT_OF_SCOPE_LABEL}</span> '
            if lacks  # the target lacks what the test needs (Chat.needs): not a gap in it
            else '<span class="es-badge es-v-not_tested">not tested</span> '
        )
        skip = f'<div class="es-skip">{badge}{esc(reason)}</div>'
        body = skip + _transcript_block(record, open_=False, cut=True)
    else:
        body = _transcript_block(record, open_=False, cut=True)
    return f'<div class="es-extra">{_observations(record)}{body}</div>'


def _html_extra(content: str) -> dict[str, str | None]:
    try:
        from pytest_html import extras
    except ImportError:  # pragma: no cover - the module is registered only with pytest-html
        return {"name": None, "format_type": "html", "content": content}
    made: dict[str, str | None] = extras.html(content)
    return made


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the failure detail or the transcript to the test's row (runs on xdist workers).

    ``tryfirst`` makes this the outermost wrapper, so harness.server.plugin's wrapper has already
    recorded the conformance property when this one reads it.
    """
    report = yield
    option = item.config.option
    if not (getattr(option, "htmlpath", None) or getattr(option, "report_dir", None)):
        return report  # no HTML report is written
    record = record_of(report)
    if record is not None:
        from harness import catalogue as cat_mod

        extra = _html_extra(row_extra_html(record, cat_mod.load()))
        report.extras = [*getattr(report, "extras", []), extra]  # type: ignore[attr-defined]
    return report


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_summary(
    prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
) -> None:
    result = current_result(session.config)
    if result is not None:
        prefix.append(render_section(result))


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_header(cells: list[str]) -> None:
    cells.insert(1, '<th class="sortable" data-column-type="requirement">Requirement</th>')


def _requirement_cell(ids: Iterable[str], failed: Iterable[str], title: str) -> str:
    shown = list(dict.fromkeys([*ids, *failed]))
    return f'<td class="col-requirement" title="{esc(title)}">{esc(", ".join(shown))}</td>'


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    record = record_of(report) if hasattr(report, "conformance") else None
    if record is None:
        cells.insert(1, '<td class="col-requirement"></td>')
        return
    failed = record.failed_requirements if record.outcome == "failed" else ()
    title = "failed: " + ", ".join(failed) if failed else ""
    cells.insert(1, _requirement_cell(record.requirements, failed, title))
