"""The scenarios of client-check and the settings they run with (data, no I/O).

Each scenario is a plan: the action the fake server takes on each successive connection attempt
(see :mod:`harness.wire.serve`), then a quiet period in which the harness keeps watching
for attempts that should not come. Every scenario runs against a fresh launch of the client and
a fresh fake server (on a port of its own when the scenarios run concurrently).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from harness.client.policy import default_tolerance_ms
from harness.wire.serve import Action

__all__ = [
    "DEFAULT_PATH",
    "SCENARIOS",
    "SCENARIO_NAMES",
    "Scenario",
    "Settings",
    "scenario_by_name",
]

DEFAULT_PATH = "/ws/chat/alice/general"


@dataclass(frozen=True)
class Settings:
    """Everything a client-check run needs. Times: ``*_ms`` in ms, ``*_s`` in seconds.

    ``command`` is the client command as an argv (None: listen-only, an external client connects
    to the printed URL). ``tolerance_ms`` None means the default, max(250 ms, 20 % of the base
    delay). ``timeout_s`` None means a bound computed from the plan (see ``worst_case_s``).
    ``sequential`` runs the scenarios one at a time even when they could run at once (see
    ``concurrent``).
    """

    base_ms: float = 3000.0
    max_attempts: int = 5
    tolerance_ms: float | None = None
    command: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    token: str | None = None
    path: str = DEFAULT_PATH
    host: str = "127.0.0.1"
    port: int = 0
    connect_timeout_s: float = 10.0
    frame_wait_ms: float = 2000.0
    timeout_s: float | None = None
    scenarios: tuple[str, ...] = ()
    sequential: bool = False

    @property
    def tolerance(self) -> float:
        """The tolerance in ms actually used."""
        if self.tolerance_ms is None:
            return default_tolerance_ms(self.base_ms)
        return self.tolerance_ms

    @property
    def listen_only(self) -> bool:
        return self.command is None

    @property
    def concurrent(self) -> bool:
        """Whether the scenarios run at once, each on its own free port with its own client.

        Not with ``listen_only`` (an external client is pointed at one address) nor with a fixed
        ``port`` (one port cannot serve several scenarios at once), nor when ``sequential``.
        """
        return not (self.listen_only or self.port != 0 or self.sequential)

    def selected(self) -> tuple[Scenario, ...]:
        """The scenarios to run, in catalogue order (all when none is named)."""
        if not self.scenarios:
            return SCENARIOS
        return tuple(s for s in SCENARIOS if s.name in self.scenarios)


@dataclass(frozen=True)
class Scenario:
    """One scenario: the server's plan and what it checks.

    ``plan(max_attempts)`` gives the action per attempt (index 0 is the first connection);
    ``default`` is the action for any attempt beyond the plan; ``quiet(settings)`` is how long
    the harness keeps watching after the plan's last event.
    """

    name: str
    title: str
    summary: str
    focus: tuple[str, ...]
    plan: Callable[[int], tuple[Action, ...]]
    default: Action
    quiet: Callable[[Settings], float]

    def quiet_note(self, settings: Settings) -> str:
        return f"quiet period {self.quiet(settings):.0f} ms after the last planned event"


def _short_quiet(settings: Settings) -> float:
    """3 x base + 2 x tolerance: long enough to see a second attempt or a reconnection."""
    return 3 * settings.base_ms + 2 * settings.tolerance


def _give_up_quiet(settings: Settings) -> float:
    """(MAX + 1) x base + 2 x tolerance: when a client that does not give up would try again."""
    return (settings.max_attempts + 1) * settings.base_ms + 2 * settings.tolerance


_REFUSE: tuple[Action] = ("refuse",)


def _plan_unclean_drop(max_attempts: int) -> tuple[Action, ...]:
    del max_attempts
    return ("drop", "hold")


def _plan_refuse_then_accept(max_attempts: int) -> tuple[Action, ...]:
    refusals = max(0, min(3, max_attempts - 1))
    return ("drop", *(_REFUSE * refusals), "hold")


def _plan_give_up(max_attempts: int) -> tuple[Action, ...]:
    return ("drop", *(_REFUSE * max_attempts))


def _plan_reset_after_open(max_attempts: int) -> tuple[Action, ...]:
    first = max(0, min(2, max_attempts - 1))
    second = max(0, min(1, max_attempts - 1))
    return ("drop", *(_REFUSE * first), "drop", *(_REFUSE * second), "hold")


def _plan_clean_close(max_attempts: int) -> tuple[Action, ...]:
    del max_attempts
    return ("close",)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="unclean-drop",
        title="Unclean loss: one reconnection after 1 x base",
        summary=(
            "Accept, let the client send a frame, then abort the TCP connection without a close "
            "frame. Expected: exactly one reconnection, to the same room path, 1 x base after "
            "the loss, and valid frames before and after it."
        ),
        focus=("CLIENT-001", "CLIENT-002", "CLIENT-003", "CLIENT-007", "CLIENT-008"),
        plan=_plan_unclean_drop,
        default="hold",
        quiet=_short_quiet,
    ),
    Scenario(
        name="refuse-then-accept",
        title="Refused handshakes: attempt n after n x base",
        summary=(
            "Drop uncleanly, refuse the next 3 handshakes with HTTP 503, then accept. Expected: "
            "attempts 1 to 4, attempt n starting n x base after the loss (n = 1) or after the "
            "refusal of attempt n - 1 (the delay is scheduled when the failure is observed), "
            "one attempt per loss or failure."
        ),
        focus=("CLIENT-002", "CLIENT-003"),
        plan=_plan_refuse_then_accept,
        default="hold",
        quiet=_short_quiet,
    ),
    Scenario(
        name="give-up",
        title="Refused forever: give up after the maximum",
        summary=(
            "Drop uncleanly and refuse every handshake. Expected: exactly MAX attempts "
            "(5 by default), at n x base after each failure, then none for (MAX + 1) x base."
        ),
        focus=("CLIENT-004",),
        plan=_plan_give_up,
        default="refuse",
        quiet=_give_up_quiet,
    ),
    Scenario(
        name="reset-after-open",
        title="Counter reset: delays start again at 1 x base after a reopen",
        summary=(
            "Drop, refuse 2, accept, drop again, refuse 1, accept. Expected: after the second "
            "loss the delays start again at 1 x base, then 2 x base (the counter was reset when "
            "the connection opened)."
        ),
        focus=("CLIENT-005",),
        plan=_plan_reset_after_open,
        default="hold",
        quiet=_short_quiet,
    ),
    Scenario(
        name="clean-close",
        title="Clean close: no reconnection",
        summary=(
            "Accept, let the client send a frame, then close cleanly with code 1000. "
            "Expected: no reconnection during the quiet period."
        ),
        focus=("CLIENT-006",),
        plan=_plan_clean_close,
        default="hold",
        quiet=_short_quiet,
    ),
)

SCENARIO_NAMES: tuple[str, ...] = tuple(s.name for s in SCENARIOS)


def scenario_by_name(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIO_NAMES)}")


def worst_case_s(scenario: Scenario, settings: Settings) -> float:
    """An upper bound of the scenario's duration when every wait runs to its bound."""
    base, tol = settings.base_ms, settings.tolerance
    plan = scenario.plan(settings.max_attempts)
    per_attempt_ms = 2 * base * max(1, settings.max_attempts) + 2 * tol + 500
    per_action_ms = settings.frame_wait_ms + 6000
    total_ms = (
        settings.connect_timeout_s * 1000
        + len(plan) * (per_attempt_ms + per_action_ms)
        + scenario.quiet(settings)
        + 10000  # ending the client and the server
    )
    return total_ms / 1000
