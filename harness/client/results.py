"""What a client-check run found: recorded scenarios judged by the policy, in the core model.

The verdicts are a :class:`harness.core.results.RunResult` (``mode="client"``), folded from the
policy's findings by :func:`harness.core.results.fold` like every mode's; :class:`ClientRun` holds
it with what is specific to client-check (the settings, and per scenario its attempts, frames,
triggers, expected and quiet windows, findings and verdicts). Reports render this model and
nothing else. Every string that came from the client (paths, frames, output) is redacted
(``harness.redact``) on the way in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from harness import __version__, redact
from harness.client.frames import inspect_frame
from harness.client.play import ScenarioRun
from harness.client.policy import (
    AttemptObs,
    FrameObs,
    Outcome,
    PolicyParams,
    TimelineAnalysis,
    analyse_timeline,
    check_frames,
    check_paths,
)
from harness.client.scenarios import Settings
from harness.core.catalogue import Catalogue, Requirement
from harness.core.frames import now_rfc3339
from harness.core.results import Finding, RequirementResult, RunResult, fold

__all__ = [
    "TOOL",
    "AttemptResult",
    "ClientRun",
    "FrameResult",
    "ScenarioResult",
    "evaluate",
    "evidence",
    "settings_json",
    "summarise",
    "target_of",
]

TOOL = "edusphere-conformance client-check"
NOT_IN_SCENARIO = "not exercised by this scenario"
NOT_IN_RUN = "no scenario run exercises it"

_FRAME_SHOWN = 400


@dataclass(frozen=True)
class FrameResult:
    at_ms: float
    text: str
    schema: str | None
    violations: tuple[str, ...]


@dataclass(frozen=True)
class AttemptResult:
    index: int
    at_ms: float
    path: str
    action: str
    outcome: str
    status: int | None
    end: str
    end_ms: float | None
    frames: tuple[FrameResult, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    title: str
    summary: str
    focus: tuple[str, ...]
    url: str
    plan: tuple[str, ...]
    default_action: str
    quiet_ms: float
    attempts: tuple[AttemptResult, ...]
    analysis: TimelineAnalysis
    findings: tuple[Finding, ...]
    #: The scenario's own verdicts (folded from its findings alone), by requirement id.
    verdicts: dict[str, RequirementResult]
    observed_until_ms: float
    client_exit_status: int | None
    client_exited_ms: float | None
    incomplete: str | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class ClientRun:
    """A client-check run: the verdicts in the core model plus what the scenarios recorded."""

    #: The verdicts, per requirement and overall (``mode="client"``); renderers of every mode
    #: (terminal summary, JUnit, the HTML pieces, the JSON's common part) read this.
    result: RunResult
    settings: Settings
    scenarios: tuple[ScenarioResult, ...]
    #: Every scenario's findings, each detail prefixed with ``[scenario]``.
    findings: tuple[Finding, ...] = ()

    @property
    def catalogue(self) -> Catalogue:
        return self.result.catalogue

    @property
    def verdicts(self) -> dict[str, RequirementResult]:
        """The run's verdict per requirement id."""
        return {r.requirement.id: r for r in self.result.requirements}

    @property
    def incomplete(self) -> str | None:
        """Why the run has no verdict (it stopped before every scenario ran to its end, or a
        MUST in scope was not tested); None if it has one."""
        return None if self.result.complete else self.result.reason or "incomplete"

    @property
    def failed_musts(self) -> list[str]:
        return [r.requirement.id for r in self.result.failed("MUST")]

    @property
    def exit_status(self) -> int:
        """The same as every mode's: 0 conformant, 1 not conformant, 2 incomplete."""
        return self.result.exit_status

    def as_json(self) -> dict[str, Any]:
        return _run_json(self)

    def dumps(self) -> str:
        return json.dumps(self.as_json(), indent=2, ensure_ascii=False) + "\n"


def evidence(verdict: RequirementResult, findings: Sequence[Finding]) -> list[str]:
    """The details behind a verdict: the failures of a failed requirement, the passes of a
    passed one, the reasons of a not-tested one (its reason when no finding names it)."""
    want = {"failed": "failed", "known": "failed", "passed": "passed"}.get(
        verdict.verdict, "not_tested"
    )
    rid = verdict.requirement.id
    found = [f.detail for f in findings if f.requirement == rid and f.verdict == want and f.detail]
    if found:
        return found
    return [verdict.reason] if verdict.reason else []


