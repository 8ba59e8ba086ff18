"""The optional engines, each in an extra of the distribution (``pyproject.toml``).

The core install is what the suites need. The engines of the other modes are extras, so that an
implementer who adds the harness to their own test environment gets no other pytest plugin
(Locust registers one) and no other server library:

- ``load``: Locust, and gevent under it (``edusphere-conformance load``);
- ``cluster``: redis-py and psycopg (``serve --broker`` / ``--nodes``, ``--db postgresql://``);
- ``parallel``: pytest-xdist (``run -n N``).

A command that needs an engine which is not installed says so in one line, naming the extra
(:func:`missing`); nothing is imported to find out (importing Locust patches the process for
gevent).
"""

from __future__ import annotations

import importlib.util

__all__ = ["EXTRAS", "missing"]

#: Extra -> the top-level modules it brings, each with the distribution that provides it.
EXTRAS: dict[str, tuple[tuple[str, str], ...]] = {
    "load": (("locust", "locust"), ("gevent", "gevent")),
    "cluster": (("redis", "redis"), ("psycopg", "psycopg")),
    "parallel": (("xdist", "pytest-xdist"),),
}

DIST = "edusphere-conformance"


def missing(extra: str, what: str) -> str | None:
    """The one line that says what to install when a module of ``extra`` is not installed
    (``None`` when every one is). ``what`` names what needs it (``load``, ``-n``)."""
    absent = [dist for module, dist in EXTRAS[extra] if importlib.util.find_spec(module) is None]
    if not absent:
        return None
    return (
        f"{what} needs {' and '.join(absent)}, which the core install leaves out: "
        f"pip install '{DIST}[{extra}]'"
    )
