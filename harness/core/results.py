"""One results model for every mode: findings folded into one verdict per requirement.

Each mode gathers evidence its own way (the server suites as pytest test records, client-check as
findings of its scenarios) and turns it into :class:`Finding` objects; :func:`fold` makes the
verdicts, :class:`RunResult` holds them, and the renderers in :mod:`harness.render` (JSON, JUnit,
terminal, HTML, SVG) read the model and never compute a verdict.

No I/O here: files are read and written by the callers.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.core import diagnosis
from harness.core.catalogue import LEVELS, NEEDS, Catalogue, Requirement
from harness.core.failures import UsageError

VERDICTS = ("passed", "failed", "not_tested", "known", "not_applicable")
#: The keys of :meth:`RunResult.summary`'s counts per level: the verdicts, then the requirements
#: out of the run's scope (not selected, or needing what the target lacks) that nothing tested,
#: counted apart from ``not_tested`` (their verdict stays ``not_tested``).
OUT_OF_SCOPE = "out_of_scope"
COUNTS = (*VERDICTS, OUT_OF_SCOPE)
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
    #: What the test measured for the report, per requirement (LOAD-004's delivery figures):
    #: plain data, rendered as tables and plots.
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Requirements of a failed test that it proved met before failing (passed, not untested).
    held_requirements: tuple[str, ...] = ()
    #: The wall time of the test's call, in seconds (a scheduled test's real run, not the wait
    #: for its outcome; under pytest-xdist, without the wait for the run's lock).
    duration_s: float = 0.0

    @property
    def name(self) -> str:
        """The test's name without its module: ``test_edit_is_broadcast[alice]``."""
        return self.nodeid.rsplit("::", 1)[-1]

    @property
    def speaks_for(self) -> tuple[str, ...]:
        """The requirements the test gave evidence on: its own, then any other its failure
        blamed."""
        return tuple(dict.fromkeys((*self.requirements, *self.failed_requirements)))

    def as_json(self) -> dict[str, Any]:
        """The test in results.json's ``tests``."""
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "duration_s": round(self.duration_s, 3),
            "requirements": list(self.speaks_for),
        }

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
            held = self.outcome == "passed" or rid in self.held_requirements
            verdict: FindingVerdict = "passed" if held else "not_tested"
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
    #: False when the run's selection (``--only``, ``--scenario``) left it out, or the target
    #: lacks what it ``needs``: then it does not count towards the verdict.
    selected: bool = True
    #: What the tests measured for it (:attr:`TestRecord.figures`), one entry per test.
    figures: list[dict[str, Any]] = field(default_factory=list)
    #: False when the target lacks what the requirement ``needs`` (``nodes``).
    applies: bool = True
    #: The wall time, in seconds, of each test (server mode: node id; client mode: scenario)
    #: that tested it: that passed or failed it. A test that was skipped, or stopped before it
    #: came to the requirement, did not test it.
    test_durations: dict[str, float] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """The wall time of the tests that tested it, summed (a test that speaks for several
        requirements counts for each); 0 when none did."""
        return sum(self.test_durations.values())

    @property
    def out_of_scope(self) -> bool:
        """Whether the run's scope left it out (:attr:`selected` is False: the selection, or
        what the target lacks) and nothing tested it: counted as "out of scope", not as "not
        tested" (its verdict stays ``not_tested``). One that a test of the run passed or failed
        anyway keeps that verdict."""
        return not self.selected and self.verdict == "not_tested"

    @property
    def counted_as(self) -> str:
        """Its key in the counts (:data:`COUNTS`): its verdict, or ``out_of_scope``."""
        return OUT_OF_SCOPE if self.out_of_scope else self.verdict

    @property
    def scope_reason(self) -> str:
        """Why it is out of scope, without the ``not tested:`` prefix of its reason
        (``needs nodes = [...] in the target file ...``, ``not selected (--only)``)."""
        return (self.reason or "out of the run's scope").removeprefix("not tested: ")

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
            "duration_s": round(self.duration_s, 3),
        }
        if self.fixed:
            out["fixed"] = True
        if self.observations:
            out["observations"] = self.observations
        if not self.applies:
            out["applies"] = False
        if not self.selected:
            out["in_scope"] = False
        if self.requirement.rationale:
            out["rationale"] = self.requirement.rationale
        if self.figures:
            out["figures"] = self.figures
        if self.failures:
            out["failed_by"] = sorted({record.nodeid for record in self.failures})
        return out


