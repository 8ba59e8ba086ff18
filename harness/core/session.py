"""A test's conversation with the target, without I/O: what the ``chat`` fixture knows and
decides, as plain objects.

:class:`Session` is one test's state: its transcript, observations and figures, the traffic, what it
can call its own (:mod:`harness.core.attribution`), which room each of its contents belongs to
(:mod:`harness.core.isolation`), the run's gate, the evidence a sentinel proves silence with, the
refusals it met; and its connections' states (:class:`~harness.core.connstate.ConnState`: buffer,
unread marks, sentinels, the steps of a wait). The pump (:mod:`harness.server.chat`,
:mod:`harness.server.conn`) reads and writes sockets and feeds them, as websockets'
``asyncio/connection.py`` pumps its ``protocol.py``; it decides nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.core.attribution import Attribution
from harness.core.catalogue import NEEDS
from harness.core.checks import Judge
from harness.core.connstate import ConnState, Facts
from harness.core.diagnosis import Traffic
from harness.core.failures import (
    ConformanceFailure,
    ConformanceTimeout,
    NotTested,
)
from harness.core.frames import Frame, is_event, show
from harness.core.gate import PACE, Gate
from harness.core.isolation import Ledger, Place
from harness.core.transcript import Transcript

#: Observations kept per requirement in one test; more are counted on one line.
MAX_OBSERVATIONS = 50


@dataclass
class Refusal:
    """A handshake that did not open a connection: an HTTP answer other than 101 (``http``,
    ``detail`` saying more when there is more to say), or a close right after it (``close``)."""

    style: str  # "http" | "close"
    status: int | None = None
    close_code: int | None = None
    detail: str = ""

    def describe(self) -> str:
        if self.style == "http":
            return f"HTTP {self.status} at the handshake" if self.status else self.detail
        return f"close {self.close_code} after the handshake"


# --- one test -----------------------------------------------------------------------------


class Session:
    """One test's state: the ``chat`` fixture's, without its sockets."""

    def __init__(self, target: Facts, redact: Callable[[str], str], judge: Judge) -> None:
        self.target = target
        #: How a frame is judged on its own (the spec's :class:`~harness.core.checks.FrameJudge`).
        self.judge = judge
        #: Every text it logs is masked by ``redact`` first (the process's registry of secrets).
        self.transcript = Transcript(redact)
        self.observations: dict[str, list[str]] = {}
        #: What the test measured, per requirement, for the report's tables and plots (plain
        #: data: it travels to the controller).
        self.figures: dict[str, dict[str, Any]] = {}
        #: The connections of the test, in the order they opened.
        self.conns: list[ConnState] = []
        self.extra_fields: set[str] = set()
        self._more_observations: dict[str, int] = {}
        self._names: dict[str, int] = {}
        #: What went over the wire, counted (:mod:`harness.core.diagnosis`).
        self.traffic = Traffic()
        #: When a wait last got the frame it waited for (the pump's clock): a test out of time
        #: while its waits are still answered is slow, not failed.
        self.last_frame_at: float | None = None
        #: The requirements of the test this session serves, and the run's preflight findings
        #: and breaker (:mod:`harness.core.gate`); set by the plugin.
        self.own: tuple[str, ...] = ()
        self.gate: Gate | None = None
        #: What this test can call its own: its nonces, and the ids of its messages.
        self.attribution = Attribution()
        #: Which room each of them belongs to (every frame is searched for other rooms').
        self.ledger = Ledger()

    # the run's evidence ------------------------------------------------------------------

    def sentinel_grace(self) -> float | None:
        """How long a wait for an event goes on before the sender's sentinel is sent: five of
        the preflight's round trips (at least 0.25 s), at most half of ``receive_timeout``. None
        without the preflight's evidence that a sender's own events come back (then a sentinel
        proves nothing)."""
        gate = self.gate
        if gate is None or not gate.echo_seen:
            return None
        return min(self.target.receive_timeout / 2, max(0.25, 5 * gate.round_trip_s))

    def send_interval(self) -> float | None:
        """The least time between two frames of one connection: under the server's rate limit
        (``limits.max_frames_per_second``, else what the preflight found), :data:`PACE` of it;
        None without one."""
        rate = self.target.max_frames_per_second
        if rate is None and self.gate is not None:
            rate = self.gate.rate_limit
        return None if rate is None else 1 / (PACE * rate)

    def rate_limit_text(self) -> str:
        """The server's rate limit in words, for a line of the report."""
        rate: float | None = self.target.max_frames_per_second
        source = "limits.max_frames_per_second"
        if rate is None:
            rate = self.gate.rate_limit if self.gate is not None else None
            source = "found by the preflight"
        return f"about {rate or 0:g} frames a second on one connection ({source})"

    def rate_limited(self, frame: Frame) -> None:
        """An error frame with the text the server refused frames under its rate limit with,
        where a check expected something else: not tested, with the limit (the frame was
        refused for going too fast, which says nothing of what the check is about)."""
        gate = self.gate
        if gate is None or gate.rate_limit_error is None or not isinstance(frame, dict):
            return
        if frame.get("error") == gate.rate_limit_error:
            raise NotTested(
                f"the server refused a frame of the test under its rate limit "
                f"({self.rate_limit_text()}: {show(frame, 80)})"
            )

    def gate_check(self, requirement: str) -> None:
        """Before a wait attributed to ``requirement``: end it at once if the preflight
        proved that requirement fails (:meth:`harness.core.gate.Gate.check`)."""
        if self.gate is not None:
            self.gate.check(requirement, self.own)

    def can_prove_silence(self) -> bool:
        """Whether a sentinel text proves silence: the preflight saw the server return a
        sender's own event, and no probe found it gone since."""
        gate = self.gate
        return gate is not None and gate.echo_seen and not gate.blocked_by("SEND-002")

    # fixtures of the target --------------------------------------------------------------

    def needs(self, need: str) -> None:
        """Not tested unless the target offers ``need`` (catalogue ``needs``: ``nodes``,
        ``network``, ``twin``)."""
        if need in self.target.lacking:
            raise NotTested(NEEDS[need])

    def account(self, role: str) -> Any:
        acc = self.target.accounts.get(role)
        if acc is None:
            raise NotTested(f"needs accounts.{role} in the target file")
        return acc

    def slug(self, room: str) -> str:
        slug = self.target.rooms.get(room)
        if slug is None:
            raise NotTested(f"needs rooms.{room} in the target file")
        return slug

    def place_of(self, room: str) -> Place:
        """The room ``room`` names (a key of [rooms], or ``twin``: the room of
        ``rooms.twin_host`` with the slug of ``rooms.main``) as (host, slug)."""
        if room == "twin":
            self.needs("twin")
            return self.target.rooms["twin_host"], self.slug("main")
        return self.target.host_name, self.slug(room)

    def nonce(self, label: str = "m") -> str:
        """A text unique to this test (``label-`` and 16 hex digits): the frames that carry it
        are the test's own (:mod:`harness.core.attribution`)."""
        return self.attribution.nonce(label)

    def unique_int(self) -> int:
        """A 16-digit number unique to this test, for a frame that carries a number where a
        string belongs: its broadcast is attributable to the test, where ``42`` is not."""
        return self.attribution.unique_int()

    def owns(self, frame: Frame) -> bool:
        """Whether this test can attribute ``frame`` to its own frames: only such a frame
        fails a check (:mod:`harness.core.attribution`)."""
        return self.attribution.owns(frame)

    def observe(self, requirement: str, text: str) -> None:
        """Note something worth reporting; past :data:`MAX_OBSERVATIONS` for one requirement
        (a server repeating itself), the rest are counted on one last line."""
        seen = self.observations.setdefault(requirement, [])
        if len(seen) < MAX_OBSERVATIONS:
            seen.append(text)
            return
        more = self._more_observations.get(requirement, 0) + 1
        self._more_observations[requirement] = more
        line = f"… and {more:,} more like these"
        if len(seen) == MAX_OBSERVATIONS:
            seen.append(line)
        else:
            seen[-1] = line

    # connections -------------------------------------------------------------------------

    def conn_name(self, label: str) -> str:
        """The next name for a connection labelled ``label``: ``label#1``, ``label#2``, ..."""
        n = self._names.get(label, 0) + 1
        self._names[label] = n
        return f"{label}#{n}"

    def refused(self, name: str, refusal: Refusal, line: str) -> None:
        """A handshake that opened nothing (``line``: the transcript's, already redacted)."""
        self.transcript.log(name, "==", line)
        self.traffic.refused[
            f"HTTP {refusal.status}" if refusal.status else "handshake failed"
        ] += 1

    def accepted(
        self, name: str, status: int, account: Any, room: str, node: int, host: str | None
    ) -> ConnState:
        """A connection the server accepted: its state, from now on one of the test's."""
        self.traffic.accepted += 1
        self.transcript.log(name, "==", f"handshake accepted: HTTP {status}")
        state = ConnState(self, name, account, room, node, host)
        self.conns.append(state)
        return state

    def check_style(self, refusal: Refusal, requirement: str) -> None:
        """A refusal is observed (AUTH-010) and, with ``expect.refusal`` pinned, must have that
        style (AUTH-009)."""
        self.observe("AUTH-010", refusal.describe())
        pinned = self.target.refusal
        if pinned != "any" and refusal.style != pinned:
            raise ConformanceFailure(
                "AUTH-009", f"refusal style {pinned!r} (expect.refusal)", f"{refusal.describe()}"
            )

    def refused_after_accept(
        self, conn: ConnState, closed: tuple[int | None, str] | None, requirement: str
    ) -> Refusal:
        """A connection that had to be refused was accepted: it must get no room event and be
        closed at once after its handshake (protocol notes: "How a refusal looks")."""
        events = [f for f in conn.buffer if is_event(f)]
        if events:
            raise ConformanceFailure(
                requirement,
                "refused, and no room event on the refused connection",
                f"accepted; {conn.name} received {show(events[0])}",
                also=("AUTH-008",),
            )
        if closed is None:
            raise ConformanceTimeout(
                requirement,
                "refused: HTTP error at the handshake, or a close right after it",
                f"accepted and still open after {self.target.receive_timeout:.1f} s",
            )
        refusal = Refusal("close", close_code=closed[0])
        self.check_style(refusal, requirement)
        return refusal

    def forget(self) -> None:
        """Let go of what the connections kept (the session outlives its test) and of the
        transcript beyond what a report shows; the session can open connections again."""
        for state in self.conns:
            state.forget()
        self.conns.clear()
        self.transcript.compact_in_place()


def refusal_line(refusal: Refusal, redact: Callable[[str], str]) -> str:
    """The transcript's line for a handshake that opened nothing."""
    line = f"handshake refused: HTTP {refusal.status}" if refusal.status else refusal.detail
    if refusal.status and refusal.detail:
        line += f"; {refusal.detail}"  # an in-process application's traceback, say
    return redact(line)
