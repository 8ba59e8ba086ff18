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
    """``{"ts": ..., "level": ..., "logger": ..., [<node>,] "event": ..., <fields>}`` on one
    line; ``node`` names the node of a cluster that wrote it."""

    def __init__(self, node: str | None = None) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        if self.node is not None:
            entry["node"] = self.node
        entry["event"] = record.getMessage()
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


def configure(
    level: int | str = logging.INFO, stream: TextIO | None = None, node: str | None = None
) -> None:
    """Send every log record to ``stream`` (stderr) as JSON lines, redacted, each naming
    ``node`` when given (``serve --node-name``)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(node))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # websockets logs every open and close at INFO; keep those quiet unless debugging.
    logging.getLogger("websockets").setLevel(
        logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    )