class BaselineError(UsageError):
    """A baseline file that cannot be used; one line."""


@dataclass(frozen=True)
class Baseline:
    """A team's accepted deviations: requirement id -> reason or link.

    ``known``: failures the team knows about (``[[known]]``): they do not fail the run.
    ``not_applicable``: requirements the team cannot test against its deployment
    (``[[not_applicable]]``, e.g. no way to mint expired tokens): not tested, they do not make
    the run INCOMPLETE. A failure of such a requirement, if it is tested after all, still counts.
    """

    known: Mapping[str, str] = field(default_factory=dict)
    not_applicable: Mapping[str, str] = field(default_factory=dict)


BASELINE_KEYS = ("known", "not_applicable")


def parse_baseline(data: Mapping[str, Any], where: str, catalogue: Catalogue) -> Baseline:
    """``[[known]]`` and ``[[not_applicable]]`` entries: an ``id``, a ``reason`` or ``link``."""
    unknown = set(data) - set(BASELINE_KEYS)
    if unknown:
        raise BaselineError(
            f"{where}: unknown key {sorted(unknown)[0]!r} "
            "(expected [[known]] and [[not_applicable]] entries)"
        )
    tables: dict[str, dict[str, str]] = {}
    for key in BASELINE_KEYS:
        entries = data.get(key, [])
        if not isinstance(entries, list):
            raise BaselineError(f"{where}: {key}: write entries as [[{key}]] tables")
        found: dict[str, str] = {}
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or "id" not in entry:
                raise BaselineError(f"{where}: {key}[{i}]: needs an id")
            rid = str(entry["id"])
            if rid not in catalogue:
                raise BaselineError(f"{where}: {key}[{i}]: {rid} is not in the catalogue")
            reason = entry.get("reason") or entry.get("link")
            if not reason:
                raise BaselineError(f"{where}: {key}[{i}] ({rid}): give a reason or a link")
            found[rid] = str(reason)
        tables[key] = found
    both = sorted(set(tables["known"]) & set(tables["not_applicable"]))
    if both:
        raise BaselineError(
            f"{where}: {both[0]} is both [[known]] and [[not_applicable]]; keep one"
        )
    return Baseline(tables["known"], tables["not_applicable"])


def fold(
    findings: Iterable[Finding],
    requirements: Sequence[Requirement],
    *,
    selected: set[str] | None = None,
    baseline: Mapping[str, str] | None = None,
    not_applicable: Mapping[str, str] | None = None,
    observations: Mapping[str, Sequence[str]] | None = None,
    nothing_ran: str = "no test ran",
    unselected: str = "not selected (--only)",
    lacking: Collection[str] = (),
    durations: Mapping[str, float] | None = None,
) -> list[RequirementResult]:
    """One verdict per requirement, the same rules in every mode.

    ``durations``: the wall time of each finding's ``source`` (a test, a scenario), in seconds:
    a requirement's :attr:`~RequirementResult.test_durations` are those of the sources that
    passed or failed it.

    ``lacking``: what the target does not offer (catalogue ``needs``, e.g. ``nodes``): a
    requirement that needs it and was not tested is out of the run's scope, with that reason.

    ``failed`` if any finding failed it, else ``passed`` if any passed it, else ``not_tested``
    with the reasons given (a skip is never a pass), or ``not_applicable`` when the baseline
    accepts it as such. A baselined (``known``) failure is ``known``; a pass of a baselined
    requirement (known or not applicable) is ``fixed``: the entry can go.
    """
    by_req: dict[str, list[Finding]] = {}
    for finding in findings:
        by_req.setdefault(finding.requirement, []).append(finding)
    baseline = baseline or {}
    not_applicable = not_applicable or {}
    observations = observations or {}
    durations = durations or {}
    results: list[RequirementResult] = []
    for req in requirements:
        mine = by_req.get(req.id, [])
        failures = [f for f in mine if f.verdict == "failed"]
        passes = [f for f in mine if f.verdict == "passed"]
        sources = sorted({f.source for f in mine if f.source})
        fixed = False
        unmet = req.needs is not None and req.needs in lacking
        in_scope = (selected is None or req.id in selected) and not unmet
        reason: str | None
        if failures:
            verdict, reason = "failed", failures[0].detail
            if req.id in baseline:
                verdict, reason = "known", f"known failure ({baseline[req.id]}): {reason}"
        elif passes:
            verdict, reason = "passed", None
            if req.id in baseline:
                fixed, reason = True, "fixed: remove it from the baseline"
            elif req.id in not_applicable:
                fixed, reason = True, "tested and passed: remove it from [[not_applicable]]"
        else:
            verdict = "not_tested"
            if not in_scope:
                reason = f"not tested: {NEEDS[req.needs]}" if unmet and req.needs else unselected
            elif not mine:
                reason = nothing_ran
            else:
                why = sorted({f.detail for f in mine if f.detail})
                reason = "; ".join(why) or "no test ran to completion"
            if in_scope and req.id in not_applicable:
                verdict = "not_applicable"
                reason = f"not applicable ({not_applicable[req.id]}); {reason}"
        records: list[TestRecord] = []
        for f in failures:
            if f.record is not None and all(f.record is not r for r in records):
                records.append(f.record)
        details = [f.detail for f in (*failures, *passes) if f.detail]
        timed = {
            f.source: durations[f.source] for f in (*failures, *passes) if f.source in durations
        }
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
                in_scope,
                applies=not unmet,
                test_durations=dict(sorted(timed.items())),
            )
        )
    return results


