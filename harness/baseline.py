"""Reading a baseline file (``--baseline``): the failures a team already knows about, and the
requirements it cannot test against its deployment."""

from __future__ import annotations

from pathlib import Path

from harness.core.catalogue import Catalogue
from harness.core.results import Baseline, BaselineError, parse_baseline
from harness.tomlfile import TomlFileError, read_toml

__all__ = ["Baseline", "BaselineError", "load_baseline"]


def load_baseline(path: str | Path, catalogue: Catalogue) -> Baseline:
    """``[[known]]`` failures and ``[[not_applicable]]`` requirements, each with an ``id`` and
    a ``reason`` (or ``link``)."""
    try:
        data = read_toml(path, "baseline file")
    except TomlFileError as exc:
        raise BaselineError(str(exc)) from None
    return parse_baseline(data, str(path), catalogue)
