"""Reading a baseline file (``--baseline``): the failures a team already knows about."""

from __future__ import annotations

from pathlib import Path

from harness.core.catalogue import Catalogue
from harness.core.results import BaselineError, parse_baseline
from harness.tomlfile import TomlFileError, read_toml

__all__ = ["BaselineError", "load_baseline"]


def load_baseline(path: str | Path, catalogue: Catalogue) -> dict[str, str]:
    """``[[known]] id = "..." reason = "..."`` entries: requirement id -> reason or link."""
    try:
        data = read_toml(path, "baseline file")
    except TomlFileError as exc:
        raise BaselineError(str(exc)) from None
    return parse_baseline(data, str(path), catalogue)
