"""Which frames a test may call its own: judged without I/O.

A room is shared. Another pipeline's run, another worker of this run (``-n 2``) or a person in
the staging room all cause events that every connection of the room receives. A check that
forbids a frame ("nothing broadcast after this near miss", "no event with a non-string body")
may fail only on a frame it can *attribute* to its own test; so may a schema violation. A frame
it cannot attribute is reported as an observation, never as a failure.

A test owns a frame when the frame carries:

- one of the test's **tokens**: the 16 hex digits of every nonce it minted (:meth:`nonce`,
  which every body, sentinel and bad frame of the suites carries), or the 16 digits of a
  number it drew to send where a string belongs (:meth:`unique_int`); found anywhere in the
  frame's text, so a renamed field or an HTML-escaped body still counts;
- the **id of a message it created**: learned from the ``new`` event that carried its token
  (:meth:`learn`), so the ``update`` and ``delete`` events of its messages are its own too.

Frames that are not ``chat_message`` events are the server's own words to this connection (an
error frame, a frame that is not JSON, an unrecognised frame) and are always owned: no other
client's action can put them on this connection of a conformant server. Constants (``42``,
``null``, ``true``) cannot be attributed: the suites send values unique to the test wherever
the frame allows it.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

#: A token in a frame's text: 16 hex (or decimal) digits standing alone.
_TOKEN = re.compile(r"(?<![0-9a-f])[0-9a-f]{16}(?![0-9a-f])")
#: Message ids remembered per test (a bound; a test creates a handful).
MAX_IDS = 100_000


def tokens_in(text: str) -> set[str]:
    """The tokens (16 hex digits standing alone) in ``text``."""
    return set(_TOKEN.findall(text))


class Attribution:
    """The tokens and message ids of one test (one ``Chat``)."""

    def __init__(self) -> None:
        self.tokens: set[str] = set()
        self.ids: set[str] = set()

    def nonce(self, label: str = "m") -> str:
        """A fresh text unique to this test: ``label-`` and 16 hex digits (the token)."""
        token = secrets.token_hex(8)
        self.tokens.add(token)
        return f"{label}-{token}"

    def unique_int(self) -> int:
        """A 16-digit integer unique to this test, for a frame that must carry a number where
        a string belongs: its broadcast is attributable, where ``42`` is anybody's."""
        value = 10**15 + secrets.randbelow(9 * 10**15)
        self.tokens.add(str(value))
        return value

    def mentions_own(self, frame: Any) -> bool:
        """Whether one of this test's tokens appears anywhere in the frame's text."""
        if not self.tokens:
            return False
        text = frame if isinstance(frame, str) else _text(frame)
        return any(token in self.tokens for token in tokens_in(text))

    def owns(self, frame: Any) -> bool:
        """Whether ``frame`` (a parsed server frame) can be attributed to this test."""
        if not isinstance(frame, dict) or frame.get("type") != "chat_message":
            return True  # the server's own words to this connection
        message_id = frame.get("id")
        if isinstance(message_id, str) and message_id in self.ids:
            return True
        return self.mentions_own(frame)

    def learn(self, frame: Any) -> None:
        """Remember the id of a message of this test (a ``new`` event carrying its token)."""
        if (
            isinstance(frame, dict)
            and frame.get("type") == "chat_message"
            and frame.get("action") == "new"
            and isinstance(frame.get("id"), str)
            and len(self.ids) < MAX_IDS
            and self.mentions_own(frame)
        ):
            self.ids.add(frame["id"])


def _text(frame: Any) -> str:
    if isinstance(frame, bytes):
        return frame.decode("utf-8", "replace")
    try:
        return json.dumps(frame, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(frame)
