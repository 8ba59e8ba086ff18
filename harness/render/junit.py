"""junit.xml from a run: one test case per requirement, grouped by area (every mode).

A CI system shows each requirement as a test: failed requirements as failures (MUST and SHOULD;
an INFO requirement never fails); a requirement that decides the verdict (a MUST in scope; with
--strict a SHOULD too) and was not tested as an error, because it makes the run INCOMPLETE; every
other requirement that did not pass (not tested, not applicable, a known failure, an
observation) as skipped with its reason. A requirement out of the run's scope (the selection
left it out, or the target lacks what it needs) and not tested is skipped with
``type="out_of_scope"``, a message ``out of scope: <reason>`` and a property ``scope`` =
``out of scope``. The tests or scenarios behind a requirement are listed in its properties; the
verdict and its reason are properties of every suite, with ``out_of_scope``, how many of the
suite's requirements are out of scope.

Times, in seconds: a test case's ``time`` is its requirement's duration (the wall time of the
tests that passed or failed it, :attr:`~harness.core.results.RequirementResult.duration_s`; 0
for one nothing tested, out of scope ones included); a suite's is the wall time of the distinct
tests behind its cases, each counted once; ``<testsuites time>`` is the run's duration.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from harness import redact
from harness.core.results import RunResult


def render(result: RunResult) -> str:
    suites = ET.Element("testsuites", name=f"edusphere-conformance {result.mode}")
    by_area: dict[str, ET.Element] = {}
    counts: dict[str, dict[str, int]] = {}
    run_properties: dict[str, ET.Element] = {}
    out_of_scope: dict[str, int] = {}
    timed: dict[str, dict[str, float]] = {}  # area -> test -> its wall time
    deciding = {id(r) for r in result.untested}
    for r in result.requirements:
        area = r.requirement.area
        suite = by_area.get(area)
        if suite is None:
            title = result.catalogue.areas.get(area, area)
            suite = by_area[area] = ET.SubElement(suites, "testsuite", name=f"{area}: {title}")
            counts[area] = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
            run_props = run_properties[area] = ET.SubElement(suite, "properties")
            out_of_scope[area] = 0
            timed[area] = {}
            ET.SubElement(run_props, "property", name="verdict", value=result.verdict_word)
            if result.reason:
                ET.SubElement(
                    run_props, "property", name="reason", value=redact.redact(result.reason)
                )
        counts[area]["tests"] += 1
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{result.mode}.{area}",
            name=f"{r.requirement.id} ({r.requirement.level}) {r.requirement.statement}",
            time=f"{r.duration_s:.3f}",
        )
        timed[area].update(r.test_durations)
        props = ET.SubElement(case, "properties")
        ET.SubElement(props, "property", name="requirement", value=r.requirement.id)
        ET.SubElement(props, "property", name="level", value=r.requirement.level)
        ET.SubElement(props, "property", name="verdict", value=r.verdict)
        if r.out_of_scope:
            ET.SubElement(props, "property", name="scope", value="out of scope")
        if r.tests:
            ET.SubElement(props, "property", name="tests", value=" ".join(r.tests))
        reason = redact.redact(r.reason or "")
        if r.out_of_scope:  # left out by the selection, or the target lacks what it needs
            counts[area]["skipped"] += 1
            out_of_scope[area] += 1
            why = f"out of scope: {redact.redact(r.scope_reason)}"
            ET.SubElement(case, "skipped", message=why[:500], type="out_of_scope")
        elif r.verdict == "failed" and r.requirement.level != "INFO":
            counts[area]["failures"] += 1
            failure = ET.SubElement(case, "failure", message=reason[:500], type=r.verdict)
            failure.text = "\n".join(redact.redact(d) for d in r.details) or reason
        elif id(r) in deciding:  # not tested, and it decides the verdict: INCOMPLETE
            counts[area]["errors"] += 1
            error = ET.SubElement(case, "error", message=reason[:500], type="not_tested")
            error.text = f"not tested; the run is not conformant until it is: {reason}"
        elif r.verdict != "passed":  # not tested, n/a, a known failure, or an INFO observation
            counts[area]["skipped"] += 1
            ET.SubElement(case, "skipped", message=reason[:500] or r.verdict)
        if r.observations:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(redact.redact(o) for o in r.observations)
    for area, suite in by_area.items():
        for key, value in counts[area].items():
            suite.set(key, str(value))
        suite.set("time", f"{sum(timed[area].values()):.3f}")
        ET.SubElement(
            run_properties[area], "property", name="out_of_scope", value=str(out_of_scope[area])
        )
    keys = ("tests", "failures", "errors", "skipped")
    total = {k: sum(c[k] for c in counts.values()) for k in keys}
    for key, value in total.items():
        suites.set(key, str(value))
    suites.set("time", f"{result.duration_s:.3f}")
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
