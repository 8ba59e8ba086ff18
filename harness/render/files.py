"""Writing a run's files: results.json and junit.xml, the same way in every mode."""

from __future__ import annotations

from pathlib import Path

from harness.core.results import RunResult
from harness.render import junit


def write_results_json(result: RunResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(result.dumps(), encoding="utf-8")
    return path


def write_junit(result: RunResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit.render(result), encoding="utf-8")
    return path
