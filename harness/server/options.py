"""The plugin's command-line options (``pytest --target FILE``, ...)."""

from __future__ import annotations

import pytest

#: Conformance tests run at once unless ``--concurrency`` says otherwise.
DEFAULT_CONCURRENCY = 8
#: How long a run may take, in seconds, unless ``--time-budget`` says otherwise (issue 28's
#: gate target): over it, the summary names the slowest tests.
DEFAULT_TIME_BUDGET_S = 20.0


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("edusphere-conformance")
    group.addoption(
        "--target",
        default=None,
        metavar="FILE",
        help="target file (TOML); default: the bundled reference server",
    )
    group.addoption(
        "--only",
        default=None,
        metavar="IDS",
        help="areas or requirement ids, comma-separated (AUTH,EDIT-002)",
    )
    group.addoption(
        "--report-dir",
        default=None,
        metavar="DIR",
        help="write compliance.html, junit.xml and results.json here",
    )
    group.addoption(
        "--baseline",
        default=None,
        metavar="FILE",
        help="TOML list of requirement ids known to fail ([[known]] id, reason)",
    )
    group.addoption(
        "--examples",
        type=int,
        default=None,
        metavar="N",
        help="examples per property in the property-based suite",
    )
    group.addoption(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help="conformance tests run at once (default 8; 1: one after another)",
    )
    group.addoption(
        "--time-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long the run may take (default 20); over it, it names its slowest tests",
    )
    group.addoption(
        "--conformance-progress",
        action="store_true",
        default=False,
        help="one progress line per area instead of pytest's output (the CLI's mode)",
    )


def strict_mode(config: pytest.Config) -> bool:
    """pytest's own ``--strict`` (pytest 9: the ``strict`` ini switch) also makes SHOULD count."""
    try:
        return bool(config.getini("strict"))
    except ValueError:  # pytest < 9: --strict is a plain flag
        return bool(config.getoption("strict", False))


def requirement_ids(item: pytest.Item) -> tuple[str, ...]:
    """The catalogue ids a test names with ``@pytest.mark.requirement(...)``."""
    ids: list[str] = []
    for mark in item.iter_markers("requirement"):
        ids.extend(str(a) for a in mark.args)
    return tuple(dict.fromkeys(ids))