def _clip(text: str) -> str:
    text = redact.redact(text)
    return text if len(text) <= _FRAME_SHOWN else text[: _FRAME_SHOWN - 3] + "..."


def _frame_text(data: str | bytes) -> str:
    if isinstance(data, bytes):
        return f"<binary, {len(data)} bytes>"
    return _clip(data)


def evaluate(
    run: ScenarioRun, settings: Settings, requirements: Sequence[Requirement]
) -> ScenarioResult:
    """Judge one recorded scenario: its findings, and its own verdicts (with :func:`fold`)."""
    params = PolicyParams(settings.base_ms, settings.tolerance, settings.max_attempts)
    observations: list[AttemptObs] = []
    frame_obs: list[FrameObs] = []
    attempts: list[AttemptResult] = []
    for record in run.attempts:
        outcome: Outcome = "accepted" if record.outcome == "accepted" else "refused"
        end = record.end
        if record.outcome == "pending":  # the handshake never completed
            end = "client-closed"
        observations.append(
            AttemptObs(record.index, record.at_ms, record.path, outcome, end, record.end_ms)
        )
        frames: list[FrameResult] = []
        for frame in record.frames:
            check = inspect_frame(frame.data)
            frames.append(
                FrameResult(frame.at_ms, _frame_text(frame.data), check.schema, check.violations)
            )
            frame_obs.append(
                FrameObs(
                    record.index,
                    frame.at_ms,
                    record.index > 0,
                    check.schema,
                    tuple(_clip(v) for v in check.violations),
                )
            )
        attempts.append(
            AttemptResult(
                index=record.index,
                at_ms=record.at_ms,
                path=_clip(record.path),
                action=record.action,
                outcome=record.outcome,
                status=record.status,
                end=end,
                end_ms=record.end_ms,
                frames=tuple(frames),
                notes=tuple(record.notes),
            )
        )
    analysis = analyse_timeline(observations, params, run.observed_until_ms, run.client_exited_ms)
    findings = [
        *analysis.findings,
        *check_paths(observations, settings.path),
        *check_frames(frame_obs),
    ]
    scenario = run.scenario
    findings = [replace(f, detail=_clip(f.detail), source=scenario.name) for f in findings]
    return ScenarioResult(
        name=scenario.name,
        title=scenario.title,
        summary=scenario.summary,
        focus=scenario.focus,
        url=redact.redact(run.url),
        plan=run.plan,
        default_action=scenario.default,
        quiet_ms=scenario.quiet(settings),
        attempts=tuple(attempts),
        analysis=analysis,
        findings=tuple(findings),
        verdicts={
            r.requirement.id: r for r in fold(findings, requirements, nothing_ran=NOT_IN_SCENARIO)
        },
        observed_until_ms=run.observed_until_ms,
        client_exit_status=run.client_exit_status,
        client_exited_ms=run.client_exited_ms,
        incomplete=run.incomplete,
        notes=tuple(_clip(n) for n in run.notes),
    )


def target_of(settings: Settings) -> str:
    """What was checked, for the reports: the client command (redacted), or the listen mode."""
    if settings.command is None:
        return "an external client (listen-only)"
    return redact.redact(" ".join(settings.command))


def summarise(
    settings: Settings,
    catalogue: Catalogue,
    scenarios: Sequence[ScenarioResult],
    incomplete: str | None,
    *,
    started: str | None = None,
    duration_s: float = 0.0,
    interrupted: bool = False,
) -> ClientRun:
    """Fold every scenario's findings into one verdict per client requirement (:func:`fold`).

    The run is complete when every selected scenario ran to its end (``incomplete`` is None).
    ``started``: RFC 3339 (default: now). A requirement's duration is the observed time of the
    scenarios that passed or failed it (``observed_until_ms``), as a server test's is its call's.
    """
    if started is None:
        started = now_rfc3339(timespec="seconds")
    findings = tuple(
        replace(f, detail=f"[{s.name}] {f.detail}") for s in scenarios for f in s.findings
    )
    # With --scenario, the requirements in scope are those the chosen scenarios focus on.
    chosen = {rid for s in settings.selected() for rid in s.focus} if settings.scenarios else None
    verdicts = fold(
        findings,
        catalogue.scoped("client"),
        selected=chosen,
        nothing_ran=NOT_IN_RUN,
        unselected="not exercised by the scenarios chosen (--scenario)",
        durations={s.name: s.observed_until_ms / 1000 for s in scenarios},
    )
    result = RunResult(
        catalogue=catalogue,
        requirements=verdicts,
        target=target_of(settings),
        started=started,
        duration_s=duration_s,
        harness_version=__version__,
        finished=incomplete is None,
        stopped_because=incomplete,
        mode="client",
        interrupted=interrupted,
    )
    return ClientRun(result, settings, tuple(scenarios), findings)


