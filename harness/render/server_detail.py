"""One test's detail in the server-mode HTML report: its transcript and its failure.

A failure (requirement, expected, actual, message, transcript) and a transcript block are shown
twice: in the requirement matrix (:mod:`harness.render.server_section`) and on the test's row of
pytest-html's table (:mod:`harness.render.server_report`). Frames come from servers nobody here
wrote: every text is redacted (:func:`harness.redact.redact`), then HTML-escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from harness import redact
from harness.core.catalogue import Catalogue
from harness.core.results import TestRecord
from harness.core.transcript import ELIDED, compact_list, shorten
from harness.render.html import esc

#: A test that passed (or was not tested) shows less of its transcript: at most this many
#: characters and, of its last entries, this many for sure (harness.core.transcript.cap).
PASSED_CHARS, PASSED_KEEP_LAST = 6_000, 5
#: ... and at most this many characters of each frame (a failure keeps FRAME_LIMIT's 2,048).
PASSED_FRAME_CHARS = 300
_DIRECTION = {"->": ("s", "→"), "<-": ("r", "←"), "==": ("n", "•"), ELIDED: ("o", "…")}
_CODE = re.compile(r"`([^`\n]+)`")


def _esc_text(text: object) -> str:
    """Like :func:`esc`, for element text only: quotes stay (JSON frames are full of them, and
    pytest-html escapes each escaped quote once more in its data attribute)."""
    return html.escape(redact.redact(str(text)), quote=False)


def esc_code(text: object) -> str:
    """Like :func:`esc`, with the catalogue's `backticks` shown as code."""
    return _CODE.sub(r"<code>\1</code>", esc(text))


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def render_transcript(entries: Sequence[Mapping[str, Any]]) -> str:
    """A transcript as a monospaced block: time, connection, direction, frame or event.

    Each entry is one line (a hanging indent wraps long frames under the text); a line that
    stands for entries left out (direction ``..``, see :mod:`harness.core.transcript`) is shown
    in grey italics. The markup is kept short on purpose: pytest-html stores every extra
    JSON-encoded inside an attribute.
    """
    if not entries:
        return '<p class="es-muted">No transcript: the test opened no connection.</p>'
    width = max(len(str(e.get("conn", ""))) for e in entries)
    indent = 9 + 3 + 2 + width + 2 + 1 + 2
    lines = []
    for entry in entries:
        cls, arrow = _DIRECTION.get(str(entry.get("dir", "")), ("n", "•"))
        conn = str(entry.get("conn", "")).ljust(width)
        lines.append(
            f"<p class={cls}><i>{_float(entry.get('t_ms')):9.1f} ms</i>  <b>{esc(conn)}</b>  "
            f"<u>{arrow}</u>  {_esc_text(entry.get('text', ''))}</p>"
        )
    return f'<div class="es-transcript" style="--es-indent:{indent}ch">' + "".join(lines) + "</div>"


def _transcript_block(record: TestRecord, *, open_: bool, cut: bool = False) -> str:
    """A test's transcript, folded or open; ``cut`` (a test that passed or was not tested) keeps
    less of it (:data:`PASSED_CHARS`), a failure keeps it up to the transcript's own cap."""
    limits = {"max_chars": PASSED_CHARS, "keep_last": PASSED_KEEP_LAST} if cut else {}
    entries = compact_list(record.transcript, hide_unread=cut, **limits)
    if cut:
        for entry in entries:
            if entry.get("dir") in ("->", "<-"):
                entry["text"] = shorten(str(entry.get("text", "")), PASSED_FRAME_CHARS)
    logged = sum(int(e.get("hidden") or 1) if e.get("dir") == ELIDED else 1 for e in entries)
    conns = len({str(e.get("conn", "")) for e in entries if e.get("dir") != ELIDED})
    span = _float(entries[-1].get("t_ms")) if entries else 0.0
    shown = f" ({len(entries)} lines shown)" if len(entries) != logged else ""
    what = (
        f"{logged} entries{shown}, {conns} connection{'s' if conns != 1 else ''}, {span:.0f} ms"
        if entries
        else "empty"
    )
    return (
        f'<details class="es-exchange"{" open" if open_ else ""}>'
        f"<summary>Transcript ({what})</summary>"
        '<div class="es-legend">→ sent by the harness &nbsp; ← received from the server &nbsp; '
        "• handshake, close, note &nbsp; … left out &nbsp; "
        "(milliseconds since the test's first event)</div>"
        f"{render_transcript(entries)}</details>"
    )


def _test_name(nodeid: str) -> str:
    return nodeid.rsplit("/", 1)[-1]


def _test_link(nodeid: str) -> str:
    name = esc(_test_name(nodeid)).replace("_", "_<wbr>").replace("::", "::<wbr>")
    return (
        f'<a class="es-test" href="#{esc(quote(nodeid, safe=""))}" title="{esc(nodeid)}">{name}</a>'
    )


def failure_html(record: TestRecord, catalogue: Catalogue | None, *, open_transcript: bool) -> str:
    """One test's failure: requirement(s) (given a catalogue), expected, actual, transcript."""
    parts = ['<div class="es-failure">']
    if catalogue is not None:
        for rid in record.failed_requirements or record.requirements:
            req = catalogue.by_id.get(rid)
            level = req.level if req else ""
            statement = esc_code(req.statement) if req else ""
            parts.append(
                f'<div class="es-failure-head"><span class="es-badge es-v-failed">failed</span> '
                f'<b class="es-rid">{esc(rid)}</b> <span class="es-level es-l-{esc(level)}">'
                f"{esc(level)}</span> {statement}</div>"
            )
    kind = f" &middot; {esc(record.kind)}" if record.kind else ""
    parts.append(f'<div class="es-failure-test">test {_test_link(record.nodeid)}{kind}</div>')
    if record.expected or record.actual:
        parts.append(
            '<dl class="es-ea">'
            f"<dt>expected</dt><dd>{esc(record.expected)}</dd>"
            f"<dt>actual</dt><dd>{esc(record.actual)}</dd></dl>"
        )
    if record.message:
        parts.append(f'<p class="es-message">{esc(record.message)}</p>')
    parts.append(_transcript_block(record, open_=open_transcript))
    parts.append("</div>")
    return "".join(parts)