@dataclass
class RunResult:
    """A run's verdicts, whatever the mode. Renderers read this and nothing else.

    The verdict (:attr:`verdict_word`, README "Exit status"):

    - INCOMPLETE when the run stopped before its tests finished (``finished`` is False: an
      unreachable target, an interrupt): no verdict, however few failures were seen;
    - NON-CONFORMANT when a MUST failed (with ``strict``, a SHOULD too);
    - INCOMPLETE when a requirement that decides the verdict (every MUST in scope; with
      ``strict`` every SHOULD too) was not tested and the baseline does not accept it as not
      applicable: a run that tested nothing is never conformant;
    - CONFORMANT otherwise.
    """

    catalogue: Catalogue
    requirements: list[RequirementResult]
    target: str
    started: str
    duration_s: float
    harness_version: str
    strict: bool = False
    tests: list[TestRecord] = field(default_factory=list)
    #: False when the run stopped before its tests finished (unreachable target, interrupt).
    finished: bool = True
    #: Why the run stopped early, in one line.
    stopped_because: str | None = None
    mode: Mode = "server"
    interrupted: bool = False
    #: What the endpoint looks like when it is plainly not a chat endpoint
    #: (:func:`harness.core.diagnosis.diagnose`); shown only with a verdict that is not
    #: CONFORMANT.
    diagnosis: str | None = None
    #: What the run must say loudly whatever its verdict (``tls.verify = false``).
    warnings: list[str] = field(default_factory=list)
    #: How long the run may take, in seconds (``--time-budget``); None: the mode sets none.
    time_budget_s: float | None = None

    @property
    def over_budget(self) -> bool:
        """Whether the run took longer than its time budget."""
        return self.time_budget_s is not None and self.duration_s > self.time_budget_s

    def slowest(self, n: int | None = None) -> list[TestRecord]:
        """The run's tests, the slowest first (the first ``n``; None: all of them)."""
        ordered = sorted(self.tests, key=lambda t: (-t.duration_s, t.nodeid))
        return ordered if n is None else ordered[:n]

    def budget_line(self, shown: int = 5) -> str | None:
        """Over its time budget, the run's duration and its ``shown`` slowest tests, each with
        its requirements and its name, in one line: ``the run took 103.2 s, over its budget of
        20 s; the slowest: LOAD-002 45.1 s (test_lagging_reader_...), ...``. None under it."""
        if not self.over_budget or self.time_budget_s is None:
            return None
        budget = self.time_budget_s
        took = f"{self.duration_s:.3f}"
        for decimals in (1, 2):  # as many as it takes to read as more than the budget
            if float(f"{self.duration_s:.{decimals}f}") > budget:
                took = f"{self.duration_s:.{decimals}f}"
                break
        line = f"the run took {took} s, over its budget of {budget:g} s"
        slowest = [
            f"{id_runs(t.speaks_for) or '-'} {seconds_text(t.duration_s)} ({t.name})"
            for t in self.slowest(shown)
        ]
        return line + (f"; the slowest: {', '.join(slowest)}" if slowest else "")

    def summary(self) -> dict[str, dict[str, int]]:
        """Requirements per level and :data:`COUNTS` key: each verdict, and ``out_of_scope``
        (:attr:`RequirementResult.out_of_scope`, not counted as ``not_tested``). A level's
        counts add up to its number of requirements."""
        out: dict[str, dict[str, int]] = {lvl: dict.fromkeys(COUNTS, 0) for lvl in LEVELS}
        for r in self.requirements:
            out[r.requirement.level][r.counted_as] += 1
        return out

    @property
    def out_of_scope(self) -> list[RequirementResult]:
        """Requirements out of the run's scope that nothing tested (every level)."""
        return [r for r in self.requirements if r.out_of_scope]

    def scope_causes(self) -> list[tuple[str, int]]:
        """Why requirements are out of scope, each cause with its count, the most common
        first: ``[("needs nodes = [...] in the target file ...", 3)]``."""
        return Counter(r.scope_reason for r in self.out_of_scope).most_common()

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
    def deciding_levels(self) -> tuple[str, ...]:
        """The levels whose requirements decide the verdict."""
        return ("MUST", "SHOULD") if self.strict else ("MUST",)

    @property
    def untested(self) -> list[RequirementResult]:
        """Requirements that decide the verdict, are in scope, and were not tested."""
        return [
            r
            for r in self.requirements
            if r.verdict == "not_tested"
            and r.selected
            and r.requirement.level in self.deciding_levels
        ]

    @property
    def tested_nothing(self) -> bool:
        """Whether nothing in the run's scope was tested, nor accepted as not applicable by the
        baseline (``--only NODE`` against a target without ``nodes``, say): such a run is
        never conformant."""
        decided = ("passed", "failed", "known", "not_applicable")
        return not any(r.selected and r.verdict in decided for r in self.requirements)

    @property
    def untested_line(self) -> str | None:
        """The untested requirements that decide the verdict, grouped by cause, in one line:
        ``78 MUST not tested - needs accounts.*.user_id for the claim 'sub' (78)``."""
        untested = self.untested
        if not untested and self.tested_nothing:
            lacking = dict.fromkeys(r.reason or "" for r in self.requirements if not r.applies)
            why = f" ({'; '.join(c for c in lacking if c)})" if any(lacking) else ""
            return f"nothing in the run's scope was tested{why}"
        if not untested:
            return None
        levels = Counter(r.requirement.level for r in untested)
        what = " and ".join(f"{levels[lvl]} {lvl}" for lvl in LEVELS if levels[lvl])
        causes: Counter[str] = Counter()
        for r in untested:
            for cause in dict.fromkeys((r.reason or "no test ran").split("; ")):
                causes[cause.removeprefix("not tested: ")] += 1
        return f"{what} not tested - {grouped(causes.most_common(), ', ')}"

    @property
    def complete(self) -> bool:
        """Whether the run has a verdict: it finished, and either something failed that
        decides the verdict or everything that decides it was tested."""
        return self.verdict_word != "INCOMPLETE"

    @property
    def conformant(self) -> bool:
        return self.verdict_word == "CONFORMANT"

    @property
    def verdict_word(self) -> str:
        if not self.finished:
            return "INCOMPLETE"
        if any(self.failed(level) for level in self.deciding_levels):
            return "NON-CONFORMANT"
        if self.untested or self.tested_nothing:
            return "INCOMPLETE"
        return "CONFORMANT"

    @property
    def reason(self) -> str | None:
        """Why the verdict is what it is when it is not CONFORMANT, in one line: why the run
        stopped, what was not tested, or what the endpoint looks like."""
        if not self.finished:
            return self.stopped_because or "the run stopped before its tests finished"
        word = self.verdict_word
        if word == "INCOMPLETE":
            return self.untested_line
        if word == "NON-CONFORMANT":
            return self.diagnosis
        return None

    @property
    def exit_status(self) -> int:
        """0 conformant, 1 not conformant, 2 incomplete, 130 interrupted (every mode)."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        word = self.verdict_word
        if word == "INCOMPLETE":
            return EXIT_INCOMPLETE
        return EXIT_OK if word == "CONFORMANT" else EXIT_NONCONFORMANT

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "harness": self.harness_version,
            "catalogue": self.catalogue.version,
            "mode": self.mode,
            "target": self.target,
            "started": self.started,
            "duration_s": round(self.duration_s, 3),
        }
        if self.time_budget_s is not None:
            out["time_budget_s"] = self.time_budget_s
            out["over_budget"] = self.over_budget
        out |= {
            "strict": self.strict,
            "conformant": self.conformant,
            "complete": self.complete,
            "verdict": self.verdict_word,
            "exit_status": self.exit_status,
            "summary": self.summary(),
            "requirements": [r.as_json() for r in self.requirements],
        }
        if self.mode == "server":
            out["tests"] = [t.as_json() for t in self.slowest()]
        reason = self.reason
        if reason:
            out["reason"] = reason
        untested = self.untested_line
        if untested:
            out["untested"] = untested
        if self.diagnosis and not self.conformant:
            out["diagnosis"] = self.diagnosis
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out

    def dumps(self) -> str:
        return json.dumps(self.as_json(), indent=2, ensure_ascii=False) + "\n"


def seconds_text(seconds: float) -> str:
    """A test's duration in a few characters: ``45.1 s``, or under a second ``230 ms``."""
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"


