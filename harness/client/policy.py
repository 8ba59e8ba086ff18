"""Pure checks of a client's reconnection behaviour: recorded attempts in, findings out. No I/O.

The seed ("Reconnection Logic", "Configuration Constants") is read as follows, and this module is
the one place that turns it into expectations:

- A *loss* is the server ending an open connection without a close frame (the harness aborts the
  TCP connection). A *failure* is a refused handshake (the harness answers HTTP 503). Both are
  *triggers*: the seed's flow goes ``Connection Lost -> Check -> Increment -> Delay`` and
  ``Failure -> Check``.
- The counter ``n`` starts at 0; each trigger increments it (while ``n < MAX``) and schedules
  exactly one attempt ``RECONNECT_DELAY x n`` later. **The reference point of attempt n is the
  trigger just before it**: the loss for ``n = 1``, the failure of attempt ``n - 1`` otherwise
  ("the delay is scheduled after the failure is observed"). So, counted from the loss, attempt n
  starts ``base x n(n+1)/2`` later plus the handshake times (1, 3, 6, 10, 15 x base).
  The harness timestamps a trigger when it aborts the connection or sends the 503; the client
  observes it a little later (loopback latency and its own scheduling): the tolerance covers it.
- An attempt *matches* when it arrives within ``expected +- tolerance``.
- A connection that opens resets the counter to 0 (so the next loss expects ``1 x base`` again).
- When ``n`` has reached ``MAX`` the client gives up: no attempt follows the last failure. The
  check needs the harness to have watched at least ``base x (MAX + 1) + tolerance`` after it
  (when a non-giving-up client would try again), or the client process to have exited.
- A clean close (the server sends close code 1000) is not a trigger: no attempt may follow it
  (checked for ``base + tolerance`` at least, when a retrying client would come back).

Attribution (the catalogue's ``scope = "client"`` requirements): no attempt after a loss fails
CLIENT-001; a mistimed attempt fails CLIENT-002 in the first loss sequence and CLIENT-005 in any
later one (the delays after a reopen must start again at 1 x base); a second attempt answering
one trigger fails CLIENT-003; a missing attempt after a failure (gave up early) or any attempt
after the last allowed failure fails CLIENT-004; an attempt after a clean close fails CLIENT-006;
a path other than the room's fails CLIENT-007; a frame that does not validate fails CLIENT-008.

The checks return :class:`harness.core.results.Finding` objects (``attempt``: the attempt they
are about); :func:`harness.core.results.fold` turns them into verdicts, as in every mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from harness.core.results import Finding

__all__ = [
    "AttemptObs",
    "End",
    "ExpectedAttempt",
    "FrameObs",
    "Outcome",
    "PolicyParams",
    "QuietWindow",
    "TimelineAnalysis",
    "Trigger",
    "analyse_timeline",
    "check_frames",
    "check_paths",
    "default_tolerance_ms",
    "normalise_path",
    "triggers_of",
]

Outcome = Literal["accepted", "refused"]
End = Literal["refused", "dropped", "closed", "held", "client-closed", "open"]
TriggerKind = Literal["loss", "failure", "clean-close"]


def default_tolerance_ms(base_ms: float) -> float:
    """The default tolerance: the larger of 250 ms and 20 % of the base delay."""
    return max(250.0, 0.2 * base_ms)


@dataclass(frozen=True)
class PolicyParams:
    """The policy the client is held to."""

    base_ms: float
    tolerance_ms: float
    max_attempts: int = 5


@dataclass(frozen=True)
class AttemptObs:
    """One connection attempt as the harness saw it (times in ms from the scenario start).

    ``outcome``: ``accepted`` (handshake completed) or ``refused`` (any other answer).
    ``end``: how it ended: ``refused`` (at the handshake), ``dropped`` (the harness aborted the
    TCP connection: a loss), ``closed`` (the harness closed with 1000), ``held`` (kept open to
    the end of the scenario), ``client-closed`` (the client ended it), ``open`` (still open).
    """

    index: int
    at_ms: float
    path: str
    outcome: Outcome
    end: End
    end_ms: float | None = None


@dataclass(frozen=True)
class FrameObs:
    """One frame the client sent, with the schema it was checked against and the violations."""

    attempt: int
    at_ms: float
    after_reconnect: bool
    schema: str | None
    violations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Trigger:
    """A server-side event the client must react to (or must not)."""

    at_ms: float
    kind: TriggerKind
    attempt: int


@dataclass(frozen=True)
class ExpectedAttempt:
    """Where the policy puts attempt ``n`` after a trigger, and what was observed."""

    n: int
    reference_ms: float
    reference_kind: TriggerKind
    expected_ms: float
    low_ms: float
    high_ms: float
    requirement: str
    observed: int | None = None
    observed_ms: float | None = None

    @property
    def matched(self) -> bool:
        return self.observed_ms is not None and self.low_ms <= self.observed_ms <= self.high_ms


@dataclass(frozen=True)
class QuietWindow:
    """A period in which no attempt is allowed (after a clean close, after giving up)."""

    start_ms: float
    required_ms: float
    observed_until_ms: float
    requirement: str
    reason: str
    violators: tuple[int, ...] = ()


@dataclass(frozen=True)
class TimelineAnalysis:
    triggers: tuple[Trigger, ...]
    expected: tuple[ExpectedAttempt, ...]
    quiet: tuple[QuietWindow, ...]
    findings: tuple[Finding, ...]


def _fmt(ms: float) -> str:
    return f"{ms:.0f} ms"


def triggers_of(attempts: Iterable[AttemptObs]) -> list[Trigger]:
    """The losses, failures and clean closes the harness caused, in time order."""
    found: list[Trigger] = []
    for attempt in attempts:
        if attempt.end_ms is None:
            continue
        if attempt.end == "refused":
            found.append(Trigger(attempt.end_ms, "failure", attempt.index))
        elif attempt.end == "dropped":
            found.append(Trigger(attempt.end_ms, "loss", attempt.index))
        elif attempt.end == "closed":
            found.append(Trigger(attempt.end_ms, "clean-close", attempt.index))
    found.sort(key=lambda t: (t.at_ms, t.attempt))
    return found


def analyse_timeline(
    attempts: Sequence[AttemptObs],
    params: PolicyParams,
    observed_until_ms: float,
    client_exited_ms: float | None = None,
) -> TimelineAnalysis:
    """Hold the recorded attempts to the seed's policy (see the module docstring).

    ``observed_until_ms`` is when the harness stopped watching; ``client_exited_ms`` when the
    client process exited, if it did (no attempt can follow, so quiet periods are complete).
    """
    ordered = sorted(attempts, key=lambda a: (a.at_ms, a.index))
    triggers = triggers_of(ordered)
    base, tol = params.base_ms, params.tolerance_ms
    findings: list[Finding] = []
    expected: list[ExpectedAttempt] = []
    quiet: list[QuietWindow] = []

    def watched_until(moment: float) -> bool:
        return observed_until_ms >= moment or (
            client_exited_ms is not None and client_exited_ms <= observed_until_ms
        )

    def quiet_after(
        trig: Trigger,
        answers: list[AttemptObs],
        requirement: str,
        required: float,
        label: str,
        after: str,
        failing: Callable[[AttemptObs], str],
    ) -> None:
        """No attempt may answer ``trig`` within ``required`` ms: a failure per attempt,
        else a pass once the window was watched to its end (else not tested)."""
        quiet.append(
            QuietWindow(
                trig.at_ms,
                required,
                observed_until_ms,
                requirement,
                label,
                tuple(a.index for a in answers),
            )
        )
        for a in answers:
            findings.append(
                Finding(
                    requirement,
                    "failed",
                    f"attempt #{a.index} at {_fmt(a.at_ms)} {failing(a)}",
                    attempt=a.index,
                )
            )
        if answers:
            return
        if watched_until(trig.at_ms + required):
            evidence = _quiet_evidence(trig.at_ms, observed_until_ms, client_exited_ms)
            findings.append(Finding(requirement, "passed", f"no attempt after {after} {evidence}"))
        else:
            findings.append(
                Finding(
                    requirement,
                    "not_tested",
                    f"watched only {_fmt(observed_until_ms - trig.at_ms)} after {after}; "
                    f"{_fmt(required)} needed",
                )
            )

    counter = 0
    chain = -1
    for i, trig in enumerate(triggers):
        window_end = triggers[i + 1].at_ms if i + 1 < len(triggers) else observed_until_ms
        answers = [
            a for a in ordered if trig.at_ms < a.at_ms <= window_end and a.index != trig.attempt
        ]

        if trig.kind == "clean-close":
            counter = 0
            closed_at = trig.at_ms
            quiet_after(
                trig,
                answers,
                "CLIENT-006",
                base + tol,
                "clean close (1000): no reconnection",
                f"the clean close at {_fmt(closed_at)}",
                lambda a, at=closed_at: (  # type: ignore[misc]
                    f"{_fmt(a.at_ms - at)} after the clean close (1000) at {_fmt(at)}"
                ),
            )
            continue

        if trig.kind == "loss":
            chain += 1
            counter = 0  # the connection had opened: the seed resets the counter on open
        what = "loss" if trig.kind == "loss" else f"failure of attempt #{trig.attempt}"
        if counter >= params.max_attempts:
            # Seed: reconnectAttempts < MAX_RECONNECT_ATTEMPTS is false -> Show Connection Failed.
            n = params.max_attempts
            quiet_after(
                trig,
                answers,
                "CLIENT-004",
                base * (n + 1) + tol,
                f"gave up after {n} failed attempts: no further attempt",
                f"the {n}th failure",
                lambda a, n=n: f"follows the {n}th failed attempt: the client did not give up",  # type: ignore[misc]
            )
            continue

        counter += 1
        timing_req = "CLIENT-002" if chain <= 0 else "CLIENT-005"
        exp_ms = trig.at_ms + base * counter
        slot = ExpectedAttempt(
            n=counter,
            reference_ms=trig.at_ms,
            reference_kind=trig.kind,
            expected_ms=exp_ms,
            low_ms=exp_ms - tol,
            high_ms=exp_ms + tol,
            requirement=timing_req,
        )
        if not answers:
            expected.append(slot)
            if not watched_until(slot.high_ms):
                findings.append(
                    Finding(
                        timing_req,
                        "not_tested",
                        f"attempt {counter} expected at {_fmt(exp_ms)}: the observation "
                        f"ended at {_fmt(observed_until_ms)}",
                    )
                )
            elif trig.kind == "loss":
                findings.append(
                    Finding(
                        "CLIENT-001",
                        "failed",
                        f"no reconnection after the unclean loss at {_fmt(trig.at_ms)} "
                        f"(expected at {_fmt(exp_ms)}; watched until {_fmt(observed_until_ms)}"
                        f"{_exit_note(client_exited_ms)})",
                    )
                )
            else:
                findings.append(
                    Finding(
                        "CLIENT-004",
                        "failed",
                        f"no attempt {counter} after the {what} at {_fmt(trig.at_ms)} "
                        f"(expected at {_fmt(exp_ms)}; watched until {_fmt(observed_until_ms)}"
                        f"{_exit_note(client_exited_ms)}): the client gave up after "
                        f"{counter - 1} failed attempt(s), or waits far longer than "
                        f"{counter} x base; the policy makes {params.max_attempts} attempts",
                    )
                )
            continue

        first = answers[0]
        slot = replace(slot, observed=first.index, observed_ms=first.at_ms)
        expected.append(slot)
        if trig.kind == "loss":
            findings.append(
                Finding(
                    "CLIENT-001",
                    "passed",
                    f"attempt #{first.index} reconnected after the loss at {_fmt(trig.at_ms)}",
                    attempt=first.index,
                )
            )
        delay = first.at_ms - trig.at_ms
        if slot.matched:
            findings.append(
                Finding(
                    timing_req,
                    "passed",
                    f"attempt {counter} (#{first.index}) at {_fmt(first.at_ms)}: "
                    f"{_fmt(delay)} after the {what}, expected {_fmt(base * counter)} "
                    f"(= {counter} x base) +- {_fmt(tol)}",
                    attempt=first.index,
                )
            )
        else:
            hint = ""
            if timing_req == "CLIENT-005":
                hint = "; after a reopen the delays start again at 1 x base"
            findings.append(
                Finding(
                    timing_req,
                    "failed",
                    f"attempt {counter} (#{first.index}) at {_fmt(first.at_ms)}: "
                    f"{_fmt(delay)} after the {what}, expected {_fmt(base * counter)} "
                    f"(= {counter} x base) +- {_fmt(tol)}{hint}",
                    attempt=first.index,
                )
            )
        if len(answers) == 1:
            findings.append(
                Finding(
                    "CLIENT-003",
                    "passed",
                    f"one attempt (#{first.index}) after the {what}",
                    attempt=first.index,
                )
            )
        else:
            for extra in answers[1:]:
                findings.append(
                    Finding(
                        "CLIENT-003",
                        "failed",
                        f"attempt #{extra.index} at {_fmt(extra.at_ms)} is another attempt "
                        f"after the {what} at {_fmt(trig.at_ms)} (attempt #{first.index} "
                        "already answered it, with no loss or failure in between)",
                        attempt=extra.index,
                    )
                )
        if first.outcome == "accepted":
            counter = 0  # Seed: Success -> Reset reconnectAttempts = 0

    return TimelineAnalysis(tuple(triggers), tuple(expected), tuple(quiet), tuple(findings))


def _exit_note(exited: float | None) -> str:
    return "" if exited is None else f"; the client exited at {_fmt(exited)}"


def _quiet_evidence(start: float, observed_until: float, exited: float | None) -> str:
    if exited is not None and exited <= observed_until:
        return f"(the client exited at {_fmt(exited)})"
    return f"(watched {_fmt(observed_until - start)})"


def normalise_path(path: str) -> str:
    """A path without query and without trailing slash: the seed is loose about the slash."""
    bare = path.split("?", 1)[0]
    return bare.rstrip("/") or "/"


def check_paths(attempts: Sequence[AttemptObs], room_path: str) -> list[Finding]:
    """CLIENT-007: every attempt goes to the room path the client was given.

    The trailing slash and the query string (which may carry a token) are not compared.
    """
    want = normalise_path(room_path)
    findings: list[Finding] = []
    reconnections = 0
    for attempt in sorted(attempts, key=lambda a: a.index):
        got = normalise_path(attempt.path)
        if got != want:
            which = "the first connection" if attempt.index == 0 else f"attempt #{attempt.index}"
            findings.append(
                Finding(
                    "CLIENT-007",
                    "failed",
                    f"{which} requested {attempt.path!r}, not the room path {room_path!r}",
                    attempt=attempt.index,
                )
            )
        elif attempt.index > 0:
            reconnections += 1
    if reconnections and not findings:
        findings.append(
            Finding(
                "CLIENT-007",
                "passed",
                f"{reconnections} reconnection attempt(s) to the room path {room_path!r}",
            )
        )
    return findings


def check_frames(frames: Sequence[FrameObs]) -> list[Finding]:
    """CLIENT-008: every frame validates, and some frame was seen after a reconnection."""
    findings: list[Finding] = []
    for frame in frames:
        if frame.violations:
            schema = frame.schema or "no schema"
            findings.append(
                Finding(
                    "CLIENT-008",
                    "failed",
                    f"frame on attempt #{frame.attempt} at {_fmt(frame.at_ms)} ({schema}): "
                    + "; ".join(frame.violations),
                    attempt=frame.attempt,
                )
            )
    if findings:
        return findings
    after = [f for f in frames if f.after_reconnect]
    if after:
        findings.append(
            Finding(
                "CLIENT-008",
                "passed",
                f"{len(frames)} frame(s) valid, {len(after)} of them after a reconnection",
            )
        )
    elif frames:
        findings.append(
            Finding(
                "CLIENT-008",
                "not_tested",
                f"{len(frames)} frame(s) valid, but none was sent after a reconnection",
            )
        )
    else:
        findings.append(Finding("CLIENT-008", "not_tested", "the client sent no frame"))
    return findings
