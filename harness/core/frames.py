"""Frames and values, judged without I/O: predicates, display, timestamps, value checks.

The wire layer parses each frame once; everything here takes that parsed frame (a dict, a str that
was not JSON, or bytes) and answers, or raises :class:`~harness.core.failures.ConformanceFailure`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from harness.core.failures import ConformanceFailure

Frame = Any
Predicate = Callable[[Frame], bool]


def show(frame: Frame, limit: int = 300) -> str:
    """A frame as compact text for a failure message: its start, and its full length when cut
    (what a failure needs of a long frame)."""
    if isinstance(frame, bytes):
        text = f"<binary {len(frame)} bytes>"
    elif isinstance(frame, str):
        text = frame
    else:
        text = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
    if len(text) <= limit:
        return text
    return text[: limit - 1] + f"… ({len(text):,} characters)"


# --- frame predicates (pure) ----------------------------------------------------------------


def is_event(frame: Frame, action: str | None = None) -> bool:
    return (
        isinstance(frame, dict)
        and frame.get("type") == "chat_message"
        and (action is None or frame.get("action") == action)
    )


def is_error(frame: Frame) -> bool:
    return isinstance(frame, dict) and "error" in frame and frame.get("type") != "chat_message"


def event_matching(action: str, *, id: str | None = None, body: str | None = None) -> Predicate:
    def match(frame: Frame) -> bool:
        if not is_event(frame, action):
            return False
        if id is not None and frame.get("id") != id:
            return False
        return body is None or frame.get("body") == body

    return match


def visible(text: str) -> str:
    """What a reader sees of ``text``: its letters, marks, numbers, punctuation and symbols, with
    controls, format characters, separators, noncharacters and U+FFFD left out. A server that
    sanitises a body (drops or replaces control characters, trims blanks) keeps this."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LMNPS" and ch != "\ufffd")


def same_visible_text(sent: str, body: Any) -> bool:
    """``body`` is ``sent`` as a sanitising server may broadcast it (see :func:`visible`)."""
    return isinstance(body, str) and visible(body) == visible(sent)


def mentions(*needles: str) -> Predicate:
    """A frame that carries any of ``needles`` (nonces, ids) anywhere in its text."""

    def match(frame: Frame) -> bool:
        text = show(frame, limit=10**9)
        return any(n and n in text for n in needles)

    return match


# --- timestamps -----------------------------------------------------------------------------


def now_rfc3339(timespec: str = "milliseconds", at: datetime | None = None) -> str:
    """Now (or ``at``), in UTC, as RFC 3339 with ``Z``: ``2024-01-01T12:00:00.123Z`` (the
    ``timestamp`` of the frames the harness sends); ``timespec="seconds"`` for a run's
    ``started``. The one clock-to-text of the project: every mode and the reference client."""
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")


# --- value checks (pure) ------------------------------------------------------------------


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 date-time with a time zone, or None. Never compares strings."""
    if not isinstance(value, str):
        return None
    text = value
    if not _RFC3339.fullmatch(text):
        return None
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    # fromisoformat in 3.11 accepts any number of fraction digits only up to 6: trim the rest.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        if not digits:
            return None
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def check_equal(requirement: str, what: str, expected: Any, actual: Any) -> None:
    if expected != actual:
        raise ConformanceFailure(requirement, f"{what} = {expected!r}", f"{what} = {actual!r}")


def check_error_text(requirement: str, expected: str, frame: Frame) -> None:
    actual = frame.get("error") if isinstance(frame, dict) else None
    if actual != expected:
        raise ConformanceFailure(
            requirement, f'error frame {{"error": "{expected}"}}', f"error frame {show(frame)}"
        )


def check_not_earlier(requirement: str, earlier: Any, later: Any, slack_s: float = 1.0) -> None:
    first, second = parse_timestamp(earlier), parse_timestamp(later)
    if first is None or second is None:
        raise ConformanceFailure(
            requirement,
            "RFC 3339 date-times with a time zone",
            f"created={earlier!r}, updated={later!r}",
        )
    if (first - second).total_seconds() > slack_s:
        raise ConformanceFailure(
            requirement,
            f"updated ({later}) not earlier than created ({earlier})",
            f"updated is {(first - second).total_seconds():.3f} s earlier",
        )