# -- JSON ------------------------------------------------------------------------------------


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def settings_json(settings: Settings) -> dict[str, Any]:
    return {
        "mode": "listen-only" if settings.listen_only else "command",
        "command": None if settings.command is None else redact.redact(" ".join(settings.command)),
        "base_delay_ms": settings.base_ms,
        "max_attempts": settings.max_attempts,
        "tolerance_ms": settings.tolerance,
        "tolerance_is_default": settings.tolerance_ms is None,
        "room_path": redact.redact(settings.path),
        "frame_wait_ms": settings.frame_wait_ms,
        "connect_timeout_s": settings.connect_timeout_s,
        "timeout_s": settings.timeout_s,
        "delay_reference": (
            "attempt n is expected n x base after the trigger just before it: the unclean loss "
            "for n = 1, the refusal of attempt n - 1 otherwise"
        ),
    }


def _scenario_json(s: ScenarioResult) -> dict[str, Any]:
    return {
        "name": s.name,
        "title": s.title,
        "summary": s.summary,
        "focus": list(s.focus),
        "url": s.url,
        "plan": list(s.plan),
        "default_action": s.default_action,
        "quiet_ms": _ms(s.quiet_ms),
        "observed_until_ms": _ms(s.observed_until_ms),
        "client_exit_status": s.client_exit_status,
        "client_exited_ms": _ms(s.client_exited_ms),
        "incomplete": s.incomplete,
        "notes": list(s.notes),
        "attempts": [
            {
                "index": a.index,
                "at_ms": _ms(a.at_ms),
                "path": a.path,
                "action": a.action,
                "outcome": a.outcome,
                "http_status": a.status,
                "end": a.end,
                "end_ms": _ms(a.end_ms),
                "notes": list(a.notes),
                "frames": [
                    {
                        "at_ms": _ms(f.at_ms),
                        "frame": f.text,
                        "schema": f.schema,
                        "violations": list(f.violations),
                    }
                    for f in a.frames
                ],
            }
            for a in s.attempts
        ],
        "triggers": [
            {"at_ms": _ms(t.at_ms), "kind": t.kind, "attempt": t.attempt}
            for t in s.analysis.triggers
        ],
        "expected": [
            {
                "n": e.n,
                "reference_ms": _ms(e.reference_ms),
                "reference": e.reference_kind,
                "expected_ms": _ms(e.expected_ms),
                "window_ms": [_ms(e.low_ms), _ms(e.high_ms)],
                "requirement": e.requirement,
                "observed_attempt": e.observed,
                "observed_ms": _ms(e.observed_ms),
                "matched": e.matched,
            }
            for e in s.analysis.expected
        ],
        "quiet": [
            {
                "from_ms": _ms(q.start_ms),
                "required_ms": _ms(q.required_ms),
                "requirement": q.requirement,
                "reason": q.reason,
                "violating_attempts": list(q.violators),
            }
            for q in s.analysis.quiet
        ],
        "findings": [
            {
                "requirement": f.requirement,
                "verdict": f.verdict,
                "detail": f.detail,
                "attempt": f.attempt,
            }
            for f in s.findings
        ],
        "verdicts": {
            rid: {"verdict": v.verdict, "details": evidence(v, s.findings)}
            for rid, v in s.verdicts.items()
        },
    }


def _run_json(run: ClientRun) -> dict[str, Any]:
    """The common fields of every mode (:meth:`RunResult.as_json`), then client-check's own.

    ``tool``, ``catalogue_version`` and ``incomplete`` are kept for readers of the files from
    before the common model; each requirement also lists its ``details`` (the evidence).
    """
    data = run.result.as_json()
    data.setdefault("reason", None)
    for entry, verdict in zip(data["requirements"], run.result.requirements, strict=True):
        entry["details"] = evidence(verdict, run.findings)
    data.update(
        {
            "tool": TOOL,
            "catalogue_version": run.catalogue.version,
            "incomplete": run.incomplete,
            "settings": settings_json(run.settings),
            "scenarios": [_scenario_json(s) for s in run.scenarios],
        }
    )
    return data
