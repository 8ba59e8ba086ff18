"""Client frames in, server frames out: parsing and encoding, no I/O.

Seed, "Message Types (Client to Server)": ``text`` (message), ``delete`` (messageId), ``update``
(messageId, message); each may carry a ``timestamp``, which the server never requires (protocol
notes: "A client frame's timestamp is informational"). Extra fields are ignored (SEND-011).
Seed, "Common Error Messages": the four error strings below are exact.
"""

from __future__ import annotations

import html
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from reference_server.config import ServerConfig, TimestampStyle

# Seed, "Common Error Messages".
TOO_LONG: Final = "Message exceeds {max} characters."
NOT_FOUND: Final = "Message not found."
DELETE_OWN: Final = "You can only delete your own messages."
EDIT_OWN: Final = "You can only edit your own messages."
# Robustness (catalogue ROBUST-*): the seed leaves these open; any error text passes.
INVALID_JSON: Final = "Invalid JSON."
NOT_OBJECT: Final = "Frame must be a JSON object."
BINARY: Final = "Binary frames are not supported."
UNKNOWN_TYPE: Final = "Unknown message type."
NOT_STRING: Final = "Message must be a string."
EMPTY: Final = "Message must not be empty."
NOT_TEXT: Final = "Message must be valid Unicode text."  # lone surrogates, e.g. "\\ud800"
NO_TIMESTAMP: Final = "Timestamp is required."  # only with the require-timestamp fault
GUEST: Final = "Guests cannot send messages."  # only with the unknown-user-accepted fault
INTERNAL: Final = "Internal server error."

CLOSE_UNSUPPORTED: Final = 1003  # RFC 6455 7.4.1, used by the close-on-malformed faults


@dataclass(frozen=True, slots=True)
class SendText:
    """A ``text`` frame. ``body`` is a str unless the nonstring-body fault let another value in."""

    body: Any


@dataclass(frozen=True, slots=True)
class Edit:
    """An ``update`` frame."""

    message_id: str
    body: Any


@dataclass(frozen=True, slots=True)
class Delete:
    """A ``delete`` frame."""

    message_id: str


@dataclass(frozen=True, slots=True)
class Reject:
    """A frame answered with an error (and, with some faults, a close code)."""

    error: str
    close_code: int | None = None


Command = SendText | Edit | Delete | Reject


class FrameParser:
    """Turns one client frame into a Command, applying the configured limit and faults."""

    def __init__(self, config: ServerConfig) -> None:
        faults = config.faults
        self.faults = faults
        self.limit = config.max_length
        if "limit-low" in faults:
            self.limit -= 1
        if "limit-high" in faults:
            self.limit += 1
        if "length-error-text" in faults:
            self.too_long = f"Message exceeds {config.max_length} chars."
        else:
            self.too_long = TOO_LONG.format(max=config.max_length)
        self.not_found = "Message not found" if "not-found-typo" in faults else NOT_FOUND

    def parse(self, data: str | bytes) -> Command:
        """Parse a frame; never raises."""
        faults = self.faults
        if not isinstance(data, str):
            return Reject(BINARY, CLOSE_UNSUPPORTED if "binary-close" in faults else None)
        try:
            frame = json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            return self._malformed(INVALID_JSON)
        if not isinstance(frame, dict):
            return self._malformed(NOT_OBJECT)
        if "require-timestamp" in faults and "timestamp" not in frame:
            return Reject(NO_TIMESTAMP)
        # A frame without ``type`` is treated as ``text`` (ROBUST-009).
        kind = frame.get("type", "text")
        if kind == "text":
            return self._body(frame)
        if kind == "update":
            message_id = self._message_id(frame)
            if message_id is None:
                return Reject(self.not_found)
            body = self._body(frame)
            return body if isinstance(body, Reject) else Edit(message_id, body.body)
        if kind == "delete":
            message_id = self._message_id(frame)
            return Reject(self.not_found) if message_id is None else Delete(message_id)
        if "unknown-type-broadcast" in faults:
            return self._body(frame)
        return Reject(UNKNOWN_TYPE)

    def _malformed(self, error: str) -> Reject:
        code = CLOSE_UNSUPPORTED if "close-on-malformed" in self.faults else None
        return Reject(error, code)

    def _body(self, frame: dict[str, Any]) -> SendText | Reject:
        """Validate ``message``. Seed: "Message exceeds {max} characters."; characters are
        Unicode code points (SEND-009), i.e. ``len()`` of a Python str."""
        body = frame.get("message")
        if not isinstance(body, str):
            if "nonstring-body" in self.faults:
                return SendText(body)
            return Reject(NOT_STRING)
        if not body:
            return Reject(EMPTY)
        if not body.isascii() and not _encodable(body):
            return Reject(NOT_TEXT)
        length = len(body)
        if "limit-utf16" in self.faults:
            length = len(body.encode("utf-16-le")) // 2
        if length > self.limit:
            return Reject(self.too_long)
        if "escape-body" in self.faults:
            body = html.escape(body, quote=False)
        return SendText(body)

    def _message_id(self, frame: dict[str, Any]) -> str | None:
        """The canonical form of ``messageId``, or None when it is not a UUID string.

        Seed: ``messageId`` (UUID string); anything else names no message.
        """
        value = frame.get("messageId")
        if not isinstance(value, str):
            return None
        if "id-not-uuid" in self.faults:
            return value if value.isascii() else None
        try:
            return str(uuid.UUID(value))
        except ValueError:
            return None


def _encodable(text: str) -> bool:
    """Whether ``text`` is UTF-8 encodable (JSON can carry lone surrogates; UTF-8 cannot)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


# -- server frames ----------------------------------------------------------------------------

_FORMATS: dict[str, str] = {
    "z-micro": "%Y-%m-%dT%H:%M:%S.%fZ",
    "z-seconds": "%Y-%m-%dT%H:%M:%SZ",
    "offset-micro": "%Y-%m-%dT%H:%M:%S.%f+00:00",
    "offset-seconds": "%Y-%m-%dT%H:%M:%S+00:00",
}
STORAGE_FORMAT: Final = _FORMATS["z-micro"]


def format_timestamp(moment: datetime, style: TimestampStyle) -> str:
    """RFC 3339 in UTC. Seed, "New Message Event": ``"created": "2024-01-01T12:00:00.000000Z"``."""
    if style == "z-milli":
        return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"
    return moment.strftime(_FORMATS[style])


def parse_stored(text: str) -> datetime:
    """Read back a timestamp written with STORAGE_FORMAT."""
    return datetime.strptime(text, STORAGE_FORMAT).replace(tzinfo=UTC)


def encode(payload: dict[str, Any]) -> str:
    """One JSON encoding per frame; non-ASCII text is sent as is."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def error_frame(error: str, faults: frozenset[str]) -> str:
    """Seed, "Error Handling": ``{"error": "Message exceeds 500 characters."}``."""
    if "error-not-json" in faults:
        return f"Error: {error}"
    return encode({"error": error})
