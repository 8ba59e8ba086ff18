"""Reading a baseline file (``--baseline``): the failures a team already knows about."""

from __future__ import annotations

import tomllib
from pathlib import Path

from harness.core.catalogue import Catalogue
from harness.core.results import BaselineError, parse_baseline

__all__ = ["BaselineError", "load_baseline"]


def load_baseline(path: str | Path, catalogue: Catalogue) -> dict[str, str]:
    """``[[known]] id = "..." reason = "..."`` entries: requirement id -> reason or link."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such baseline file") from None
    except tomllib.TOMLDecodeError as exc:
        raise BaselineError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise BaselineError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_baseline(data, str(path), catalogue)
