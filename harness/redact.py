"""Secrets never reach a transcript or a report.

Every token the harness mints or reads, and every configured secret, is registered here; every
string that goes into a transcript passes through :func:`redact`. As a second line of defence any
JWT-shaped string is masked even if nobody registered it.
"""

from __future__ import annotations

import re
import threading

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*)+")
_lock = threading.Lock()
_secrets: set[str] = set()
MASK = "<redacted>"


def register(secret: str | None) -> None:
    """Remember ``secret`` so that :func:`redact` masks it (short strings are ignored)."""
    if secret and len(secret) >= 6:
        with _lock:
            _secrets.add(secret)


def registered() -> frozenset[str]:
    with _lock:
        return frozenset(_secrets)


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return _JWT.sub(MASK, text)
