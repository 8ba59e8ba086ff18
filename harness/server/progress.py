"""The CLI's progress output: a line per catalogue area as it completes, then the summary.

A test skipped because the target lacks what all its requirements need (catalogue ``needs``:
the NODE tests without ``nodes``) counts as "out of scope", not "not tested", as its
requirements do in the summary.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import pytest

from harness import catalogue as cat_mod
from harness import redact
from harness.core.results import RunResult
from harness.render.terminal import summary_lines
from harness.server.options import requirement_ids
from harness.server.records import record_of


class Progress:
    """The CLI's output: a line per area as it completes, then the summary table."""

    def __init__(self, config: pytest.Config, lacking: Collection[str] = ()) -> None:
        self.config = config
        #: What the target does not offer (catalogue ``needs``).
        self.lacking = frozenset(lacking)
        self.expected: dict[str, int] = {}  # area name -> tests collected
        self.done: dict[str, dict[str, int]] = {}
        self.key_of: dict[str, str] = {}  # nodeid -> area name
        #: Tests each of whose requirements needs what the target lacks.
        self.out_of_scope: set[str] = set()
        self.printed: set[str] = set()

    @classmethod
    def take_over(cls, config: pytest.Config, lacking: Collection[str] = ()) -> Progress:
        """The progress output in place of pytest's terminal reporter."""
        reporter = config.pluginmanager.getplugin("terminalreporter")
        if reporter is not None:
            config.pluginmanager.unregister(reporter)
        return cls(config, lacking)

    @staticmethod
    def write(line: str) -> None:
        print(line, flush=True)

    def collect_failed(self, report: pytest.CollectReport) -> None:
        """A module that cannot be collected: its error, in one (redacted, bounded) line."""
        error = redact.redact(str(report.longrepr))[-800:]
        self.write(f"error collecting {report.nodeid}: {error}")

    def collected(self, items: list[pytest.Item]) -> None:
        """The tests that will run (pytest-xdist: on the controller, no item is collected)."""
        cat = cat_mod.load()
        for item in items:
            ids = requirement_ids(item)
            module = item.nodeid.split("::")[0]
            key = cat.areas.get(cat[ids[0]].area, module) if ids else Path(module).stem
            self.key_of[item.nodeid] = key
            self.expected[key] = self.expected.get(key, 0) + 1
            if self._lacks(ids):
                self.out_of_scope.add(item.nodeid)

    def _lacks(self, ids: Collection[str]) -> bool:
        """Whether the target lacks what every one of these requirements needs."""
        cat = cat_mod.load()
        return bool(ids) and all(rid in cat and cat[rid].needs in self.lacking for rid in ids)

    def _out_of_scope(self, report: pytest.TestReport) -> bool:
        if report.nodeid in self.out_of_scope:
            return True
        record = record_of(report)  # with pytest-xdist, the report says what it is about
        return record is not None and self._lacks(record.requirements)

    def record(self, report: pytest.TestReport) -> None:
        if report.when != "call" and not (report.when == "setup" and not report.passed):
            return
        key = self.key_of.get(report.nodeid, Path(report.nodeid.split("::")[0]).stem)
        counts = self.done.setdefault(key, {"passed": 0, "failed": 0, "skipped": 0})
        outcome: str = report.outcome
        if outcome == "skipped" and self._out_of_scope(report):
            outcome = "out_of_scope"
        counts[outcome] = counts.get(outcome, 0) + 1
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
        if c.get("out_of_scope"):
            parts.append(f"{c['out_of_scope']} out of scope")
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
