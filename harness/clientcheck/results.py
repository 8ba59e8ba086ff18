"""The result model of a client-check run: recorded scenarios judged by the policy.

Reports (HTML, JSON, the terminal summary) render this model and nothing else. Every string that
came from the client (paths, frames, output) is redacted (``harness.redact``) on the way in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness import redact
from harness.clientcheck.frames import inspect_frame
from harness.clientcheck.policy import (
    AttemptObs,
    Finding,
    FrameObs,
    Outcome,
    PolicyParams,
    RequirementVerdict,
    TimelineAnalysis,
    analyse_timeline,
    check_frames,
    check_paths,
    fold_verdicts,
)
from harness.clientcheck.requirements import ClientCatalogue
from harness.clientcheck.runner import ScenarioRun
from harness.clientcheck.scenarios import Settings

__all__ = [
    "AttemptResult",
    "FrameResult",
    "RunResult",
    "ScenarioResult",
    "evaluate",
    "summarise",
]

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
    verdicts: dict[str, RequirementVerdict]
    observed_until_ms: float
    client_exit_status: int | None
    client_exited_ms: float | None
    incomplete: str | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class RunResult:
    settings: Settings
    catalogue: ClientCatalogue
    scenarios: tuple[ScenarioResult, ...]
    verdicts: dict[str, RequirementVerdict]
    incomplete: str | None

    @property
    def failed_musts(self) -> list[str]:
        return [
            r.id
            for r in self.catalogue.requirements
            if r.level == "MUST" and self.verdicts[r.id].verdict == "failed"
        ]

    @property
    def exit_status(self) -> int:
        """0 when no MUST failed and every scenario ran to its end, else 1."""
        return 1 if self.failed_musts or self.incomplete else 0

    def to_json(self) -> dict[str, Any]:
        return _run_json(self)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"


def _clip(text: str) -> str:
    text = redact.redact(text)
    return text if len(text) <= _FRAME_SHOWN else text[: _FRAME_SHOWN - 3] + "..."


def _frame_text(data: str | bytes) -> str:
    if isinstance(data, bytes):
        return f"<binary, {len(data)} bytes>"
    return _clip(data)


def evaluate(
    run: ScenarioRun, settings: Settings, requirement_ids: Sequence[str]
) -> ScenarioResult:
    """Judge one recorded scenario."""
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
    findings = [Finding(f.requirement, f.verdict, _clip(f.detail), f.attempt) for f in findings]
    scenario = run.scenario
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
        verdicts=fold_verdicts(findings, requirement_ids),
        observed_until_ms=run.observed_until_ms,
        client_exit_status=run.client_exit_status,
        client_exited_ms=run.client_exited_ms,
        incomplete=run.incomplete,
        notes=tuple(_clip(n) for n in run.notes),
    )


def summarise(
    settings: Settings,
    catalogue: ClientCatalogue,
    scenarios: Sequence[ScenarioResult],
    incomplete: str | None,
) -> RunResult:
    """Fold every scenario's findings into one verdict per client requirement."""
    all_findings = [
        Finding(f.requirement, f.verdict, f"[{s.name}] {f.detail}", f.attempt)
        for s in scenarios
        for f in s.findings
    ]
    verdicts = fold_verdicts(all_findings, catalogue.ids)
    for rid, verdict in list(verdicts.items()):
        if verdict.verdict == "not_tested" and not [
            f for f in all_findings if f.requirement == rid
        ]:
            verdicts[rid] = RequirementVerdict(rid, "not_tested", ("no scenario run exercises it",))
    return RunResult(settings, catalogue, tuple(scenarios), verdicts, incomplete)


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
            rid: {"verdict": v.verdict, "details": list(v.details)} for rid, v in s.verdicts.items()
        },
    }


def _run_json(result: RunResult) -> dict[str, Any]:
    return {
        "tool": "edusphere-conformance client-check",
        "catalogue_version": result.catalogue.version,
        "exit_status": result.exit_status,
        "incomplete": result.incomplete,
        "settings": settings_json(result.settings),
        "requirements": [
            {
                "id": r.id,
                "level": r.level,
                "statement": r.statement,
                "source": r.source,
                "verdict": result.verdicts[r.id].verdict,
                "details": list(result.verdicts[r.id].details),
            }
            for r in result.catalogue.requirements
        ],
        "scenarios": [_scenario_json(s) for s in result.scenarios],
    }
