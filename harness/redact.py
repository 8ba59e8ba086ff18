"""Secrets never reach a transcript or a report.

Every token the harness mints or reads, and every configured secret, is registered here; every
string that goes into a transcript passes through :func:`redact`. As a second line of defence any
JWT-shaped string is masked even if nobody registered it.
"""

from __future__ import annotations

import base64
import re
import threading

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*)+")
_lock = threading.Lock()
_secrets: set[str] = set()
MASK = "<redacted>"
#: One pattern for every registered secret (longest first), rebuilt when one is added: a run
#: registers hundreds of tokens and logs thousands of frames.
_pattern: re.Pattern[str] | None = None


def register(secret: str | None) -> None:
    """Remember ``secret`` so that :func:`redact` masks it (short strings are ignored)."""
    global _pattern
    if secret and len(secret) >= 6:
        with _lock:
            if secret not in _secrets:
                _secrets.add(secret)
                if not _JWT.fullmatch(secret):  # a token: the JWT pattern masks it already
                    _pattern = None


def register_header(value: str | None) -> None:
    """Register a header value (``[headers]``) and the credentials inside it: the part after an
    auth scheme (``Basic ...``, ``ApiKey ...``) and, for Basic, the decoded ``user:password``
    and the password."""
    if not value:
        return
    register(value)
    scheme, _, credentials = value.strip().partition(" ")
    credentials = credentials.strip()
    if not credentials:
        return
    register(credentials)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return
        register(decoded)
        register(decoded.partition(":")[2])


def registered() -> frozenset[str]:
    with _lock:
        return frozenset(_secrets)


def _secrets_pattern() -> re.Pattern[str] | None:
    global _pattern
    with _lock:
        if _pattern is None:
            # A JWT-shaped secret is masked by the JWT pattern wherever it appears (it is made of
            # that pattern's characters only), so only the others need a pattern of their own,
            # and minting a token does not make this be built again.
            ordered = sorted((s for s in _secrets if not _JWT.fullmatch(s)), key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(s) for s in ordered) or "(?!)")
        return _pattern


def redact(text: str) -> str:
    pattern = _secrets_pattern()
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _JWT.sub(MASK, text)
