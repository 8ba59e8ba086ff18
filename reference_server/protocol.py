"""Client frames in, server frames out: parsing and encoding, no I/O.

Seed, "Message Types (Client to Server)": ``text`` (message), ``delete`` (messageId), ``update``
(messageId, message); each may carry a ``timestamp``, which the server never requires (protocol
notes: "A client frame's timestamp is informational"). Extra fields are ignored (SEND-011).
Seed, "Common Error Messages": the four error strings are exact (TOO_LONG and NOT_FOUND come
from ``behaviour``, whose decisions word them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from reference_server.behaviour import NOT_FOUND as NOT_FOUND
from reference_server.behaviour import TOO_LONG as TOO_LONG
from reference_server.behaviour import Behaviour
from reference_server.config import ServerConfig, TimestampStyle

# Seed, "Common Error Messages"; TOO_LONG and NOT_FOUND live with the decisions that word them.
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
INTERNAL: Final = "Internal server error."


@dataclass(frozen=True, slots=True)
class SendText:
    """A ``text`` frame: the body to store and broadcast."""

    body: str


@dataclass(frozen=True, slots=True)
class Edit:
    """An ``update`` frame."""

    message_id: str
    body: str


@dataclass(frozen=True, slots=True)
class Delete:
    """A ``delete`` frame."""

    message_id: str


@dataclass(frozen=True, slots=True)
class Reject:
    """A frame answered with an error, and closed with ``close_code`` if the behaviour says so."""

    error: str
    close_code: int | None = None


Command = SendText | Edit | Delete | Reject


class FrameParser:
    """Turns one client frame into a Command, applying the configured limit; ``behaviour``
    (default: the config's) makes the decisions a fault may change."""

    def __init__(self, config: ServerConfig, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour = behaviour or config.behaviour()
        self.limit = behaviour.length_limit(config.max_length)
        self.too_long = behaviour.too_long_error(config.max_length)
        self.not_found = behaviour.not_found_error()

    def parse(self, data: str | bytes) -> Command:
        """Parse a frame; never raises."""
        if not isinstance(data, str):
            return Reject(BINARY, self.behaviour.binary_close_code())
        try:
            frame = json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            return Reject(INVALID_JSON, self.behaviour.malformed_close_code())
        if not isinstance(frame, dict):
            return Reject(NOT_OBJECT, self.behaviour.malformed_close_code())
        error = self.behaviour.frame_error(frame)
        if error is not None:
            return Reject(error)
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
        if self.behaviour.unknown_type_is_text(kind):
            return self._body(frame)
        return Reject(UNKNOWN_TYPE)

    def _body(self, frame: dict[str, Any]) -> SendText | Reject:
        """Validate ``message``. Seed: "Message exceeds {max} characters."; characters are
        Unicode code points (SEND-009)."""
        body = frame.get("message")
        if not isinstance(body, str):
            text = self.behaviour.non_string_body(body)
            return Reject(NOT_STRING) if text is None else SendText(text)
        if not body:
            return Reject(EMPTY)
        if not body.isascii() and not _encodable(body):
            return Reject(NOT_TEXT)
        if self.behaviour.message_length(body) > self.limit:
            return Reject(self.too_long)
        return SendText(self.behaviour.accepted_body(body))

    def _message_id(self, frame: dict[str, Any]) -> str | None:
        """The canonical form of ``messageId``, or None when it names no message.

        Seed: ``messageId`` (UUID string); anything else names no message.
        """
        value = frame.get("messageId")
        if not isinstance(value, str):
            return None
        return self.behaviour.message_id(value)


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
