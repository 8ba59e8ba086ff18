"""The CLI's progress output: a line per catalogue area as it completes, then the summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core import catalogue as cat_mod
from harness.core.results import RunResult
from harness.options import requirement_ids
from harness.render.terminal import summary_lines


class Progress:
    """The CLI's output: a line per area as it completes, then the summary table."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.expected: dict[str, int] = {}  # area name -> tests collected
        self.done: dict[str, dict[str, int]] = {}
        self.key_of: dict[str, str] = {}  # nodeid -> area name
        self.printed: set[str] = set()

    @staticmethod
    def write(line: str) -> None:
        print(line, flush=True)

    def collected(self, items: list[pytest.Item]) -> None:
        cat = cat_mod.load()
        for item in items:
            ids = requirement_ids(item)
            module = item.nodeid.split("::")[0]
            key = cat.areas.get(cat[ids[0]].area, module) if ids else Path(module).stem
            self.key_of[item.nodeid] = key
            self.expected[key] = self.expected.get(key, 0) + 1

    def record(self, report: pytest.TestReport) -> None:
        if report.when != "call" and not (report.when == "setup" and not report.passed):
            return
        key = self.key_of.get(report.nodeid, Path(report.nodeid.split("::")[0]).stem)
        counts = self.done.setdefault(key, {"passed": 0, "failed": 0, "skipped": 0})
        counts[report.outcome] = counts.get(report.outcome, 0) + 1
        if sum(counts.values()) >= self.expected.get(key, 10**9):
            self.flush(key)

    def flush(self, key: str) -> None:
        if key in self.printed:
            return
        self.printed.add(key)
        c = self.done.get(key, {})
        total = sum(c.values())
        parts = [f"{c.get('passed', 0)} passed"]
        if c.get("failed"):
            parts.append(f"{c['failed']} failed")
        if c.get("skipped"):
            parts.append(f"{c['skipped']} not tested")
        self.write(f"  {key:<32} {total:>3} tests: {', '.join(parts)}")

    def finish(self, result: RunResult | None, report_dir: str | None) -> None:
        for key in self.done:
            self.flush(key)
        if result is None:
            return
        self.write("")
        for line in summary_lines(result):
            self.write(line)
        if report_dir:
            self.write(f"reports: {report_dir}/compliance.html, junit.xml, results.json")
