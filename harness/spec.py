"""The protocol's facts, read from data: the one place code takes them from.

The error strings and the length limit come from the ``[protocol]`` table of
``harness/catalogue.toml`` (each with the seed section stating it); the documented fields of each
frame are the ``properties`` of its schema in ``schemas/``; which requirement a shared check names
comes from the catalogue's ``[checks]`` tables. Nothing here restates them, so a suite that
compares with ``spec.ERRORS.not_found`` compares with the catalogue.

Seed, "Common Error Messages": ``"Message exceeds {max} characters."``, ``"Message not found."``,
``"You can only delete your own messages."``, ``"You can only edit your own messages."``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

from harness import catalogue, schemas
from harness.core.checks import FrameJudge, Violation
from harness.core.failures import ConformanceFailure
from harness.core.frames import Frame

__all__ = [
    "CLIENT_FIELDS",
    "DOCUMENTED",
    "ECHO_REQUIREMENT",
    "ERRORS",
    "EVENT_ACTIONS",
    "FANOUT_REQUIREMENT",
    "FIELD_REQUIREMENT",
    "MAX_LENGTH",
    "SCHEMA_REQUIREMENT",
    "Errors",
    "SchemaRules",
    "documented_fields",
    "judge_server_frame",
    "not_yours",
    "required_fields",
    "stated",
    "too_long",
]

#: The ``action`` of each server event (seed, "Event Types": new, delete, update).
EVENT_ACTIONS: Final = ("new", "update", "delete")


@dataclass(frozen=True)
class Errors:
    """The seed's error strings ("Common Error Messages"), one per cause."""

    #: The length error as a template with ``{max}``; fill it with :func:`too_long`.
    too_long: str
    #: "Invalid message ID".
    not_found: str
    #: "Unauthorized delete": someone else's message.
    delete_own: str
    #: "Unauthorized edit": someone else's message.
    edit_own: str


def _data() -> dict[str, Any]:
    """The catalogue's ``[protocol]`` and ``[checks]`` tables (the one loader parsed them)."""
    cat = catalogue.load()
    return {"protocol": cat.protocol, "checks": cat.checks}


def _errors(data: Mapping[str, Any]) -> Errors:
    table = data["protocol"]["errors"]
    return Errors(**{name: str(entry["text"]) for name, entry in table.items()})


def _max_length(data: Mapping[str, Any]) -> int:
    value = data["protocol"]["max_length"]["value"]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"catalogue: protocol.max_length.value must be a positive int: {value!r}")
    return value


def _ids(table: Mapping[str, Any], where: str) -> Mapping[str, str]:
    """A ``name -> requirement id`` table, every id checked against the catalogue."""
    known = catalogue.load()
    for name, rid in table.items():
        if rid not in known:
            raise ValueError(f"catalogue: {where}.{name}: unknown requirement {rid!r}")
    return MappingProxyType({str(k): str(v) for k, v in table.items()})


def _field_ids(table: Mapping[str, Any]) -> Mapping[tuple[str, str], str]:
    pairs = {
        (schema, field): rid
        for schema, fields in table.items()
        for field, rid in _ids(fields, f"checks.field.{schema}").items()
    }
    return MappingProxyType(pairs)


def documented_fields(action: str) -> frozenset[str]:
    """The fields the seed documents for a server event (``"new"``, ``"update"``, ``"delete"``)
    or the error frame (``"error"``): the ``properties`` of ``schemas/server/<action>.json``."""
    return frozenset(schemas.schema(f"server/{action}")["properties"])


def required_fields(name: str) -> frozenset[str]:
    """The ``required`` fields of the schema called *name* (``"server/new"``, ``"client/text"``)."""
    return frozenset(schemas.schema(name).get("required", ()))


def _client_fields() -> frozenset[str]:
    names = [n for n in schemas.schema_names() if n.startswith("client/")]
    return frozenset(f for n in names for f in schemas.schema(n)["properties"])


def too_long(max_length: int) -> str:
    """The length error for a limit: seed, "Common Error Messages",
    ``"Message exceeds {max} characters."`` (ERR-004: ``max`` is the configured limit)."""
    return ERRORS.too_long.format(max=max_length)


def not_yours(kind: Literal["update", "delete"]) -> str:
    """The refusal of an edit (``"update"``) or a delete of someone else's message."""
    return ERRORS.edit_own if kind == "update" else ERRORS.delete_own


ERRORS: Final = _errors(_data())
#: The seed's length limit in Unicode code points; a target file's ``limits.max_length`` overrides.
MAX_LENGTH: Final = _max_length(_data())

#: Documented fields per server event action (see :func:`documented_fields`).
DOCUMENTED: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {action: documented_fields(action) for action in EVENT_ACTIONS}
)
#: Every field a client frame documents: the union of ``schemas/client/*.json`` ``properties``.
CLIENT_FIELDS: Final = _client_fields()

#: The requirement an event proves by reaching its sender's own connection, per action.
ECHO_REQUIREMENT: Final = _ids(_data()["checks"]["echo"], "checks.echo")
#: The requirement an event proves by reaching the room's other connections, per action.
FANOUT_REQUIREMENT: Final = _ids(_data()["checks"]["fanout"], "checks.fanout")
#: The requirement a server frame breaks by failing its schema, per schema name.
SCHEMA_REQUIREMENT: Final = _ids(_data()["checks"]["schema"], "checks.schema")
#: The more specific requirement a schema violation at ``(schema name, field)`` breaks too.
FIELD_REQUIREMENT: Final = _field_ids(_data()["checks"]["field"])


# --- judging a server frame by these facts ---------------------------------------------------


class SchemaRules:
    """The facts a :class:`~harness.core.checks.FrameJudge` judges by: this module's, and the
    schemas of ``schemas/`` (:mod:`harness.schemas`)."""

    event_actions: Sequence[str] = EVENT_ACTIONS
    schema_requirement: Mapping[str, str] = SCHEMA_REQUIREMENT
    field_requirement: Mapping[tuple[str, str], str] = FIELD_REQUIREMENT
    documented: Mapping[str, frozenset[str]] = DOCUMENTED

    def classify(self, frame: Frame) -> str | None:
        return schemas.classify_server_frame(frame)

    def validate(self, name: str, frame: Frame) -> Sequence[Violation]:
        return schemas.validate(name, frame)


#: The process's judge of server frames (its schema verdicts are remembered for every test).
judge_server_frame: Final = FrameJudge(SchemaRules())


def stated(failure: ConformanceFailure) -> ConformanceFailure:
    """``failure`` with the catalogue's statement of its requirement, for a person reading it
    (the core's failures know ids, not texts)."""
    cat = catalogue.load()
    if failure.requirement in cat:
        failure.statement = cat[failure.requirement].statement
    return failure
