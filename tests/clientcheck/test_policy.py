"""The pure reconnection checks: recorded attempt times in, verdicts out (no sockets, no sleeps)."""

from __future__ import annotations

from harness import catalogue
from harness.client.policy import (
    AttemptObs,
    End,
    FrameObs,
    Outcome,
    PolicyParams,
    TimelineAnalysis,
    analyse_timeline,
    check_frames,
    check_paths,
    default_tolerance_ms,
)
from harness.core.results import Finding, fold

ROOM = "/ws/chat/alice/general"
PARAMS = PolicyParams(base_ms=100, tolerance_ms=50, max_attempts=5)


class Timeline:
    """Builds the attempts of a scenario; times in ms (a refusal takes 1 ms)."""

    def __init__(self) -> None:
        self.attempts: list[AttemptObs] = []

    def _add(self, at: float, outcome: Outcome, end: End, end_ms: float | None, path: str) -> float:
        attempt = AttemptObs(len(self.attempts), at, path, outcome, end, end_ms)
        self.attempts.append(attempt)
        return at if end_ms is None else end_ms

    def drop(self, at: float, after: float = 10, path: str = ROOM) -> float:
        """Accepted, then dropped uncleanly ``after`` ms later; returns the loss time."""
        return self._add(at, "accepted", "dropped", at + after, path)

    def refuse(self, at: float, path: str = ROOM) -> float:
        """Refused; returns the failure time."""
        return self._add(at, "refused", "refused", at + 1, path)

    def hold(self, at: float, path: str = ROOM) -> float:
        return self._add(at, "accepted", "held", None, path)

    def close(self, at: float, after: float = 10) -> float:
        """Accepted, then closed cleanly with 1000; returns the close time."""
        return self._add(at, "accepted", "closed", at + after, ROOM)

    def analyse(
        self,
        until: float,
        exited: float | None = None,
        params: PolicyParams = PARAMS,
    ) -> TimelineAnalysis:
        return analyse_timeline(self.attempts, params, until, exited)


def verdicts(findings: tuple[Finding, ...] | list[Finding], requirement: str) -> list[str]:
    return [f.verdict for f in findings if f.requirement == requirement]


def failed(findings: tuple[Finding, ...] | list[Finding]) -> set[str]:
    return {f.requirement for f in findings if f.verdict == "failed"}


# -- CLIENT-001 / 002 / 003: one reconnection after the loss, base x 1 later -------------------


def test_reconnection_on_time_passes() -> None:
    t = Timeline()
    loss = t.drop(0)
    t.hold(loss + 100)
    result = t.analyse(until=1000)
    assert verdicts(result.findings, "CLIENT-001") == ["passed"]
    assert verdicts(result.findings, "CLIENT-002") == ["passed"]
    assert verdicts(result.findings, "CLIENT-003") == ["passed"]
    assert not failed(result.findings)
    (slot,) = result.expected
    assert (slot.n, slot.reference_kind, slot.expected_ms) == (1, "loss", loss + 100)
    assert (slot.low_ms, slot.high_ms, slot.observed) == (loss + 50, loss + 150, 1)


def test_late_reconnection_fails_client_002() -> None:
    t = Timeline()
    loss = t.drop(0)
    t.hold(loss + 100 + 51)
    assert failed(t.analyse(until=1000).findings) == {"CLIENT-002"}


def test_early_reconnection_fails_client_002() -> None:
    t = Timeline()
    loss = t.drop(0)
    t.hold(loss + 100 - 51)
    assert failed(t.analyse(until=1000).findings) == {"CLIENT-002"}


def test_reconnection_at_the_window_edges_passes() -> None:
    for offset in (-50, 50):
        t = Timeline()
        loss = t.drop(0)
        t.hold(loss + 100 + offset)
        assert not failed(t.analyse(until=1000).findings)


def test_no_reconnection_after_a_loss_fails_client_001() -> None:
    t = Timeline()
    t.drop(0)
    result = t.analyse(until=1000)
    assert failed(result.findings) == {"CLIENT-001"}
    assert result.expected[0].observed is None


def test_no_reconnection_is_not_judged_before_its_window_closes() -> None:
    t = Timeline()
    loss = t.drop(0)
    findings = t.analyse(until=loss + 149).findings
    assert not failed(findings)
    assert verdicts(findings, "CLIENT-002") == ["not_tested"]


def test_a_second_attempt_after_one_loss_fails_client_003() -> None:
    # A retry scheduled on both the error and the close event: two timers, n = 1 and n = 2.
    t = Timeline()
    loss = t.drop(0)
    t.hold(loss + 100)
    t.hold(loss + 200)
    findings = t.analyse(until=2000).findings
    assert failed(findings) == {"CLIENT-003"}
    (extra,) = [f for f in findings if f.verdict == "failed"]
    assert extra.attempt == 2


