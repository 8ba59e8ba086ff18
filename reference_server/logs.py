"""Structured logging: one JSON object per line on stderr, tokens never written.

Call ``log(logger, level, event, **fields)``; ``configure()`` installs the JSON formatter and a
filter that redacts anything shaped like a JWT, whatever logger it comes from (the websockets
library logs request headers at DEBUG level).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

_JWT = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
_TOKEN_PARAM = re.compile(r"(?i)((?:token|jwt|authorization)[=:]\s*(?:bearer\s+)?)[^\s&;,\"']+")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """Replace JWT-shaped strings and ``token=...`` values with ``[redacted]``."""
    return _TOKEN_PARAM.sub(r"\1" + REDACTED, _JWT.sub(REDACTED, text))


def log(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log ``event`` with key/value ``fields`` (skipped cheaply when the level is off)."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": fields})


class JsonFormatter(logging.Formatter):
    """``{"ts": ..., "level": ..., "logger": ..., "event": ..., <fields>}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


def configure(level: int | str = logging.INFO, stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (stderr) as JSON lines, redacted."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # websockets logs every open and close at INFO; keep those quiet unless debugging.
    logging.getLogger("websockets").setLevel(
        logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    )
