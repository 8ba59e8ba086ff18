"""junit.xml from a run: one test case per requirement, grouped by area (every mode).

A CI system shows each requirement as a test: failed requirements as failures (MUST and SHOULD;
an INFO requirement never fails), not-tested ones as skipped with their reason. The tests or
scenarios behind a requirement are listed in its properties.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from harness import redact
from harness.core.results import RunResult


def render(result: RunResult) -> str:
    suites = ET.Element("testsuites", name=f"edusphere-conformance {result.mode}")
    by_area: dict[str, ET.Element] = {}
    counts: dict[str, dict[str, int]] = {}
    for r in result.requirements:
        area = r.requirement.area
        suite = by_area.get(area)
        if suite is None:
            title = result.catalogue.areas.get(area, area)
            suite = by_area[area] = ET.SubElement(suites, "testsuite", name=f"{area}: {title}")
            counts[area] = {"tests": 0, "failures": 0, "skipped": 0}
        counts[area]["tests"] += 1
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{result.mode}.{area}",
            name=f"{r.requirement.id} ({r.requirement.level}) {r.requirement.statement}",
        )
        props = ET.SubElement(case, "properties")
        ET.SubElement(props, "property", name="requirement", value=r.requirement.id)
        ET.SubElement(props, "property", name="level", value=r.requirement.level)
        ET.SubElement(props, "property", name="verdict", value=r.verdict)
        if r.tests:
            ET.SubElement(props, "property", name="tests", value=" ".join(r.tests))
        reason = redact.redact(r.reason or "")
        if r.verdict == "failed" and r.requirement.level != "INFO":
            counts[area]["failures"] += 1
            failure = ET.SubElement(case, "failure", message=reason[:500], type=r.verdict)
            failure.text = "\n".join(redact.redact(d) for d in r.details) or reason
        elif r.verdict != "passed":  # not tested, a known failure, or an INFO observation
            counts[area]["skipped"] += 1
            ET.SubElement(case, "skipped", message=reason[:500] or r.verdict)
        if r.observations:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(redact.redact(o) for o in r.observations)
    for area, suite in by_area.items():
        for key, value in counts[area].items():
            suite.set(key, str(value))
        suite.set("errors", "0")
    total = {k: sum(c[k] for c in counts.values()) for k in ("tests", "failures", "skipped")}
    for key, value in total.items():
        suites.set(key, str(value))
    suites.set("errors", "0")
    suites.set("time", f"{result.duration_s:.3f}")
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
