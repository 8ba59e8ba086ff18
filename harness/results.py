"""The results model: one object per run, rendered as results.json, the terminal summary and the
HTML report. Renderers never compute verdicts; they read this model.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import catalogue as cat_mod
from harness.catalogue import LEVELS, Catalogue, Requirement

VERDICTS = ("passed", "failed", "not_tested", "known")


@dataclass
class TestRecord:
    """What one test contributed: its outcome and the requirements it speaks for."""

    nodeid: str
    requirements: tuple[str, ...]
    outcome: str  # passed | failed | skipped
    failed_requirements: tuple[str, ...] = ()
    kind: str = ""  # "wrong answer" | "timeout" | "error"
    expected: str = ""
    actual: str = ""
    message: str = ""
    transcript: list[dict[str, Any]] = field(default_factory=list)
    observations: dict[str, list[str]] = field(default_factory=dict)
    duration_s: float = 0.0


@dataclass
class RequirementResult:
    requirement: Requirement
    verdict: str
    tests: list[str]
    reason: str | None = None
    fixed: bool = False
    observations: list[str] = field(default_factory=list)
    failures: list[TestRecord] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.requirement.id,
            "level": self.requirement.level,
            "statement": self.requirement.statement,
            "verdict": self.verdict,
            "tests": self.tests,
            "reason": self.reason,
            "area": self.requirement.area,
            "source": self.requirement.source,
        }
        if self.fixed:
            out["fixed"] = True
        if self.observations:
            out["observations"] = self.observations
        return out


class BaselineError(Exception):
    """A baseline file that cannot be used; one line."""


def load_baseline(path: str | Path, catalogue: Catalogue) -> dict[str, str]:
    """``[[known]] id = "..." reason = "..."`` entries: requirement id -> reason or link."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such baseline file") from None
    except tomllib.TOMLDecodeError as exc:
        raise BaselineError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise BaselineError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read: {exc.strerror}") from None
    unknown = set(data) - {"known"}
    if unknown:
        raise BaselineError(
            f"{path}: unknown key {sorted(unknown)[0]!r} (expected [[known]] entries)"
        )
    known: dict[str, str] = {}
    for i, entry in enumerate(data.get("known", [])):
        if not isinstance(entry, dict) or "id" not in entry:
            raise BaselineError(f"{path}: known[{i}]: needs an id")
        rid = str(entry["id"])
        if rid not in catalogue:
            raise BaselineError(f"{path}: known[{i}]: {rid} is not in the catalogue")
        reason = entry.get("reason") or entry.get("link")
        if not reason:
            raise BaselineError(f"{path}: known[{i}] ({rid}): give a reason or a link")
        known[rid] = str(reason)
    return known


@dataclass
class RunResult:
    catalogue: Catalogue
    requirements: list[RequirementResult]
    target: str
    started: str
    duration_s: float
    harness_version: str
    strict: bool = False
    tests: list[TestRecord] = field(default_factory=list)
    #: False when the run stopped before its tests finished (unreachable target, interrupt):
    #: then there is no verdict, however few failures were seen.
    complete: bool = True

    def summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {lvl: dict.fromkeys(VERDICTS, 0) for lvl in LEVELS}
        for r in self.requirements:
            out[r.requirement.level][r.verdict] += 1
        return out

    def failed(self, level: str) -> list[RequirementResult]:
        return [
            r for r in self.requirements if r.verdict == "failed" and r.requirement.level == level
        ]

    @property
    def conformant(self) -> bool:
        if not self.complete or self.failed("MUST"):
            return False
        return not (self.strict and self.failed("SHOULD"))

    @property
    def verdict_word(self) -> str:
        if not self.complete:
            return "INCOMPLETE"
        return "CONFORMANT" if self.conformant else "NON-CONFORMANT"

    def as_json(self) -> dict[str, Any]:
        return {
            "harness": self.harness_version,
            "catalogue": self.catalogue.version,
            "target": self.target,
            "started": self.started,
            "duration_s": round(self.duration_s, 3),
            "strict": self.strict,
            "conformant": self.conformant,
            "complete": self.complete,
            "summary": self.summary(),
            "requirements": [r.as_json() for r in self.requirements],
        }

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(self.as_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )

    def terminal_summary(self) -> list[str]:
        summary = self.summary()
        lines = [
            f"{'level':<8}{'passed':>8}{'failed':>8}{'not tested':>12}{'known':>7}",
        ]
        for lvl in LEVELS:
            s = summary[lvl]
            lines.append(
                f"{lvl:<8}{s['passed']:>8}{s['failed']:>8}{s['not_tested']:>12}{s['known']:>7}"
            )
        for r in self.requirements:
            if r.verdict == "failed" and r.requirement.level != "INFO":
                lines.append(f"FAILED {r.requirement.id} ({r.requirement.level}): {r.reason or ''}")
            if r.fixed:
                lines.append(f"FIXED  {r.requirement.id}: passes now; remove it from the baseline")
        strict = " (strict)" if self.strict else ""
        lines.append(f"verdict: {self.verdict_word}{strict} against {self.target}")
        return lines


def aggregate(
    records: Iterable[TestRecord],
    *,
    catalogue: Catalogue | None = None,
    selected: set[str] | None = None,
    baseline: Mapping[str, str] | None = None,
    scope: str = "server",
    target: str = "",
    started: str = "",
    duration_s: float = 0.0,
    harness_version: str = "",
    strict: bool = False,
) -> RunResult:
    """Turn test records into per-requirement verdicts.

    A requirement is ``failed`` if a test failure is attributed to it (a
    :class:`~harness.verify.ConformanceFailure` names the requirement it broke; any other
    failure is attributed to every requirement of the test), ``passed`` if a test naming it
    passed, else ``not_tested`` with the skip reasons. A baselined failure is ``known``.
    """
    cat = catalogue or cat_mod.load()
    recs = list(records)
    baseline = baseline or {}
    results: list[RequirementResult] = []
    for req in cat.scoped(scope):
        mine = [t for t in recs if req.id in t.requirements or req.id in t.failed_requirements]
        failures = [t for t in mine if req.id in t.failed_requirements]
        passes = [t for t in mine if t.outcome == "passed" and req.id in t.requirements]
        # Observations of a requirement come from any test (a refusal in a ROOM test shows the
        # refusal style of AUTH-010 too), once each.
        observations = list(dict.fromkeys(o for t in recs for o in t.observations.get(req.id, [])))
        tests = sorted({t.nodeid for t in mine})
        fixed = False
        if failures:
            verdict = "failed"
            first = failures[0]
            reason = (
                f"{first.kind}: expected {first.expected}; actual {first.actual}"
                if first.expected
                else first.message
            )
            if req.id in baseline:
                verdict, reason = "known", f"known failure ({baseline[req.id]}): {reason}"
        elif passes:
            verdict, reason = "passed", None
            if req.id in baseline:
                fixed, reason = True, "fixed: remove it from the baseline"
        else:
            verdict = "not_tested"
            if selected is not None and req.id not in selected:
                reason = "not selected (--only)"
            elif not mine:
                reason = "no test ran"
            else:
                why = sorted({t.message for t in mine if t.message})
                reason = "; ".join(why) or "no test ran to completion"
        results.append(
            RequirementResult(req, verdict, tests, reason, fixed, observations, failures)
        )
    # Failures attributed to a requirement outside this scope's list are kept with the tests.
    return RunResult(
        catalogue=cat,
        requirements=results,
        target=target,
        started=started,
        duration_s=duration_s,
        harness_version=harness_version,
        strict=strict,
        tests=recs,
    )