def id_runs(ids: Iterable[str]) -> str:
    """Requirement ids in one short word, sorted: three or more consecutive ids of one area as
    a run (``CONV-001..004``), comma-separated: ``AUTH-001,AUTH-003,CONV-001..004``."""
    parsed: list[tuple[str, int, str]] = []
    for rid in dict.fromkeys(ids):
        area, _, number = rid.rpartition("-")
        parsed.append((area, int(number), rid) if area and number.isdigit() else (rid, -1, rid))
    runs: list[list[tuple[str, int, str]]] = []
    for entry in sorted(parsed):
        if runs and entry[1] >= 0 and runs[-1][-1][:2] == (entry[0], entry[1] - 1):
            runs[-1].append(entry)
        else:
            runs.append([entry])
    words: list[str] = []
    for run in runs:
        if len(run) >= 3:
            words.append(f"{run[0][2]}..{run[-1][2].rpartition('-')[2]}")
        else:
            words.extend(rid for _, _, rid in run)
    return ",".join(words)


def grouped(causes: Sequence[tuple[str, int]], sep: str, shown: int = 3) -> str:
    """Causes with their counts, the most common first (``causes`` in that order), the first
    ``shown`` written out: ``needs nodes ... (3), not selected (--only) (2), 1 more causes``."""
    out = [f"{cause} ({n})" for cause, n in causes[:shown]]
    if len(causes) > shown:
        out.append(f"{len(causes) - shown} more causes")
    return sep.join(out)


