"""The JSON Schemas of the protocol: registry, validators, frame classification.

The schemas under ``schemas/`` are the spec facts (draft 2020-12, one file per frame, shared
definitions in ``common.json``); this module only loads and applies them. Every file's ``$id`` is
``https://edusphere.example/schemas/<path>``, so relative ``$ref``s resolve the same way on disk
and through the registry.

Schema names are file paths below ``schemas/`` without ``.json``: ``"client/text"``,
``"server/new"``, ``"results"``.

Formats are checked (``uuid`` by the standard library, ``date-time`` by rfc3339-validator). Without
rfc3339-validator jsonschema silently accepts any string as a ``date-time``, so the first use of a
validator fails with a :class:`RuntimeError` if either format is not checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import (  # type: ignore[import-untyped, unused-ignore]
    Draft202012Validator,
    FormatChecker,
)
from referencing import Registry, Resource

__all__ = [
    "BASE_URI",
    "REQUIRED_FORMATS",
    "SCHEMA_DIR",
    "Violation",
    "classify_server_frame",
    "client_frame_kind",
    "is_valid",
    "registry",
    "require_formats",
    "schema",
    "schema_id",
    "schema_names",
    "validate",
    "validator",
]

#: Prefix of every schema's ``$id``; the rest is the file's path below ``schemas/``.
BASE_URI = "https://edusphere.example/schemas/"

#: Formats our schemas rely on; a validator that would not check them is refused.
REQUIRED_FORMATS = frozenset({"date-time", "uuid"})


def _find_schema_dir() -> Path:
    """``schemas/`` at the repo root, or ``harness/_schemas`` in an installed wheel."""
    here = Path(__file__).resolve().parent
    candidates = (here.parent / "schemas", here / "_schemas")
    for candidate in candidates:
        if (candidate / "common.json").is_file():
            return candidate
    return candidates[0]


#: Directory holding the schema files.
SCHEMA_DIR: Path = _find_schema_dir()


# --- loading ------------------------------------------------------------------------------


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    """Every ``*.json`` below :data:`SCHEMA_DIR`, by name. (Each is checked against the
    metaschema by ``tests/test_schemas.py``, not at every start: that took 0.15 s of each run.)"""
    if not SCHEMA_DIR.is_dir():
        raise RuntimeError(f"schema directory not found: {SCHEMA_DIR}")
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(SCHEMA_DIR.rglob("*.json")):
        name = path.relative_to(SCHEMA_DIR).with_suffix("").as_posix()
        contents = json.loads(path.read_text(encoding="utf-8"))
        expected_id = BASE_URI + name + ".json"
        if not isinstance(contents, dict) or contents.get("$id") != expected_id:
            raise RuntimeError(f"{path}: $id must be {expected_id!r}")
        found[name] = contents
    return found


def schema_names() -> list[str]:
    """Names of all schemas, sorted: ``["client/delete", ..., "server/update"]``."""
    return sorted(_schemas())


def schema(name: str) -> dict[str, Any]:
    """The parsed schema called *name* (do not mutate it)."""
    try:
        return _schemas()[name]
    except KeyError:
        known = ", ".join(schema_names())
        raise KeyError(f"unknown schema {name!r}; known: {known}") from None


def schema_id(name: str) -> str:
    """The ``$id`` of the schema called *name*."""
    return str(schema(name)["$id"])


@cache
def registry() -> Registry[Any]:
    """A :class:`referencing.Registry` of every schema file, by ``$id``."""
    resources = [
        (contents["$id"], Resource.from_contents(contents)) for contents in _schemas().values()
    ]
    return Registry().with_resources(resources).crawl()


# --- format checking ------------------------------------------------------------------------


def require_formats(checker: Any, formats: Iterable[str] = REQUIRED_FORMATS) -> None:
    """Raise :class:`RuntimeError` unless *checker* (a ``FormatChecker``) checks *formats*."""
    missing = sorted(set(formats) - set(checker.checkers))
    if missing:
        raise RuntimeError(
            f"jsonschema's format checker does not check {', '.join(missing)}: unchecked, any "
            "string passes. Install rfc3339-validator (needed for 'date-time'; a dependency of "
            "edusphere-conformance), e.g. `pip install rfc3339-validator`."
        )


@cache
def _format_checker() -> Any:
    checker: FormatChecker = Draft202012Validator.FORMAT_CHECKER
    require_formats(checker)
    return checker


_ANNOTATIONS = frozenset({"title", "description", "examples", "$comment", "default"})


def _inline(node: Any, base: str) -> Any:
    """``node`` with every ``$ref`` replaced by what it points at (resolved against ``base``,
    recursively; annotations beside a ``$ref`` are kept, anything else goes beside it in an
    ``allOf``). Our schemas are not recursive, so the result validates as the original."""
    if isinstance(node, dict):
        rest = {k: _inline(v, base) for k, v in node.items() if k != "$ref"}
        if "$ref" not in node:
            return rest
        resolved = registry().resolver(base_uri=base).lookup(node["$ref"])
        target = _inline(resolved.contents, resolved.resolver._base_uri)
        if set(rest) <= _ANNOTATIONS and isinstance(target, dict):
            return {**target, **rest}
        return {**rest, "allOf": [target]}
    if isinstance(node, list):
        return [_inline(v, base) for v in node]
    return node


@cache
def validator(name: str) -> Any:
    """A ``Draft202012Validator`` for the schema *name*, its refs resolved once, ahead (a run
    validates thousands of frames; resolving each ``$ref`` per frame cost most of the time).

    Formats are checked; a missing format checker raises :class:`RuntimeError` here.
    """
    contents = schema(name)
    inlined = _inline(contents, str(contents["$id"]))
    return Draft202012Validator(inlined, registry=registry(), format_checker=_format_checker())


# --- validation results ---------------------------------------------------------------------


def _pointer(path: Iterable[object]) -> str:
    """RFC 6901 JSON pointer of a jsonschema error path."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


