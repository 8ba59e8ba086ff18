"""The requirement catalogue, read from ``harness/catalogue.toml``: the one reader of the file
(the core gets the parsed :class:`~harness.core.catalogue.Catalogue`)."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

from harness.core.catalogue import Catalogue, parse

__all__ = ["CATALOGUE_PATH", "load"]

CATALOGUE_PATH = Path(__file__).resolve().parent / "catalogue.toml"


@functools.cache
def load(path: Path = CATALOGUE_PATH) -> Catalogue:
    """The catalogue at ``path`` (by default the package's), parsed once per process."""
    with path.open("rb") as fh:
        return parse(tomllib.load(fh))
