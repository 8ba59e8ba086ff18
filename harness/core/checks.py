"""The checks, as plain objects fed with frames: no sockets, no clock, no event loop.

Two kinds:

- :class:`FrameJudge` takes one frame the server sent (already parsed) and says what it
  breaks on its own: not JSON (EVT-001), an unknown ``chat_message`` action (EVT-006), a
  schema violation (EVT-002..005, plus the more specific requirement of the field it is at),
  and what is merely worth noting (extra fields, unrecognised frames: EVT-007).
- :class:`Expect` is one wait on one connection: fed frame by frame, each step is a
  :class:`Hit` (the frame looked for), a :class:`Fail` (a frame the check forbids, or a frame
  that broke its schema), or :data:`KEEP` (not this one: it stays buffered for later waits).
  Only a frame the test can attribute to itself (``owns``, :mod:`harness.core.attribution`)
  fails a check; one it cannot is kept, and what it would have broken becomes a note (an
  observation): strangers' traffic never changes a verdict.

The session (:mod:`harness.core.session`) feeds frames here; the spec's facts come in as
:class:`Rules` (read from the catalogue and the schemas by :mod:`harness.spec`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from harness.core.failures import ConformanceFailure, ConformanceTimeout
from harness.core.frames import Frame, Predicate, show

_REQUIRED = re.compile(r"^'([^']+)' is a required property")
#: Schema verdicts remembered by one judge (a server sends one event's text to every connection
#: of the room, and a run has many connections in one room: validating it once is enough).
_VERDICTS_MAX = 4096


class Violation(Protocol):
    """One way a frame fails its schema (:class:`harness.schemas.Violation`)."""

    @property
    def pointer(self) -> str: ...
    @property
    def message(self) -> str: ...


class Rules(Protocol):
    """What judging a server frame needs of the spec (:class:`harness.spec.SchemaRules` reads
    it from the catalogue and the schemas): the event actions, which schema a frame is meant to
    follow and what it breaks there, which requirement each schema and field stands for, the
    documented fields of each event."""

    @property
    def event_actions(self) -> Sequence[str]: ...
    @property
    def schema_requirement(self) -> Mapping[str, str]: ...
    @property
    def field_requirement(self) -> Mapping[tuple[str, str], str]: ...
    @property
    def documented(self) -> Mapping[str, frozenset[str]]: ...

    def classify(self, frame: Frame) -> str | None: ...

    def validate(self, name: str, frame: Frame) -> Sequence[Violation]: ...


# --- one server frame on its own --------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    """What one server frame says on its own: the parsed frame, the failure it earns (if any)
    and observations (requirement id, text) worth reporting."""

    frame: Frame
    violation: ConformanceFailure | None = None
    observations: tuple[tuple[str, str], ...] = ()
    #: Undocumented fields of an event (reported once per test, see ``seen_extra``).
    extra_fields: frozenset[str] = frozenset()


def parse_server_frame(data: str | bytes) -> tuple[Frame, ConformanceFailure | None]:
    """A text frame parsed as JSON; a frame that is not a JSON object breaks EVT-001.
    Binary frames are returned as they are (the checks that care look at them)."""
    if isinstance(data, bytes):
        return data, None
    try:
        frame = json.loads(data)
    except ValueError:
        frame = None
    if not isinstance(frame, dict):
        return data, ConformanceFailure("EVT-001", "a JSON object", f"text frame {show(data)}")
    return frame, None


class FrameJudge:
    """Judges server frames by ``rules``, remembering the schema verdicts of the last
    :data:`_VERDICTS_MAX` frame texts (its own state: one judge per process is the spec's)."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self._verdicts: dict[tuple[str, str], Sequence[Violation]] = {}

    def _validate(self, name: str, frame: Frame, text: str | bytes) -> Sequence[Violation]:
        if not isinstance(text, str):
            return self.rules.validate(name, frame)
        key = (name, text)
        found = self._verdicts.get(key)
        if found is None:
            found = self.rules.validate(name, frame)
            if len(self._verdicts) >= _VERDICTS_MAX:
                self._verdicts.clear()
            self._verdicts[key] = found
        return found

    def __call__(self, data: str | bytes, seen_extra: Iterable[str] = ()) -> Judgement:
        """Parse and judge one frame as the server sent it. ``seen_extra``: extra event fields
        already reported in this test (each is reported once)."""
        rules = self.rules
        frame, violation = parse_server_frame(data)
        if violation is not None or not isinstance(frame, dict):
            return Judgement(frame, violation)
        name = rules.classify(frame)
        if name is None:
            if frame.get("type") == "chat_message":
                actions = rules.event_actions
                failure = ConformanceFailure(
                    "EVT-006",
                    f"action {', '.join(actions[:-1])} or {actions[-1]}",
                    f"frame {show(frame)}",
                )
                return Judgement(frame, failure)
            return Judgement(frame, None, (("EVT-007", f"unrecognised frame: {show(frame, 120)}"),))
        violations = self._validate(name, frame, data)
        if violations:
            also: list[str] = []
            for v in violations:
                missing = _REQUIRED.match(v.message)
                key = missing.group(1) if missing else v.pointer.strip("/").split("/")[0]
                specific = rules.field_requirement.get((name, key))
                if specific and specific not in also:
                    also.append(specific)
            failure = ConformanceFailure(
                rules.schema_requirement[name],
                f"a frame valid against schemas/{name}.json",
                "; ".join(str(v) for v in violations[:3]) + f" in {show(frame)}",
                also=tuple(also),
            )
            return Judgement(frame, failure)
        action = frame.get("action")
        documented = rules.documented
        if isinstance(action, str) and action in documented:
            extra = set(frame) - documented[action]
            if extra - set(seen_extra):
                text = f"{action} events carry extra fields: {', '.join(sorted(extra))}"
                return Judgement(frame, None, (("EVT-007", text),), frozenset(extra))
        return Judgement(frame, None)


#: How a session judges a frame on its own (:class:`FrameJudge`, or a test's stand-in).
Judge = Callable[[str | bytes, Iterable[str]], Judgement]


# --- one wait on one connection ---------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """The frame the wait looked for."""

    frame: Frame


@dataclass(frozen=True)
class Keep:
    """Not this frame: it stays buffered for later waits."""


@dataclass(frozen=True)
class Fail:
    """The wait ends with this failure."""

    failure: ConformanceFailure


KEEP = Keep()
Step = Hit | Keep | Fail

#: How a note about a frame the test cannot attribute to itself begins.
FOREIGN = "a frame this test cannot attribute to its own frames (another client's traffic?)"


@dataclass
class Expect:
    """One wait on connection ``conn``: the first frame matching ``match``.

    A frame matching ``forbidden`` before it fails ``forbidden_requirement`` (default: the
    wait's own ``requirement``); forbidden frames are judged before their schema, so that a
    broadcast that should not exist fails its own requirement first. With ``match`` None the
    wait only watches (it never hits): a drain until close.

    ``owns``: which frames the test can attribute to itself. A frame it does not own neither
    fails the wait as forbidden nor by its schema: what it would have broken goes to ``notes``
    (requirement, text) for the report. It may still be the frame looked for.
    """

    match: Predicate | None
    requirement: str
    expected: str
    conn: str = "conn"
    forbidden: Predicate | None = None
    forbidden_requirement: str | None = None
    owns: Predicate | None = None
    notes: list[tuple[str, str]] = field(default_factory=list)

    def feed(self, frame: Frame, violation: ConformanceFailure | None = None) -> Step:
        """Judge the next frame; ``violation`` is what it broke on its own (if anything)."""
        if self.owns is not None and not self.owns(frame):
            return self._foreign(frame, violation)
        if self.forbidden is not None and self.forbidden(frame):
            return Fail(
                ConformanceFailure(
                    self.forbidden_requirement or self.requirement,
                    self.expected,
                    f"{self.conn} received {show(frame)}",
                )
            )
        if violation is not None:
            return Fail(violation)
        if self.match is not None and self.match(frame):
            return Hit(frame)
        return KEEP

    def _foreign(self, frame: Frame, violation: ConformanceFailure | None) -> Step:
        """A frame the test cannot attribute to itself: never a failure; noted when it would
        have been one."""
        if self.forbidden is not None and self.forbidden(frame):
            requirement = self.forbidden_requirement or self.requirement
            self.notes.append((requirement, f"{FOREIGN} (not judged): {show(frame, 200)}"))
        elif violation is not None:
            self.notes.append(
                (violation.requirement, f"{FOREIGN} broke it (not judged): {violation.actual}")
            )
        if self.match is not None and self.match(frame):
            return Hit(frame)
        return KEEP

    def scan(self, buffer: Sequence[Frame]) -> tuple[int, Hit | Fail] | None:
        """Frames already buffered (their own violations were reported when they came): the
        index and step of the first that ends the wait, or None."""
        for i, frame in enumerate(buffer):
            step = self.feed(frame)
            if not isinstance(step, Keep):
                return i, step
        return None

    def closed(self, how: str) -> ConformanceFailure:
        """The connection closed before the frame came."""
        return ConformanceFailure(
            self.requirement, self.expected, f"{self.conn} was closed ({how})"
        )

    def timed_out(self, limit_s: float, buffered: int) -> ConformanceTimeout:
        """No frame ended the wait within ``limit_s``."""
        seen = f"; meanwhile {buffered} other frame(s)" if buffered else ""
        timeout = ConformanceTimeout(
            self.requirement,
            self.expected,
            f"no answer within {limit_s:.1f} s on {self.conn}{seen}",
        )
        timeout.frame_awaited = True
        return timeout