def aggregate(
    records: Iterable[TestRecord],
    *,
    catalogue: Catalogue,
    selected: set[str] | None = None,
    baseline: Mapping[str, str] | None = None,
    not_applicable: Mapping[str, str] | None = None,
    scope: str = "server",
    target: str = "",
    started: str = "",
    duration_s: float = 0.0,
    harness_version: str = "",
    strict: bool = False,
    lacking: Collection[str] = (),
    time_budget_s: float | None = None,
) -> RunResult:
    """The server mode's fold: test records into per-requirement verdicts.

    A :class:`~harness.core.failures.ConformanceFailure` names the requirement it broke; any
    other failure is attributed to every requirement of the test. Observations of a
    requirement come from any test (a refusal in a ROOM test shows the refusal style of
    AUTH-010 too), once each.
    """
    cat = catalogue
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
        not_applicable=not_applicable,
        observations=observations,
        lacking=lacking,
        durations={rec.nodeid: rec.duration_s for rec in recs},
    )
    for result in results:
        rid = result.requirement.id
        result.figures = [rec.figures[rid] for rec in recs if rid in rec.figures]
    traffic = diagnosis.total(diagnosis.Traffic.from_dict(rec.traffic) for rec in recs)
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
        diagnosis=diagnosis.diagnose(traffic),
        time_budget_s=time_budget_s,
    )


def stopped_before_tests(line: str, **options: Any) -> RunResult:
    """The result of a run that stopped before any test (its provision command, DNS, TLS, no
    answer): INCOMPLETE, every requirement not tested, and ``line`` as its reason. ``options``:
    :func:`aggregate`'s (the target, the selection, ``strict``, when it started)."""
    result = aggregate([], **options)
    result.finished = False
    result.stopped_because = line
    for r in result.requirements:
        if r.verdict == "not_tested" and r.selected:  # out of scope ones keep why
            r.reason = "the run stopped before any test"
    return result
