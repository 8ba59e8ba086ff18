"""Reading the files a client-check run wrote, held to their contracts.

Every test that makes client-check write its reports reads them through :func:`read_reports`, so
every ``client-results.json`` a test writes is validated against ``schemas/results.json`` and
every ``client-junit.xml`` is parsed (one test case per client requirement).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from harness import schemas
from harness.render.client_report import HTML_NAME, JSON_NAME, JUNIT_NAME

__all__ = ["read_reports"]


def read_reports(report_dir: Path, code: int | None = None) -> dict[str, Any]:
    """The run's ``client-results.json`` after checking it, the JUnit file and the HTML exist;
    with ``code``, the exit status the JSON records must be it."""
    data: dict[str, Any] = json.loads((report_dir / JSON_NAME).read_text(encoding="utf-8"))
    violations = schemas.validate("results", data)
    assert violations == [], f"{JSON_NAME} breaks schemas/results.json: {violations[:3]}"
    assert data["mode"] == "client"
    if code is not None:
        assert data["exit_status"] == code
    assert (data["verdict"] == "CONFORMANT") is (data["exit_status"] == 0)
    assert (data["verdict"] == "INCOMPLETE") is (data["complete"] is False)
    junit = ET.parse(report_dir / JUNIT_NAME).getroot()
    named = [
        prop.get("value")
        for case in junit.iter("testcase")
        for prop in case.iter("property")
        if prop.get("name") == "requirement"
    ]
    assert named == [r["id"] for r in data["requirements"]]
    failures = {r["id"] for r in data["requirements"] if r["verdict"] == "failed"}
    assert int(junit.get("failures", "-1")) == len(failures)
    assert (report_dir / HTML_NAME).is_file()
    return data
