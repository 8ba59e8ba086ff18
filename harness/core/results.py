"""One results model for every mode: findings folded into one verdict per requirement.

Each mode gathers evidence its own way (the server suites as pytest test records, client-check as
findings of its scenarios) and turns it into :class:`Finding` objects; :func:`fold` makes the
verdicts, :class:`RunResult` holds them, and the renderers in :mod:`harness.render` (JSON, JUnit,
terminal, HTML, SVG) read the model and never compute a verdict.

No I/O here: files are read and written by the callers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.core import catalogue as cat_mod
from harness.core.catalogue import LEVELS, Catalogue, Requirement

VERDICTS = ("passed", "failed", "not_tested", "known")
Mode = Literal["server", "client"]
FindingVerdict = Literal["passed", "failed", "not_tested"]

#: Exit statuses, the same in every mode (README, "Exit status").
EXIT_OK, EXIT_NONCONFORMANT, EXIT_INCOMPLETE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_USAGE = EXIT_INCOMPLETE


@dataclass
class TestRecord:
    """What one server-mode test contributed: its outcome and the requirements it speaks for."""

    __test__ = False  # not a pytest test class

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
    #: What went over the wire (:meth:`harness.core.diagnosis.Traffic.as_dict`).
    traffic: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def reason(self) -> str:
        """Why the test failed, in one line."""
        if self.expected:
            return f"{self.kind}: expected {self.expected}; actual {self.actual}"
        return self.message

    def findings(self) -> list[Finding]:
        """The record as evidence: a failure against each requirement it blames, a pass for
        each requirement of a passing test, and "not tested" for the others it names."""
        out: list[Finding] = []
        for rid in self.failed_requirements:
            out.append(Finding(rid, "failed", self.reason, self.nodeid, self))
        for rid in self.requirements:
            if rid in self.failed_requirements:
                continue
            verdict: FindingVerdict = "passed" if self.outcome == "passed" else "not_tested"
            out.append(Finding(rid, verdict, self.message, self.nodeid, self))
        return out


@dataclass(frozen=True)
class Finding:
    """One piece of evidence about one requirement, from one test or scenario (``source``)."""

    requirement: str
    verdict: FindingVerdict
    detail: str = ""
    source: str = ""
    record: TestRecord | None = field(default=None, compare=False, repr=False)
    #: Client mode: the connection attempt (its index in the scenario) the finding is about.
    attempt: int | None = None


@dataclass
class RequirementResult:
    requirement: Requirement
    verdict: str
    tests: list[str]
    reason: str | None = None
    fixed: bool = False
    observations: list[str] = field(default_factory=list)
    failures: list[TestRecord] = field(default_factory=list)
    #: Every finding's detail, failures first (client-check shows them all).
    details: list[str] = field(default_factory=list)

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


def parse_baseline(data: Mapping[str, Any], where: str, catalogue: Catalogue) -> dict[str, str]:
    """``[[known]] id = "..." reason = "..."`` entries: requirement id -> reason or link."""
    unknown = set(data) - {"known"}
    if unknown:
        raise BaselineError(
            f"{where}: unknown key {sorted(unknown)[0]!r} (expected [[known]] entries)"
        )
    known: dict[str, str] = {}
    for i, entry in enumerate(data.get("known", [])):
        if not isinstance(entry, dict) or "id" not in entry:
            raise BaselineError(f"{where}: known[{i}]: needs an id")
        rid = str(entry["id"])
        if rid not in catalogue:
            raise BaselineError(f"{where}: known[{i}]: {rid} is not in the catalogue")
        reason = entry.get("reason") or entry.get("link")
        if not reason:
            raise BaselineError(f"{where}: known[{i}] ({rid}): give a reason or a link")
        known[rid] = str(reason)
    return known


def fold(
    findings: Iterable[Finding],
    requirements: Sequence[Requirement],
    *,
    selected: set[str] | None = None,
    baseline: Mapping[str, str] | None = None,
    observations: Mapping[str, Sequence[str]] | None = None,
    nothing_ran: str = "no test ran",
) -> list[RequirementResult]:
    """One verdict per requirement, the same rules in every mode.

    ``failed`` if any finding failed it, else ``passed`` if any passed it, else ``not_tested``
    with the reasons given (a skip is never a pass). A baselined failure is ``known``; a
    baselined pass is ``fixed``.
    """
    by_req: dict[str, list[Finding]] = {}
    for finding in findings:
        by_req.setdefault(finding.requirement, []).append(finding)
    baseline = baseline or {}
    observations = observations or {}
    results: list[RequirementResult] = []
    for req in requirements:
        mine = by_req.get(req.id, [])
        failures = [f for f in mine if f.verdict == "failed"]
        passes = [f for f in mine if f.verdict == "passed"]
        sources = sorted({f.source for f in mine if f.source})
        fixed = False
        reason: str | None
        if failures:
            verdict, reason = "failed", failures[0].detail
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
                reason = nothing_ran
            else:
                why = sorted({f.detail for f in mine if f.detail})
                reason = "; ".join(why) or "no test ran to completion"
        records: list[TestRecord] = []
        for f in failures:
            if f.record is not None and all(f.record is not r for r in records):
                records.append(f.record)
        details = [f.detail for f in (*failures, *passes) if f.detail]
        results.append(
            RequirementResult(
                req,
                verdict,
                sources,
                reason,
                fixed,
                list(dict.fromkeys(observations.get(req.id, ()))),
                records,
                details,
            )
        )
    return results


@dataclass
class RunResult:
    """A run's verdicts, whatever the mode. Renderers read this and nothing else."""

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
    #: Why the run is incomplete, in one line.
    reason: str | None = None
    mode: Mode = "server"
    interrupted: bool = False

    def summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {lvl: dict.fromkeys(VERDICTS, 0) for lvl in LEVELS}
        for r in self.requirements:
            out[r.requirement.level][r.verdict] += 1
        return out

    def failed(self, level: str) -> list[RequirementResult]:
        return [
            r for r in self.requirements if r.verdict == "failed" and r.requirement.level == level
        ]

    def by_id(self, rid: str) -> RequirementResult:
        for r in self.requirements:
            if r.requirement.id == rid:
                return r
        raise KeyError(rid)

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

    @property
    def exit_status(self) -> int:
        """0 conformant, 1 not conformant, 2 incomplete, 130 interrupted (every mode)."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if not self.complete:
            return EXIT_INCOMPLETE
        return EXIT_OK if self.conformant else EXIT_NONCONFORMANT

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "harness": self.harness_version,
            "catalogue": self.catalogue.version,
            "mode": self.mode,
            "target": self.target,
            "started": self.started,
            "duration_s": round(self.duration_s, 3),
            "strict": self.strict,
            "conformant": self.conformant,
            "complete": self.complete,
            "verdict": self.verdict_word,
            "exit_status": self.exit_status,
            "summary": self.summary(),
            "requirements": [r.as_json() for r in self.requirements],
        }
        if self.reason:
            out["reason"] = self.reason
        return out

    def dumps(self) -> str:
        return json.dumps(self.as_json(), indent=2, ensure_ascii=False) + "\n"


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
    """The server mode's fold: test records into per-requirement verdicts.

    A :class:`~harness.core.failures.ConformanceFailure` names the requirement it broke; any
    other failure is attributed to every requirement of the test. Observations of a
    requirement come from any test (a refusal in a ROOM test shows the refusal style of
    AUTH-010 too), once each.
    """
    cat = catalogue or cat_mod.load()
    recs = list(records)
    observations: dict[str, list[str]] = {}
    for rec in recs:
        for rid, texts in rec.observations.items():
            observations.setdefault(rid, []).extend(texts)
    results = fold(
        (f for rec in recs for f in rec.findings()),
        cat.scoped(scope),
        selected=selected,
        baseline=baseline,
        observations=observations,
    )
    return RunResult(
        catalogue=cat,
        requirements=results,
        target=target,
        started=started,
        duration_s=duration_s,
        harness_version=harness_version,
        strict=strict,
        tests=recs,
        mode="server" if scope == "server" else "client",
    )
