"""Room isolation for every frame, judged without I/O (ISO-001, ISO-006, ISO-007).

The ISO tests prove with sentinels that a room's *events* stay in the room. A server may also
send frames the seed does not name (a ``history`` frame of recent messages on connect, a
``presence`` frame): allowed, and a place where another room's content can leak as well. So
every frame a connection of a test receives, whatever its type, is searched for the content the
test created in *another* room: the tokens of the texts and edits it sent there
(:mod:`harness.core.attribution`) and the ids of the messages it created there.

A room is a *place*: the host's username and the slug, as the endpoint names it. Content a
connection sent itself is never a leak when it comes back to it (an error that quotes the id it
named, say). Which requirement a leak breaks:

- content of a room of another host (the twin room, same slug): ISO-007;
- the text of a message of another room of the same host: ISO-001;
- only an edit's text, or a message id, of another room: ISO-006 (its edits and deletes).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.core.attribution import tokens_in
from harness.core.failures import ConformanceFailure
from harness.core.frames import show

Place = tuple[str, str]
"""A room as its endpoint names it: (the host's username, the room's slug)."""

#: Tokens and message ids remembered per test, at most (a test makes a handful; a property
#: test a few hundred).
MAX_ENTRIES = 100_000


def where(place: Place) -> str:
    host, slug = place
    return f"{host}/{slug}"


class Ledger:
    """Which room each token and message id of one test belongs to."""

    def __init__(self) -> None:
        #: token -> (its room, the kind of frame that first carried it: text, update, ...);
        #: None for a token the test sent to two rooms (it belongs to neither)
        self.tokens: dict[str, tuple[Place, str] | None] = {}
        #: room -> the ids of the test's messages created there
        self.ids: dict[Place, set[str]] = {}
        #: The rooms the test sent content to: with one, no frame can carry another's.
        self.places: set[Place] = set()
        self._count = 0

    def sent(self, place: Place, text: str, kind: str) -> set[str]:
        """A connection to ``place`` sent ``text`` (a frame of ``kind``): its tokens belong to
        that room; one sent to two rooms belongs to neither. Returns the tokens."""
        found = tokens_in(text)
        if found:
            self.places.add(place)
        for token in found:
            if token not in self.tokens:
                if self._count < MAX_ENTRIES:
                    self.tokens[token] = (place, kind)
                    self._count += 1
            else:
                entry = self.tokens[token]
                if entry is not None and entry[0] != place:
                    self.tokens[token] = None
        return found

    def learn(self, frame: Any) -> None:
        """A ``new`` event carrying a token of the test: its id belongs to that token's room
        (whichever connection received it)."""
        if not (
            isinstance(frame, dict)
            and frame.get("type") == "chat_message"
            and frame.get("action") == "new"
            and isinstance(frame.get("id"), str)
            and isinstance(frame.get("body"), str)
        ):
            return
        for token in tokens_in(frame["body"]):
            entry = self.tokens.get(token)
            if entry is not None and entry[1] == "text" and self._count < MAX_ENTRIES:
                ids = self.ids.setdefault(entry[0], set())
                if frame["id"] not in ids:
                    ids.add(frame["id"])
                    self._count += 1
                return

    def leak(
        self,
        place: Place,
        text: str,
        frame: Any,
        conn: str,
        own_tokens: Iterable[str] = (),
        own_ids: Iterable[str] = (),
    ) -> ConformanceFailure | None:
        """The failure of a frame (its ``text``) received on connection ``conn`` to ``place``
        that carries content the test created in another room; None when it carries none.
        ``own_tokens`` / ``own_ids``: what that connection sent itself."""
        if self.places <= {place}:
            return None  # the test created content in this room only (or none yet)
        own = set(own_tokens)
        for token in tokens_in(text):
            entry = self.tokens.get(token)
            if entry is None or token in own or entry[0] == place:
                continue
            origin, kind = entry
            if origin[0] != place[0]:
                requirement = "ISO-007"
            else:
                requirement = "ISO-001" if kind == "text" else "ISO-006"
            what = "the text of a message" if kind == "text" else f"the text of an {kind}"
            return _failure(requirement, place, origin, conn, frame, f"{what} ({token})")
        mine = set(own_ids)
        for origin, ids in self.ids.items():
            if origin == place:
                continue
            for message_id in ids:
                if message_id in text and message_id not in mine:
                    requirement = "ISO-007" if origin[0] != place[0] else "ISO-006"
                    what = f"the id of a message ({message_id})"
                    return _failure(requirement, place, origin, conn, frame, what)
        return None


def _failure(
    requirement: str, place: Place, origin: Place, conn: str, frame: Any, what: str
) -> ConformanceFailure:
    kind = frame.get("type") if isinstance(frame, dict) else None
    frame_kind = f"a {kind!s} frame" if isinstance(kind, str) else "a frame"
    return ConformanceFailure(
        requirement,
        f"nothing of room {where(origin)} on {conn} (a connection to {where(place)})",
        f"{conn} received {frame_kind} carrying {what} of room {where(origin)}: {show(frame)}",
    )


__all__ = ["Ledger", "Place", "where"]
