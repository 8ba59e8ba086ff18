"""What the preflight proved missing, and the breaker: judged without I/O.

Before the suites, a preflight tries the basics every other test stands on (a participant is
accepted; the sender receives its own event; another connection of the room receives it; an edit
of an unknown message is answered with an error; a second connection of an account receives
events too; with ``nodes``, a connection on another node receives it). A basic that fails
fails its requirement once, and every later wait that stands on it ends at once: in the test of
that requirement with the preflight's failure, in every other test as "not tested: blocked by
SEND-002 (...)". Never after a timeout each.

The breaker: when a test times out and the server then no longer answers a fresh connection at
all, the rest of the run is not tested, with one line saying why (the run is INCOMPLETE).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from harness.core.failures import ConformanceFailure, NotTested
from harness.core.results import TestRecord

#: Under a server's rate limit, each connection sends at most this share of it: a window that
#: is not quite one second, or a clock that drifts, never sees one frame too many.
PACE = 0.8

#: The basics, in the order the preflight tries them: requirement -> what its failure means.
BASICS: Mapping[str, str] = MappingProxyType(
    {
        "CONN-001": "a participant's connection is not accepted",
        "SEND-002": "the sender never receives its own event",
        "SEND-003": "another connection of the room never receives the event",
        "EDIT-007": "an edit of an unknown message gets no error frame",
        "BCAST-001": "a second connection of an account never receives the event",
        "NODE-001": "an event never reaches a connection on another node",
    }
)


@dataclass(frozen=True)
class Finding:
    """A basic proved failing: the failure, who found it, and the exchange behind it."""

    failure: ConformanceFailure
    found: str  # "the preflight, before the suites", "a probe after <test> timed out"
    transcript: list[dict[str, Any]] = field(default_factory=list)
    traffic: dict[str, Any] = field(default_factory=dict)


@dataclass
class Gate:
    """The preflight's findings and the breaker, shared by every test of a run."""

    failed: dict[str, Finding] = field(default_factory=dict)
    #: Whether the preflight saw a sender receive its own event: then a sentinel sent after a
    #: frame proves silence (:meth:`harness.server.conn.Conn.expect_error`).
    echo_seen: bool = False
    #: False once the preflight saw an error frame reach another connection of the room: then
    #: an error cannot be told from another test's, and tests must not overlap.
    errors_private: bool = True
    #: False once the preflight saw a second connection of an account get nothing (BCAST-001):
    #: tests overlapping would open such connections for one another, and starve.
    accounts_shared: bool = True
    #: Seconds the preflight's message took to come back to its sender and another connection:
    #: how long a wait goes before a sentinel proves silence (``Chat.sentinel_grace``).
    round_trip_s: float = 0.0
    #: The frames a second the preflight saw the server take on one connection before it
    #: answered the rest with an error (an open rate limit), and that error's text; None: none
    #: seen. Every connection then paces itself under it (``Chat.send_interval``).
    rate_limit: float | None = None
    rate_limit_error: str | None = None
    #: The frames a second the preflight saw the server serve on one connection, sent at once
    #: and each answered by its event (its pace); None: not measured. The floods are sized by
    #: it (``load.time_budget``).
    pace: float | None = None
    #: When a probe last found the server answering (monotonic; 0: never).
    alive_at: float = 0.0
    #: The breaker's line once tripped: every test from then on is not tested with it.
    tripped: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def prove(self, finding: Finding) -> None:
        """Record a basic proved failing (the first finding of a requirement stands)."""
        with self._lock:
            self.failed.setdefault(finding.failure.requirement, finding)

    def blocked_by(self, requirement: str) -> str | None:
        """ "SEND-002 (the sender never receives its own event)" when that basic failed."""
        if requirement not in self.failed:
            return None
        return f"{requirement} ({BASICS.get(requirement, 'failed in the preflight')})"

    def check(self, requirement: str, own: Iterable[str]) -> None:
        """Before a wait attributed to ``requirement`` (in a test of ``own`` requirements):
        raise at once if the preflight proved it fails."""
        finding = self.failed.get(requirement)
        if finding is None:
            return
        if requirement in set(own):
            failure = finding.failure
            again = type(failure).__new__(type(failure))
            ConformanceFailure.__init__(
                again, requirement, failure.expected, f"{failure.actual} (found by {finding.found})"
            )
            again.from_gate = True
            raise again
        raise NotTested(f"blocked by {self.blocked_by(requirement)}")

    def check_breaker(self) -> None:
        if self.tripped is not None:
            raise NotTested(self.tripped)

    def trip(self, line: str) -> bool:
        """Trip the breaker (the first line wins); whether this call tripped it."""
        with self._lock:
            if self.tripped is not None:
                return False
            self.tripped = line
            return True

    def records(self) -> list[TestRecord]:
        """One failed test record per basic that failed, so that its requirement fails in the
        results even when no test of it was selected (the tests it blocked are not tested)."""
        return [
            TestRecord(
                nodeid=f"preflight::{rid}",
                requirements=(rid,),
                outcome="failed",
                failed_requirements=(rid,),
                kind=finding.failure.kind,
                expected=finding.failure.expected,
                actual=finding.failure.actual,
                message=f"found by {finding.found}",
                transcript=finding.transcript,
                traffic=finding.traffic,
            )
            for rid, finding in self.failed.items()
        ]

    def rate_warning(self) -> str | None:
        """What the run says of the rate limit the preflight found, whatever its verdict (None:
        it found none): every connection paced itself under it."""
        if self.rate_limit is None:
            return None
        return (
            f"the server rate-limits one connection at about {self.rate_limit:g} frames a "
            f"second ({self.rate_limit_error!r}): every connection of the harness sent at most "
            f"{PACE:g} of it, and what cannot be tested under it is not tested"
        )

    def rate_line(self) -> str | None:
        """The progress line of the rate limit the preflight found (None: none)."""
        warning = self.rate_warning()
        return None if warning is None else f"preflight: {warning}"

    def summary(self) -> str:
        """One line for the run's output: what the preflight found."""
        if not self.failed:
            return "preflight: the basics hold (connect, own event, fan-out, error frame)"
        return "preflight: " + "; ".join(
            f"{rid} failed - {BASICS.get(rid, '')}" for rid in self.failed
        )