@dataclass(frozen=True)
class Violation:
    """One way a frame fails a schema.

    *schema* is the schema name (``"server/new"``), *pointer* the JSON pointer of the offending
    value in the frame (``"/created"``; ``""`` for the frame itself, e.g. when a required field is
    missing), *value* that value, *message* what is wrong with it.
    """

    schema: str
    pointer: str
    value: object
    message: str

    @property
    def schema_file(self) -> str:
        """The schema's path relative to the repo root: ``schemas/server/new.json``."""
        return f"schemas/{self.schema}.json"

    def __str__(self) -> str:
        where = self.pointer or "(root)"
        message = self.message if len(self.message) <= 300 else self.message[:297] + "..."
        return f"{where}: {message} ({self.schema_file})"


def validate(name: str, frame: object) -> list[Violation]:
    """Every violation of schema *name* by *frame* (already parsed JSON), sorted by pointer.

    An empty list means the frame is valid. A ``pattern`` that backs up a ``format`` (so that the
    form is checked even by format-less validators) is reported as that format's failure, once.
    """
    found: dict[tuple[str, str], Violation] = {}
    for error in validator(name).iter_errors(frame):
        pointer = _pointer(error.absolute_path)
        message = str(error.message)
        subschema = error.schema if isinstance(error.schema, dict) else {}
        if error.validator == "pattern" and "format" in subschema:
            message = f"{error.instance!r} is not a {subschema['format']!r}"
        found.setdefault((pointer, message), Violation(name, pointer, error.instance, message))
    return [found[key] for key in sorted(found)]


def is_valid(name: str, frame: object) -> bool:
    """Whether *frame* validates against schema *name*."""
    return bool(validator(name).is_valid(frame))


# --- classification -------------------------------------------------------------------------


def _const(contents: Mapping[str, Any], prop: str) -> object:
    spec = contents.get("properties", {}).get(prop, {})
    return spec.get("const") if isinstance(spec, dict) else None


@cache
def _server_kinds() -> tuple[str, dict[tuple[object, object], str]]:
    """(error key, {(type, action): schema name}) read from the server schemas."""
    error_key = schema("server/error")["required"][0]
    by_action: dict[tuple[object, object], str] = {}
    for name in schema_names():
        if name.startswith("server/") and name != "server/error":
            contents = schema(name)
            by_action[(_const(contents, "type"), _const(contents, "action"))] = name
    return str(error_key), by_action


@cache
def _client_kinds() -> dict[object, str]:
    """{type: schema name} read from the client schemas."""
    return {
        _const(schema(name), "type"): name for name in schema_names() if name.startswith("client/")
    }


def classify_server_frame(frame: object) -> str | None:
    """The schema a server frame should validate against, or None if it is not recognisable.

    Seed, "Client-Side Error Handling": the client checks for the ``error`` field first, so any
    object with an ``error`` key is ``"server/error"``. Otherwise a ``chat_message`` with action
    ``new`` / ``update`` / ``delete`` is ``"server/new"`` / ``"server/update"`` /
    ``"server/delete"``. Anything else (not an object, another ``type``, an unknown ``action``)
    is None: the caller decides what that means (EVT-001, EVT-006).
    """
    if not isinstance(frame, dict):
        return None
    error_key, by_action = _server_kinds()
    if error_key in frame:
        return "server/error"
    key = (frame.get("type"), frame.get("action"))
    if not all(isinstance(part, str) for part in key):
        return None
    return by_action.get(key)


def client_frame_kind(frame: object) -> str | None:
    """The schema a client frame should validate against (``"client/text"``...), or None.

    Decided by the ``type`` field alone (seed: "a `type` field specifying the operation").
    """
    if not isinstance(frame, dict):
        return None
    kind = frame.get("type")
    if not isinstance(kind, str):
        return None
    return _client_kinds().get(kind)