# -- CLIENT-002: the reference point is the previous failure ------------------------------


def test_delay_is_measured_from_the_previous_failure() -> None:
    t = Timeline()
    at = t.drop(0)
    for n in (1, 2, 3):
        at = t.refuse(at + 100 * n)
    t.hold(at + 400)
    result = t.analyse(until=5000)
    assert not failed(result.findings)
    assert [e.n for e in result.expected] == [1, 2, 3, 4]
    assert [e.reference_kind for e in result.expected] == ["loss", "failure", "failure", "failure"]
    assert verdicts(result.findings, "CLIENT-002") == ["passed"] * 4


def test_delays_counted_from_the_loss_fail_client_002() -> None:
    # n x base after the original loss instead of after the previous failure.
    t = Timeline()
    loss = t.drop(0)
    for n in (1, 2, 3):
        t.refuse(loss + 100 * n)
    t.hold(loss + 400)
    findings = t.analyse(until=5000).findings
    assert failed(findings) == {"CLIENT-002"}
    assert verdicts(findings, "CLIENT-002") == ["passed", "failed", "failed", "failed"]


def test_exponential_delays_fail_client_002() -> None:
    t = Timeline()
    at = t.drop(0)
    for n in (1, 2, 3):
        at = t.refuse(at + 100 * 2 ** (n - 1))
    t.hold(at + 800)
    assert "CLIENT-002" in failed(t.analyse(until=5000).findings)


# -- CLIENT-004: give up after MAX failed attempts ----------------------------------------


def _five_refusals(t: Timeline) -> float:
    at = t.drop(0)
    for n in range(1, 6):
        at = t.refuse(at + 100 * n)
    return at


def test_giving_up_after_five_failures_passes() -> None:
    t = Timeline()
    last = _five_refusals(t)
    result = t.analyse(until=last + 600 + 50)
    assert verdicts(result.findings, "CLIENT-004") == ["passed"]
    assert not failed(result.findings)
    (quiet,) = result.quiet
    assert (quiet.requirement, quiet.start_ms, quiet.required_ms) == ("CLIENT-004", last, 650)


def test_giving_up_is_not_judged_on_a_short_watch() -> None:
    t = Timeline()
    last = _five_refusals(t)
    assert verdicts(t.analyse(until=last + 300).findings, "CLIENT-004") == ["not_tested"]


def test_a_client_that_exited_has_given_up() -> None:
    t = Timeline()
    last = _five_refusals(t)
    findings = t.analyse(until=last + 20, exited=last + 10).findings
    assert verdicts(findings, "CLIENT-004") == ["passed"]


def test_a_sixth_attempt_fails_client_004() -> None:
    t = Timeline()
    last = _five_refusals(t)
    t.refuse(last + 600)
    findings = t.analyse(until=last + 2000).findings
    assert failed(findings) == {"CLIENT-004"}


def test_giving_up_early_fails_client_004() -> None:
    t = Timeline()
    at = t.drop(0)
    for n in (1, 2, 3):
        at = t.refuse(at + 100 * n)
    findings = t.analyse(until=at + 2000).findings
    assert failed(findings) == {"CLIENT-004"}
    assert "gave up after 3 failed attempt(s)" in next(
        f.detail for f in findings if f.verdict == "failed"
    )


def test_max_attempts_is_a_parameter() -> None:
    t = Timeline()
    at = t.drop(0)
    for n in (1, 2):
        at = t.refuse(at + 100 * n)
    params = PolicyParams(base_ms=100, tolerance_ms=50, max_attempts=2)
    result = t.analyse(until=at + 1000, params=params)
    assert verdicts(result.findings, "CLIENT-004") == ["passed"]


# -- CLIENT-005: the counter resets on open ----------------------------------------------


def _first_chain(t: Timeline) -> float:
    at = t.drop(0)
    at = t.refuse(at + 100)
    at = t.refuse(at + 200)
    return t.drop(at + 300)  # accepted: the counter resets; then lost again


def test_delays_start_again_at_one_base_after_a_reopen() -> None:
    t = Timeline()
    loss = _first_chain(t)
    at = t.refuse(loss + 100)
    t.hold(at + 200)
    result = t.analyse(until=at + 2000)
    assert not failed(result.findings)
    assert verdicts(result.findings, "CLIENT-005") == ["passed", "passed"]
    assert [e.requirement for e in result.expected] == ["CLIENT-002"] * 3 + ["CLIENT-005"] * 2


