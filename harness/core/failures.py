"""Structured failures: every failed check names its requirement, what was expected and what came.

The core's vocabulary: a check raises :class:`ConformanceFailure` (or returns it, see
:mod:`harness.core.checks`); :class:`ResourceLimit` says that the server made the harness pass
one of its own bounds; :class:`NotTested` says that a check could not run and why;
:class:`HarnessError` stops the run with one line; :class:`UsageError` refuses a user's mistake
(an option, a target file) in one line.
"""

from __future__ import annotations

import unittest


class ConformanceFailure(AssertionError):
    """A requirement is not met. The report shows requirement, statement, expected, actual."""

    kind = "wrong answer"
    #: Raised again from what the preflight or a probe proved (:class:`~harness.core.gate.Gate`),
    #: not found by this test: no probe follows it.
    from_gate = False
    #: The failure is a frame that never came (a timeout, or silence a sentinel proved), as
    #: opposed to a wrong one: other tests in the room could have been too many for the server
    #: (:mod:`harness.server.scheduler` runs the test again alone).
    frame_awaited = False

    def __init__(
        self,
        requirement: str,
        expected: str,
        actual: str,
        also: tuple[str, ...] = (),
        held: tuple[str, ...] = (),
    ) -> None:
        self.requirement = requirement
        self.expected = expected
        self.actual = actual
        #: Requirements of the same test that the test proved met before it failed (one burst
        #: judges LOAD-001 and LOAD-003: the order may fail while nothing was lost).
        self.held = tuple(r for r in held if r != requirement and r not in also)
        #: Further requirements the same observation breaks (e.g. a schema violation at
        #: ``/edited`` of an update event breaks EVT-003 and EDIT-002).
        self.also = tuple(r for r in also if r != requirement)
        #: The catalogue's statement of the requirement, for a person reading the failure:
        #: filled in where the catalogue is (:func:`harness.spec.stated`); the core knows ids.
        self.statement = ""
        super().__init__(requirement, expected, actual)

    def __str__(self) -> str:
        return self.describe()

    @property
    def requirements(self) -> tuple[str, ...]:
        return (self.requirement, *self.also)

    def describe(self) -> str:
        also = f" (also {', '.join(self.also)})" if self.also else ""
        return (
            f"[{self.requirement}]{also} {self.statement}\n"
            f"  expected: {self.expected}\n"
            f"  actual:   {self.actual}"
        )


class ConformanceTimeout(ConformanceFailure):
    """A bounded wait ran out: the server did not answer, as opposed to answering wrongly."""

    kind = "timeout"
    # frame_awaited: the wait was for a frame the server should send (an event, an error), as
    # opposed to a close or a whole test's bound.


class ResourceLimit(Exception):
    """The server made the harness pass one of its own bounds (``[limits]``
    ``max_received_frame_bytes``, ``max_buffered_frames``, ``max_buffered_bytes``): a frame too
    large to accept, or more frames than it keeps for later checks.

    Not a :class:`ConformanceFailure`: no requirement of the catalogue says how large a frame may
    be. It fails the test that received it (every requirement of that test), with what was
    measured, and the connection is closed at once.
    """

    kind = "resource limit"

    def __init__(self, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"expected {expected}; actual {actual}")


class HarnessError(Exception):
    """The harness cannot go on (target unreachable, bad configuration): one clear line."""


class UsageError(Exception):
    """A user's mistake (an option, a target file, a baseline) or a target that cannot be tested:
    one line, exit status 2, never a traceback. Every command raises this one type.

    ``stopped``: the inputs were right but the target cannot be tested (its provision command,
    DNS, TLS, no answer): the run stopped before its tests, and its report files say why, as a
    run that stopped would (:func:`harness.render.files.write_stopped_run`). A plain usage
    mistake leaves the report directory as it was.
    """

    def __init__(self, line: str, *, stopped: bool = False) -> None:
        super().__init__(line)
        self.stopped = stopped


class NotTested(unittest.SkipTest):
    """A check cannot run against this target (the message says why): never a pass, never a
    failure.

    A :class:`unittest.SkipTest`, so that every runner treats it as a skip wherever it is raised:
    hypothesis re-raises skip exceptions at once (no shrinking), and pytest reports them as
    skips (the plugin adds the ``not tested:`` prefix).
    """
