"""A tiny pytest plugin for ``tests/test_coverage.py``: which requirements each suite test names.

Loaded in a subprocess with ``-p tests.coverage_probe`` while collecting ``suites/``. For every
collected item it writes the node id, the test function's name and file, and the ids of its
``@pytest.mark.requirement(...)`` markers to the JSON file named by ``$COVERAGE_PROBE_OUT``.
It runs before the harness plugin's own ``pytest_collection_modifyitems`` (which refuses unknown
ids and deselects by ``--only``), so it sees exactly what the suites declare.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ENV = "COVERAGE_PROBE_OUT"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    out = os.environ.get(ENV)
    if not out:
        return
    records = [
        {
            "nodeid": item.nodeid,
            "file": str(item.path),
            "function": str(getattr(item, "originalname", item.name)),
            "requirements": [
                str(arg) for mark in item.iter_markers("requirement") for arg in mark.args
            ],
        }
        for item in items
    ]
    Path(out).write_text(json.dumps(records, indent=1), encoding="utf-8")
