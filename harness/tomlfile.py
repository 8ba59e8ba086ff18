"""Reading the TOML files a user gives (target file, baseline): every problem is one line."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from harness.core.failures import UsageError


class TomlFileError(UsageError):
    """A file that cannot be read as TOML; ``str()`` is one line naming the file."""


def read_toml(path: str | Path, kind: str) -> dict[str, Any]:
    """The parsed document at ``path``; ``kind`` names the file in errors ("target file")."""
    p = Path(path)
    if not p.is_file():
        raise TomlFileError(f"{path}: no such {kind}")
    try:
        return tomllib.loads(p.read_bytes().decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TomlFileError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise TomlFileError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise TomlFileError(f"{path}: cannot read: {exc.strerror}") from None