def test_a_counter_that_is_not_reset_fails_client_005() -> None:
    t = Timeline()
    loss = _first_chain(t)
    at = t.refuse(loss + 400)  # counter went on: 4, then 5
    t.hold(at + 500)
    findings = t.analyse(until=at + 3000).findings
    assert failed(findings) == {"CLIENT-005"}
    assert verdicts(findings, "CLIENT-002") == ["passed"] * 3


# -- CLIENT-006: no reconnection after a clean close -------------------------------------


def test_no_attempt_after_a_clean_close_passes() -> None:
    t = Timeline()
    closed = t.close(0)
    result = t.analyse(until=closed + 150)
    assert verdicts(result.findings, "CLIENT-006") == ["passed"]
    assert result.quiet[0].requirement == "CLIENT-006"


def test_a_reconnection_after_a_clean_close_fails_client_006() -> None:
    t = Timeline()
    closed = t.close(0)
    t.hold(closed + 100)
    findings = t.analyse(until=closed + 1000).findings
    assert failed(findings) == {"CLIENT-006"}


def test_a_clean_close_watched_too_briefly_is_not_tested() -> None:
    t = Timeline()
    closed = t.close(0)
    assert verdicts(t.analyse(until=closed + 100).findings, "CLIENT-006") == ["not_tested"]


# -- CLIENT-007: same room path ----------------------------------------------------------


def test_reconnections_to_the_room_path_pass() -> None:
    t = Timeline()
    loss = t.drop(0)
    t.hold(loss + 100, path=ROOM + "/")  # the trailing slash is not compared
    findings = check_paths(t.attempts, ROOM + "?token=x")
    assert [f.verdict for f in findings] == ["passed"]


def test_a_reconnection_to_another_path_fails_client_007() -> None:
    t = Timeline()
    loss = t.drop(0)
    t.hold(loss + 100, path="/ws/chat/alice/lobby")
    (finding,) = check_paths(t.attempts, ROOM)
    assert (finding.requirement, finding.verdict, finding.attempt) == ("CLIENT-007", "failed", 1)


def test_a_first_connection_to_another_path_fails_client_007() -> None:
    t = Timeline()
    t.drop(0, path="/ws/chat/alice/")
    (finding,) = check_paths(t.attempts, ROOM)
    assert finding.verdict == "failed"
    assert "first connection" in finding.detail


def test_no_reconnection_gives_no_path_verdict() -> None:
    t = Timeline()
    t.close(0)
    assert check_paths(t.attempts, ROOM) == []


# -- CLIENT-008: frames ------------------------------------------------------------------


def test_valid_frames_before_and_after_a_reconnection_pass() -> None:
    frames = [
        FrameObs(0, 5, False, "client/text"),
        FrameObs(1, 150, True, "client/text"),
    ]
    assert [f.verdict for f in check_frames(frames)] == ["passed"]


def test_an_invalid_frame_fails_client_008() -> None:
    frames = [
        FrameObs(0, 5, False, "client/text"),
        FrameObs(1, 150, True, "client/text", ("(root): 'message' is a required property",)),
    ]
    (finding,) = check_frames(frames)
    assert (finding.verdict, finding.attempt) == ("failed", 1)
    assert "message" in finding.detail


def test_frames_only_before_a_reconnection_are_not_enough() -> None:
    (finding,) = check_frames([FrameObs(0, 5, False, "client/text")])
    assert finding.verdict == "not_tested"
    (finding,) = check_frames([])
    assert finding.verdict == "not_tested"


# -- folding and defaults ----------------------------------------------------------------


def test_a_failure_outweighs_passes_and_silence_is_not_a_pass() -> None:
    """The policy's findings are folded by the core fold, as in every mode."""
    findings = [
        Finding("CLIENT-002", "passed", "a"),
        Finding("CLIENT-002", "failed", "b", attempt=2),
        Finding("CLIENT-003", "passed", "c"),
        Finding("CLIENT-006", "not_tested", "d"),
    ]
    client = catalogue.load().scoped("client")
    folded = {r.requirement.id: r for r in fold(findings, client, nothing_ran="not exercised")}
    assert (folded["CLIENT-001"].verdict, folded["CLIENT-001"].reason) == (
        "not_tested",
        "not exercised",
    )
    assert (folded["CLIENT-002"].verdict, folded["CLIENT-002"].reason) == ("failed", "b")
    assert folded["CLIENT-003"].verdict == "passed"
    assert (folded["CLIENT-006"].verdict, folded["CLIENT-006"].reason) == ("not_tested", "d")
    assert [r.requirement.id for r in folded.values()] == [r.id for r in client]


def test_default_tolerance_is_250_ms_or_a_fifth_of_the_base() -> None:
    assert default_tolerance_ms(100) == 250
    assert default_tolerance_ms(1250) == 250
    assert default_tolerance_ms(3000) == 600
