"""The transcript of one test: what was sent and received, kept readable.

Protocol notes, "Record the conversation": each test keeps a transcript (time, connection,
direction, frame, close codes, handshake status) so that a failure shows what was sent and what
came back; tokens and secrets are redacted. A test can also send a 2 MiB frame or a flood of a
thousand frames, and a report that embeds those whole is too big to open. So a transcript is
stored almost as logged and compacted when it is shown, in three steps:

1. **Cut, when logged** (:func:`shorten`). The text is redacted first and cut second: a token cut
   in half would no longer match the mask. A frame longer than :data:`FRAME_LIMIT` characters
   keeps its first :data:`FRAME_LIMIT` characters and says its full length:
   ``{"type": "text", "message": "aaaa… (2,097,152 characters in all)``.
2. **Collapse, when shown** (:func:`collapse`). A run is the frames of one connection in one
   direction that have the same shape (:func:`shape`: the same length, and the same text once
   digits and hex strings such as nonces, ids and timestamps are masked), until that connection
   logs a differently shaped frame in that direction, or a note. A run keeps its first
   :data:`RUN_HEAD` frames and its last; the frames between become one line,
   ``… 990 more sent like this, until 760.2 ms``. Frames of another shape, connection or
   direction are never collapsed together.
3. **Cap, when shown** (:func:`cap`): a transcript shows at most :data:`MAX_CHARS` characters and
   :data:`MAX_LINES` lines, as :func:`render` writes them. Past that, entries are left out from
   the middle (the start and the end are kept); each stretch left out becomes one line saying how
   many entries, of which connections, between which times.

What a failure needs is never cut. A check raises at the end of a transcript, right after the
frame it is about, so the last :data:`KEEP_LAST` entries are never collapsed or left out. Notes
(``==``: handshakes, closes, what the harness did) are never collapsed, and are left out only when
they alone would break the cap. The failure message itself (expected / actual) is separate and is
not touched here.

Lines that stand for left-out entries have the direction :data:`ELIDED` (``..``) and carry the
number of entries they stand for (:attr:`Entry.hidden`), so compacting a compacted transcript
again (the report does, with a smaller cap for passing tests) keeps the counts right.

Memory: a stored transcript past :data:`GUARD_CHARS` characters or :data:`GUARD_ENTRIES` entries
is compacted in place, so a test that floods for minutes keeps bounded memory.

I/O-free core: imports neither websockets nor pytest.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SENT, RECEIVED, NOTE, ELIDED = "->", "<-", "==", ".."
#: A logged text longer than this (characters) keeps this many and says its full length.
FRAME_LIMIT = 2048
#: A run of similar frames keeps this many first frames (and its last one).
RUN_HEAD = 3
#: The last entries of a transcript: never collapsed, never left out (a failure is about them).
KEEP_LAST = 20
#: Hard cap on a shown transcript, in characters as rendered (100 KB).
MAX_CHARS = 100_000
#: Hard cap on a shown transcript, in lines.
MAX_LINES = 1000
#: A stored transcript past either bound is compacted in place (bounded memory).
GUARD_CHARS = 4_000_000
GUARD_ENTRIES = 20_000

#: What :func:`shape` masks: a UUID, a hex string of 8 or more characters, a hex string with a
#: digit in it (every number). One pattern, no callback: a flood's transcript shapes every frame.
_MASKED = re.compile(
    r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}"
    r"|[0-9A-Fa-f]{8,}"
    r"|[0-9A-Fa-f]*[0-9][0-9A-Fa-f]*"
)
_CUT_NOTE = re.compile(r"… \([0-9,]+ characters in all\)\Z")


@dataclass
class Entry:
    """One line of a transcript: milliseconds since the test began, connection, direction, text.

    ``direction`` is ``->`` sent, ``<-`` received, ``==`` handshake / close / note, or ``..`` for a
    line that stands for ``hidden`` entries left out.
    """

    t_ms: float
    conn: str
    direction: str
    text: str
    hidden: int = 0
    #: A received frame no check of the test read (other traffic in the room, e.g. another
    #: test's events): a passing test's report leaves these out (:func:`without_unread`).
    unread: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The entry as plain JSON data (the per-test record and the report read this)."""
        data: dict[str, Any] = {
            "t_ms": round(self.t_ms, 1),
            "conn": self.conn,
            "dir": self.direction,
            "text": self.text,
        }
        if self.hidden:
            data["hidden"] = self.hidden
        if self.unread:
            data["unread"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        """The inverse of :meth:`as_dict`, tolerant of missing or odd values."""
        try:
            t_ms = float(data.get("t_ms", 0.0))
        except (TypeError, ValueError):
            t_ms = 0.0
        hidden = data.get("hidden", 0)
        return cls(
            t_ms,
            str(data.get("conn", "")),
            str(data.get("dir", "")),
            str(data.get("text", "")),
            hidden if isinstance(hidden, int) else 0,
            data.get("unread") is True,
        )


# --- step 1: cut ----------------------------------------------------------------------------


def shorten(text: str, limit: int = FRAME_LIMIT) -> str:
    """``text`` itself if at most ``limit`` characters, else its start and its full length.

    Redact before calling this: a secret cut in half would escape the mask.
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters in all)"


# --- step 2: collapse -----------------------------------------------------------------------


def shape(text: str) -> str:
    """What similar frames share: the length, and the text with numbers and hex strings masked.

    A UUID, a hex string of 8 or more characters, and a hex string or number with a digit in it
    become ``#``: nonces, ids, timestamps and counters differ from frame to frame of a flood; the
    rest of the text and its length do not.
    The full length of a cut frame stays as it is.
    """
    cut = _CUT_NOTE.search(text)
    head, note = (text[: cut.start()], cut.group()) if cut else (text, "")
    return f"{len(text)}:{_MASKED.sub('#', head)}{note}"


def _runs(entries: Sequence[Entry]) -> list[list[int]]:
    """The runs of similar frames, as lists of indices (runs of one frame included)."""
    runs: list[list[int]] = []
    # Per connection and direction: the open run's last text, its shape (made when first
    # needed: texts of different lengths never share a shape), and its members.
    open_runs: dict[tuple[str, str], list[Any]] = {}
    for i, entry in enumerate(entries):
        if entry.direction in (SENT, RECEIVED):
            key = (entry.conn, entry.direction)
            current = open_runs.get(key)
            if current is not None and len(current[0]) == len(entry.text):
                if current[1] is None:
                    current[1] = shape(current[0])
                form = shape(entry.text)
                if current[1] == form:
                    current[0] = entry.text
                    current[2].append(i)
                    continue
            else:
                form = None
            members = [i]
            runs.append(members)
            open_runs[key] = [entry.text, form, members]
        elif entry.direction == NOTE:  # a handshake or close ends the connection's runs
            open_runs.pop((entry.conn, SENT), None)
            open_runs.pop((entry.conn, RECEIVED), None)
        else:  # a line for left-out entries: what lies beyond it is not known to be similar
            open_runs.clear()
    return runs


def collapse(
    entries: Sequence[Entry], *, run_head: int = RUN_HEAD, keep_last: int = KEEP_LAST
) -> list[Entry]:
    """``entries`` with each run of similar frames cut to its first ``run_head`` and its last.

    The frames between become one :data:`ELIDED` line at the place of the first of them; the last
    ``keep_last`` entries are never collapsed; a run that would hide fewer than two frames stays.
    """
    frozen = len(entries) - keep_last
    starts: dict[int, list[int]] = {}
    hidden: set[int] = set()
    for members in _runs(entries):
        middle = [i for i in members[run_head:-1] if i < frozen]
        if len(middle) >= 2:
            starts[middle[0]] = middle
            hidden.update(middle)
    if not hidden:
        return list(entries)
    out: list[Entry] = []
    for i, entry in enumerate(entries):
        if i in starts:
            first, last = entries[i], entries[starts[i][-1]]
            n = len(starts[i])
            what = "sent" if first.direction == SENT else "received"
            text = f"… {n:,} more {what} like this, until {last.t_ms:.1f} ms"
            out.append(Entry(first.t_ms, first.conn, ELIDED, text, hidden=n))
        if i not in hidden:
            out.append(entry)
    return out


# --- step 3: cap ----------------------------------------------------------------------------


def _width(entries: Iterable[Entry]) -> int:
    return max((len(e.conn) for e in entries), default=4)


def _line(entry: Entry, width: int) -> str:
    return f"{entry.t_ms:9.1f} ms  {entry.conn:<{width}}  {entry.direction}  {entry.text}"


def render(entries: Iterable[Entry]) -> str:
    """The entries as text, one line each: time, connection, direction, text."""
    shown = list(entries)
    width = _width(shown)
    return "\n".join(_line(e, width) for e in shown)


def _gap(dropped: Sequence[Entry], max_chars: int) -> Entry:
    """The line that stands for a stretch of entries left out by the cap."""
    n = sum(e.hidden or 1 for e in dropped)
    conns = list(dict.fromkeys(e.conn for e in dropped if e.conn))
    names = ", ".join(conns[:4]) + (f" and {len(conns) - 4} more" if len(conns) > 4 else "")
    first, last = dropped[0], dropped[-1]
    text = (
        f"… {n:,} entries left out ({names or 'no connection'}; "
        f"{first.t_ms:.1f} ms to {last.t_ms:.1f} ms), to keep the transcript under "
        f"{max_chars:,} characters"
    )
    return Entry(first.t_ms, "", ELIDED, text, hidden=n)


def _assemble(
    entries: Sequence[Entry], keep: Sequence[bool], width: int, max_chars: int
) -> tuple[list[Entry], int]:
    """The kept entries, each stretch left out replaced by one line; and the rendered size."""
    out: list[Entry] = []
    dropped: list[Entry] = []
    for entry, kept in zip(entries, keep, strict=True):
        if kept:
            if dropped:
                out.append(_gap(dropped, max_chars))
                dropped = []
            out.append(entry)
        else:
            dropped.append(entry)
    if dropped:
        out.append(_gap(dropped, max_chars))
    return out, sum(len(_line(e, width)) + 1 for e in out)


def _fill(
    entries: Sequence[Entry], fixed: Sequence[bool], k: int, width: int, limits: tuple[int, int]
) -> list[Entry] | None:
    """The fixed entries and ``k`` others (alternately from the start and the end), if they fit."""
    keep = list(fixed)
    free = [i for i, f in enumerate(fixed) if not f]
    for i in free[: (k + 1) // 2]:
        keep[i] = True
    for i in free[len(free) - k // 2 :] if k // 2 else ():
        keep[i] = True
    max_chars, max_lines = limits
    out, size = _assemble(entries, keep, width, max_chars)
    return out if size <= max_chars and len(out) <= max_lines else None


def cap(
    entries: Sequence[Entry],
    *,
    max_chars: int = MAX_CHARS,
    max_lines: int = MAX_LINES,
    keep_last: int = KEEP_LAST,
) -> list[Entry]:
    """``entries`` within ``max_chars`` characters and ``max_lines`` lines as rendered.

    Kept first: the last ``keep_last`` entries, then the notes (``==``), then as many other
    entries as fit, alternately from the start and from the end. Only if the notes alone do not
    fit are they left out too, and only if the last entries alone do not fit (a cap far below
    ``keep_last`` long frames) are fewer of them kept.
    """
    entries = list(entries)
    width = _width(entries)
    n = len(entries)
    if sum(len(_line(e, width)) + 1 for e in entries) <= max_chars and n <= max_lines:
        return entries
    limits = (max_chars, max_lines)
    last_counts = sorted({min(keep_last, n) >> s for s in range(12)}, reverse=True)
    for protect_notes in (True, False):
        for last in last_counts:
            fixed = [
                i >= n - last or (protect_notes and e.direction == NOTE)
                for i, e in enumerate(entries)
            ]
            found = _fill(entries, fixed, 0, width, limits)
            if found is None:
                continue
            # Keeping k more fits for k = lo and not for k = hi (hi keeps everything).
            lo, hi = 0, fixed.count(False)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                fits = _fill(entries, fixed, mid, width, limits)
                if fits is None:
                    hi = mid
                else:
                    lo, found = mid, fits
            return found
    return []  # not even one line fits: a cap below any sensible size


def compact(
    entries: Sequence[Entry],
    *,
    max_chars: int = MAX_CHARS,
    max_lines: int = MAX_LINES,
    keep_last: int = KEEP_LAST,
    run_head: int = RUN_HEAD,
) -> list[Entry]:
    """Collapse runs of similar frames, then cap: what a report or a failure shows."""
    collapsed = collapse(entries, run_head=run_head, keep_last=keep_last)
    return cap(collapsed, max_chars=max_chars, max_lines=max_lines, keep_last=keep_last)


def without_unread(entries: Iterable[Entry]) -> list[Entry]:
    """``entries`` with each run of frames no check read (:attr:`Entry.unread`) as one
    :data:`ELIDED` line: what a passing test's report shows of a crowded room."""
    out: list[Entry] = []
    for entry in entries:
        if not entry.unread:
            out.append(entry)
            continue
        last = out[-1] if out else None
        if last is not None and last.direction == ELIDED and last.unread:
            last.hidden += 1
            last.text = f"{last.hidden} frames no check of this test read (other traffic)"
        else:
            text = "1 frame no check of this test read (other traffic)"
            out.append(Entry(entry.t_ms, "", ELIDED, text, hidden=1, unread=True))
    return out


def compact_list(
    entries: Iterable[Mapping[str, Any]], *, hide_unread: bool = False, **limits: int
) -> list[dict[str, Any]]:
    """:func:`compact` for transcripts as plain data (a test record's ``transcript``); with
    ``hide_unread``, frames no check read first become one line a run."""
    parsed = [Entry.from_dict(e) for e in entries]
    shown = compact(without_unread(parsed) if hide_unread else parsed, **limits)
    return [e.as_dict() for e in shown]


# --- the transcript of a test ---------------------------------------------------------------


@dataclass
class Transcript:
    """A test's transcript: :meth:`log` while the test runs, :meth:`render` or
    :meth:`as_list` for the report (compacted, see the module's docstring).

    ``limit`` caps the lines shown, ``max_chars`` the characters shown; ``entries`` holds what was
    logged (each text redacted and cut; compacted in place only past the memory guard).
    """

    #: The secrets' mask every text goes through before it is kept (``harness.redact.redact``:
    #: the registry of secrets is the process's, not the core's).
    redact: Callable[[str], str]
    t0: float = field(default_factory=time.monotonic)
    entries: list[Entry] = field(default_factory=list)
    limit: int = MAX_LINES
    max_chars: int = MAX_CHARS
    _stored: int = field(default=0, init=False, repr=False)

    def log(self, conn: str, direction: str, text: str) -> Entry:
        """Record one handshake, frame, close or note; redacted, then cut. Returns the entry
        (the wire layer marks a frame no check read)."""
        text = shorten(self.redact(text))  # this order: a cut token would escape the mask
        entry = Entry(self._ms(), conn, direction, text)
        self.entries.append(entry)
        self._stored += len(text)
        if self._stored > GUARD_CHARS or len(self.entries) > GUARD_ENTRIES:
            self.compact_in_place()
        return entry

    def redacted(self, text: str) -> str:
        """``text`` with the secrets masked, as every logged text is."""
        return self.redact(text)

    def compact_in_place(self) -> None:
        """Keep only what a report shows (the memory guard; also once a test is done)."""
        self.entries = self.shown()
        self._stored = sum(len(e.text) for e in self.entries)

    def _ms(self) -> float:
        return (time.monotonic() - self.t0) * 1000

    def shown(self) -> list[Entry]:
        """The entries as a report shows them: runs collapsed, within the caps."""
        return compact(self.entries, max_chars=self.max_chars, max_lines=self.limit)

    def render(self) -> str:
        """The shown entries as text (a failure's "transcript" section)."""
        return render(self.shown())

    def as_list(self) -> list[dict[str, Any]]:
        """The shown entries as plain data (the per-test record)."""
        return [e.as_dict() for e in self.shown()]
