"""Valid frames: :func:`from_schema` turns a JSON Schema file into a hypothesis strategy.

The builder covers exactly the keywords our schemas use and refuses any other validation keyword
(:class:`SchemaStrategyError`); why it exists instead of hypothesis-jsonschema, and the keywords it
covers, are in :mod:`harness.server.strategies`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from harness import schemas
from harness.server.strategies.values import (
    _MAX_SAFE_INT,
    json_values,
    rfc3339_datetimes,
    unicode_text,
    unicode_text_alphabet,
)

# referencing's Resolver is not exported publicly; it is only passed around here.
_Resolver = Any

_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$anchor",
        "$comment",
        "$defs",
        "title",
        "description",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
_COMBINATORS = ("allOf", "anyOf", "oneOf")
_SUPPORTED = frozenset(
    {
        "if",
        "then",
        "propertyNames",
        "type",
        "properties",
        "required",
        "additionalProperties",
        "const",
        "enum",
        "$ref",
        "format",
        "minLength",
        "maxLength",
        "pattern",
        "items",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        *_COMBINATORS,
    }
)
# Keywords that imply a JSON type when a schema has no ``type``.
_TYPE_HINTS: dict[str, str] = {
    "properties": "object",
    "required": "object",
    "additionalProperties": "object",
    "format": "string",
    "minLength": "string",
    "maxLength": "string",
    "pattern": "string",
    "items": "array",
    "minItems": "array",
    "maxItems": "array",
    "minimum": "number",
    "maximum": "number",
    "exclusiveMinimum": "number",
    "exclusiveMaximum": "number",
}
_JSON_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")


class SchemaStrategyError(Exception):
    """A schema uses something the builder does not cover, or it generated a wrong value."""


@cache
def _documented_fields() -> frozenset[str]:
    """Every property name any client or server schema documents."""
    names: set[str] = set()
    for name in schemas.schema_names():
        if name.startswith(("client/", "server/")):
            names.update(schemas.schema(name).get("properties", {}))
    return frozenset(names)


@dataclass(frozen=True)
class _Options:
    text_limit: int | None
    extra_fields: bool
    alphabet: SearchStrategy[str]


class _Builder:
    """Turns a (resolved) schema into a strategy. ``approximate`` is set when the strategy may
    produce invalid values (``oneOf`` exclusivity, ``pattern`` with lengths): the caller then
    filters with the validator instead of asserting."""

    def __init__(self, options: _Options) -> None:
        self.options = options
        self.approximate = False

    def build(self, schema: object, resolver: _Resolver) -> SearchStrategy[Any]:
        if schema is True:
            return json_values(self.options.alphabet)
        if schema is False:
            raise SchemaStrategyError("schema `false` matches nothing")
        if not isinstance(schema, Mapping):
            raise SchemaStrategyError(f"not a schema: {schema!r}")
        unknown = set(schema) - _ANNOTATIONS - _SUPPORTED
        if unknown:
            raise SchemaStrategyError(f"keyword(s) not covered by the builder: {sorted(unknown)}")
        if "$ref" in schema:
            siblings = set(schema) - _ANNOTATIONS - {"$ref"}
            if siblings:
                raise SchemaStrategyError(f"$ref with validation siblings: {sorted(siblings)}")
            resolved = resolver.lookup(schema["$ref"])
            return self.build(resolved.contents, resolved.resolver)
        if "if" in schema:
            return self._conditional(schema, resolver)
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            return st.sampled_from(list(schema["enum"]))
        combinators = [key for key in _COMBINATORS if key in schema]
        if combinators:
            return self._combined(schema, combinators, resolver)
        return st.one_of([self._typed(t, schema, resolver) for t in self._types(schema)])

    def _conditional(self, schema: Mapping[str, Any], resolver: _Resolver) -> SearchStrategy[Any]:
        """``if`` / ``then`` with a ``then`` that only requires keys: draw from the schema
        without the condition, and from the schema with ``then``'s keys required as well; the
        validator filters out what misses the condition."""
        then = schema.get("then", {})
        if not isinstance(then, Mapping) or set(then) - _ANNOTATIONS - {"required"}:
            raise SchemaStrategyError("then may only add required keys")
        self.approximate = True
        base = {k: v for k, v in schema.items() if k not in ("if", "then")}
        required = [*base.get("required", ()), *then.get("required", ())]
        strengthened = {**base, "required": list(dict.fromkeys(required))}
        return st.one_of(self.build(base, resolver), self.build(strengthened, resolver))

    def _combined(
        self, schema: Mapping[str, Any], keys: list[str], resolver: _Resolver
    ) -> SearchStrategy[Any]:
        if len(keys) > 1:
            raise SchemaStrategyError(f"more than one combinator in one schema: {keys}")
        key = keys[0]
        rest = {k: v for k, v in schema.items() if k != key and k not in _ANNOTATIONS}
        branches: list[Mapping[str, Any]] = []
        for branch in schema[key]:
            if not isinstance(branch, Mapping):
                raise SchemaStrategyError(f"{key} branch is not an object: {branch!r}")
            clash = set(rest) & (set(branch) - _ANNOTATIONS)
            if clash:
                raise SchemaStrategyError(f"{key} branch repeats sibling keywords {sorted(clash)}")
            branches.append({**rest, **branch})
        if key == "allOf":
            merged: dict[str, Any] = dict(rest)
            for branch in schema[key]:
                clash = set(merged) & (set(branch) - _ANNOTATIONS)
                if clash:
                    raise SchemaStrategyError(f"allOf branches repeat keywords {sorted(clash)}")
                merged.update(branch)
            return self.build(merged, resolver)
        if key == "oneOf":
            self.approximate = True  # a value may satisfy two branches
        return st.one_of([self.build(branch, resolver) for branch in branches])

    @staticmethod
    def _types(schema: Mapping[str, Any]) -> list[str]:
        declared = schema.get("type")
        if isinstance(declared, str):
            return [declared]
        if isinstance(declared, list):
            return [str(t) for t in declared]
        hinted = sorted({_TYPE_HINTS[k] for k in schema if k in _TYPE_HINTS})
        return hinted or list(_JSON_TYPES)

    def _typed(
        self, json_type: str, schema: Mapping[str, Any], resolver: _Resolver
    ) -> SearchStrategy[Any]:
        if json_type == "null":
            return st.none()
        if json_type == "boolean":
            return st.booleans()
        if json_type in ("integer", "number"):
            return self._number(json_type, schema)
        if json_type == "string":
            return self._string(schema)
        if json_type == "array":
            items = self.build(schema.get("items", True), resolver)
            return st.lists(
                items, min_size=schema.get("minItems", 0), max_size=schema.get("maxItems", 4)
            )
        if json_type == "object":
            return self._object(schema, resolver)
        raise SchemaStrategyError(f"unknown JSON type {json_type!r}")

    def _number(self, json_type: str, schema: Mapping[str, Any]) -> SearchStrategy[Any]:
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        low_open = "minimum" not in schema and "exclusiveMinimum" in schema
        high_open = "maximum" not in schema and "exclusiveMaximum" in schema
        if json_type == "integer":
            first = -_MAX_SAFE_INT if low is None else math.floor(low) + 1 if low_open else low
            last = _MAX_SAFE_INT if high is None else math.ceil(high) - 1 if high_open else high
            return st.integers(math.ceil(first), math.floor(last))
        return st.floats(
            min_value=low,
            max_value=high,
            exclude_min=low_open,
            exclude_max=high_open,
            allow_nan=False,
            allow_infinity=False,
        )

    def _string(self, schema: Mapping[str, Any]) -> SearchStrategy[Any]:
        fmt = schema.get("format")
        if fmt == "uuid":
            return st.uuids().map(str)
        if fmt == "date-time":
            return rfc3339_datetimes()
        if fmt is not None:
            raise SchemaStrategyError(f"format {fmt!r} not covered by the builder")
        min_length = int(schema.get("minLength", 0))
        max_length = schema.get("maxLength")
        if "pattern" in schema:
            if "minLength" in schema or max_length is not None:
                self.approximate = True
            return st.from_regex(schema["pattern"], fullmatch=True)
        return unicode_text(
            min_length, max_length, near=self.options.text_limit, alphabet=self.options.alphabet
        )

    def _object(self, schema: Mapping[str, Any], resolver: _Resolver) -> SearchStrategy[Any]:
        properties: Mapping[str, Any] = schema.get("properties", {})
        required = list(schema.get("required", []))
        fixed = {key: self.build(properties.get(key, True), resolver) for key in required}
        optional = {
            key: self.build(sub, resolver) for key, sub in properties.items() if key not in fixed
        }
        base = st.fixed_dictionaries(fixed, optional=optional)
        additional = schema.get("additionalProperties", True)
        if additional is False or not self.options.extra_fields:
            return base
        taken = set(properties) | _documented_fields()
        names = schema.get("propertyNames")
        keys = (
            unicode_text(1, 12, alphabet=self.options.alphabet)
            if names is None
            else self.build(names, resolver)
        ).filter(lambda key: isinstance(key, str) and key not in taken)
        values = self.build(additional, resolver)
        extras = st.dictionaries(keys, values, max_size=3)
        return st.builds(lambda frame, more: {**frame, **more}, base, extras)


def _resolver_for(name: str) -> _Resolver:
    return schemas.registry().resolver(base_uri=schemas.schema_id(name))


def _checked(name: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        violations = schemas.validate(name, value)
        if violations:
            shown = "; ".join(str(v) for v in violations)
            raise SchemaStrategyError(f"generated an invalid {name} frame: {shown}")
        return value

    return check


def from_schema(
    schema_name: str,
    *,
    text_limit: int | None = None,
    extra_fields: bool = True,
    alphabet: SearchStrategy[str] | None = None,
) -> SearchStrategy[Any]:
    """Valid instances of the schema *schema_name* (``"client/text"``, ``"server/new"``...).

    *text_limit*: free-text lengths cluster around it (``limit - 1``, ``limit``, ``limit + 1``
    code points). *extra_fields*: objects that allow additional properties get up to three extra,
    undocumented fields. *alphabet*: a strategy of single characters for all free text.
    Every value is checked with the schema's validator before it is returned.
    """
    options = _Options(
        text_limit=text_limit,
        extra_fields=extra_fields,
        alphabet=alphabet if alphabet is not None else unicode_text_alphabet(),
    )
    builder = _Builder(options)
    strategy = builder.build(schemas.schema(schema_name), _resolver_for(schema_name))
    if builder.approximate:
        return strategy.filter(lambda value: schemas.is_valid(schema_name, value))
    return strategy.map(_checked(schema_name))
