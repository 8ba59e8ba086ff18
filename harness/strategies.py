"""Hypothesis strategies generated from our JSON Schemas: valid frames and near misses.

Frames are generated *from the schema files* (``schemas/client/*.json`` ...), not written by hand
per frame: a change to a schema changes what is generated. Every generated valid frame is checked
with the same jsonschema validator the harness applies (:mod:`harness.schemas`), and every near
miss is checked to fail it.

Why not hypothesis-jsonschema
-----------------------------
hypothesis-jsonschema 0.23.1 (its last release, February 2024) calls a private hypothesis API that
hypothesis 6.170.10 removed: with current hypothesis every schema with an object fails with
``AttributeError: 'many' object has no attribute 'more'``. It also supports drafts 4-7 only (our
schemas are 2020-12), does not know the ``uuid`` format, and needs cross-file ``$ref``s inlined.
Pinning ``hypothesis<6.170.10`` would make the whole harness depend on an old hypothesis for one
helper. Our schemas use a small set of keywords, so :func:`from_schema` implements exactly those
and refuses any other validation keyword loudly (:class:`SchemaStrategyError`) instead of silently
generating frames that ignore it.

Keywords covered: ``type`` (one or a list), ``properties``, ``required``,
``additionalProperties`` (boolean or schema), ``const``, ``enum``, ``$ref`` (through the
schema registry, relative and absolute), ``$defs``, ``format`` (``uuid``, ``date-time``),
``minLength`` / ``maxLength``, ``pattern`` (strings without a format), ``allOf`` / ``anyOf`` /
``oneOf`` (one per schema, no key clashes with their siblings), ``items`` / ``minItems`` /
``maxItems``, ``minimum`` / ``maximum`` / ``exclusiveMinimum`` / ``exclusiveMaximum``, ``if`` /
``then`` where ``then`` only adds ``required`` keys (drawn both ways; values that miss the
condition are filtered out by the validator), ``propertyNames`` (the names of additional
properties are drawn from it). Annotations
(``title``, ``description``, ``examples``, ``$comment``...) are ignored.

What the generated content looks like
-------------------------------------
- Text is any Unicode except surrogates (not encodable in UTF-8, so not in a valid text frame) and
  NUL (PostgreSQL text columns cannot hold it; the seed says nothing about it), with astral
  characters (emoji, CJK extension B...) mixed in on purpose. Pass ``alphabet`` to change it.
- ``text_limit=N`` draws free-text lengths (the client ``message``) around the limit: N - 1, N and
  N + 1 code points often, anything from the schema's minimum up to N + 1 otherwise. The catalogue
  counts characters as Unicode code points (SEND-007..009), as ``len()`` does.
- Objects carry up to three extra fields (``extra_fields=True``) with arbitrary JSON values; an
  extra field's name is never one of the protocol's documented field names, so it is unknown to
  every server.
- Date-times are RFC 3339 in common shapes: ``T`` and ``Z`` upper case, ``Z`` or an offset of at
  most 14 hours, 0 to 9 fraction digits, years 1970-2199. (The schema also accepts lower-case
  ``t``/``z``; they are not generated, since the seed's examples are upper case.)
"""

from __future__ import annotations

import json
import math
import string
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from harness import schemas

__all__ = [
    "NEAR_MISS_KINDS",
    "SERVABLE_FIELDS",
    "SERVABLE_KINDS",
    "NearMiss",
    "SchemaStrategyError",
    "from_schema",
    "json_values",
    "near_miss",
    "rfc3339_datetimes",
    "short_repr",
    "unicode_text",
    "unicode_text_alphabet",
]

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
_MAX_SAFE_INT = 2**53  # integers beyond this lose precision in JavaScript clients
_DEFAULT_MAX_LENGTH = 40  # free text without maxLength or text_limit


class SchemaStrategyError(Exception):
    """A schema uses something the builder does not cover, or it generated a wrong value."""


# --- building blocks ------------------------------------------------------------------------


def unicode_text_alphabet() -> SearchStrategy[str]:
    """Single characters: any Unicode but surrogates and NUL, astral ones mixed in on purpose."""
    anything = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
    astral = st.characters(min_codepoint=0x10000, exclude_categories=["Cs", "Cn"])
    return st.one_of(anything, astral)


@st.composite
def _text_of_length(draw: st.DrawFn, length: int, alphabet: SearchStrategy[str]) -> str:
    """Text of exactly *length* code points; long ones repeat a random chunk between random ends
    (drawing hundreds of characters one by one would exhaust hypothesis's data budget)."""
    if length <= 64:
        return draw(st.text(alphabet, min_size=length, max_size=length))
    head = draw(st.text(alphabet, min_size=1, max_size=32))
    tail = draw(st.text(alphabet, min_size=1, max_size=32))
    chunk = draw(st.text(alphabet, min_size=1, max_size=8))
    middle = (chunk * length)[: length - len(head) - len(tail)]
    return head + middle + tail


def unicode_text(
    min_size: int = 0,
    max_size: int | None = None,
    *,
    near: int | None = None,
    alphabet: SearchStrategy[str] | None = None,
) -> SearchStrategy[str]:
    """Text of *min_size*..*max_size* code points; with *near*, lengths cluster around it."""
    chars = alphabet if alphabet is not None else unicode_text_alphabet()
    if near is not None:
        upper = near + 1 if max_size is None else min(max_size, near + 1)
        close = [n for n in (near - 1, near, near + 1) if min_size <= n <= upper]
        lengths: SearchStrategy[int] = st.integers(min_size, max(min_size, upper))
        if close:
            lengths = st.one_of(st.sampled_from(close), lengths)
    else:
        upper = max_size if max_size is not None else min_size + _DEFAULT_MAX_LENGTH
        lengths = st.integers(min_size, upper)
    return lengths.flatmap(lambda n: _text_of_length(n, chars))


@st.composite
def rfc3339_datetimes(draw: st.DrawFn) -> str:
    """RFC 3339 date-times with a time zone in the shapes servers and clients commonly send."""
    moment = draw(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2199, 12, 31)))
    digits = draw(st.integers(0, 9))
    fraction = (
        "." + draw(st.text(string.digits, min_size=digits, max_size=digits)) if digits else ""
    )
    sign = draw(st.sampled_from("+-"))
    hours = draw(st.integers(0, 14))
    minutes = draw(st.sampled_from((0, 30, 45)))
    zone = draw(st.sampled_from(("Z", "+00:00", f"{sign}{hours:02d}:{minutes:02d}")))
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + zone


def json_values(alphabet: SearchStrategy[str] | None = None) -> SearchStrategy[Any]:
    """Small arbitrary JSON values (what ``json.loads`` returns), nested at most a few levels."""
    text = unicode_text(0, 12, alphabet=alphabet)
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-_MAX_SAFE_INT, _MAX_SAFE_INT),
        st.floats(allow_nan=False, allow_infinity=False),
        text,
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=3), st.dictionaries(text, children, max_size=3)
        ),
        max_leaves=6,
    )


def _json_type(value: object) -> str:
    """The JSON type name of a parsed JSON value (``1.0`` counts as an integer, as in 2020-12)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {value!r}")


@cache
def _documented_fields() -> frozenset[str]:
    """Every property name any client or server schema documents."""
    names: set[str] = set()
    for name in schemas.schema_names():
        if name.startswith(("client/", "server/")):
            names.update(schemas.schema(name).get("properties", {}))
    return frozenset(names)


# --- the builder ----------------------------------------------------------------------------


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


# --- near misses ----------------------------------------------------------------------------

#: Every kind of near miss, as reported.
NEAR_MISS_KINDS = (
    "wrong-type",  # a required field holds another JSON type
    "missing-field",  # a required field (other than `type`) is absent
    "missing-type",  # the `type` discriminator is absent
    "unknown-type",  # `type` is a string that names no frame of the protocol
    "bad-format",  # a required field has the right type but not its format (a non-UUID id)
    "bad-optional",  # an optional field (`timestamp`) has the wrong type or format
    "not-object",  # JSON that is not an object: array, string, number, boolean, null
    "binary",  # a binary frame that is not valid UTF-8
    "binary-json",  # a valid frame, sent as a binary frame instead of a text frame
)

#: Kinds a conformant server may still serve (act on, even broadcast), per the protocol notes,
#: "Open points": a missing `type` may be "treated as `text`" (ROBUST-009), and a client frame's
#: `timestamp` "is informational for the server" (so a bad one may be ignored).
SERVABLE_KINDS = frozenset({"missing-type", "bad-optional"})

#: Fields whose near misses a conformant server may still serve: for `message` "missing, empty,
#: or not a string" the notes' MUST is only that "no event with a non-string body is ever
#: broadcast" (ROBUST-010); a server may coerce or default it.
SERVABLE_FIELDS = frozenset({"message"})

_BINARY_POISON = (b"\xff", b"\xfe", b"\xc0", b"\xc1", b"\xf5", b"\xf8")  # never valid in UTF-8


@dataclass(frozen=True)
class NearMiss:
    """A frame that violates schema *schema* in one way, tagged with how.

    *value* is the parsed JSON that is sent (an object with one field wrong, or a non-object), or
    the raw ``bytes`` of a binary frame. *field* names the wrong or missing field, None for the
    whole-frame kinds. *servable* (client frames only) is True when a conformant server may still
    act on the frame (see
    :data:`SERVABLE_KINDS`, :data:`SERVABLE_FIELDS`, and a ``type`` that is null or blank, which
    servers commonly read as absent): a check that nothing is broadcast must skip those.
    """

    schema: str
    kind: str
    field: str | None
    value: object
    description: str
    servable: bool = False

    @property
    def wire(self) -> str | bytes:
        """What to send: a text frame (``str``, JSON) or a binary frame (``bytes``)."""
        if isinstance(self.value, bytes):
            return self.value
        return json.dumps(self.value, ensure_ascii=False)

    def __str__(self) -> str:
        return f"{self.kind}: {self.description}"


def short_repr(value: object, limit: int = 40) -> str:
    """``repr(value)``, cut to ``limit`` characters (how near misses quote their value)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_A = {"integer": "an", "array": "an", "object": "an"}


def _a(json_type: str) -> str:
    return f"{_A.get(json_type, 'a')} {json_type}"


class _NearMisses:
    """Near-miss strategies for one object schema, derived from its properties."""

    def __init__(self, name: str, alphabet: SearchStrategy[str]) -> None:
        self.name = name
        self.client = name.startswith("client/")
        self.alphabet = alphabet
        top = schemas.schema(name)
        self.resolver = _resolver_for(name)
        if top.get("type") != "object" or "properties" not in top:
            raise SchemaStrategyError(f"{name}: near misses need an object schema")
        self.properties: dict[str, tuple[Mapping[str, Any], _Resolver]] = {
            key: self._resolve(sub) for key, sub in top["properties"].items()
        }
        self.required: list[str] = list(top.get("required", []))
        type_schema = self.properties.get("type", ({}, None))[0]
        self.discriminator = "type" if "const" in type_schema else None
        self.base = from_schema(name, extra_fields=False, alphabet=alphabet)

    def _resolve(self, sub: Any, resolver: _Resolver = None) -> tuple[Mapping[str, Any], Any]:
        """Follow ``$ref`` chains (annotation siblings only, as the builder requires); returns
        the schema and the resolver to resolve *its* refs with."""
        resolver = self.resolver if resolver is None else resolver
        while isinstance(sub, Mapping) and "$ref" in sub:
            resolved = resolver.lookup(sub["$ref"])
            sub, resolver = resolved.contents, resolved.resolver
        return (sub if isinstance(sub, Mapping) else {}), resolver

    def _allowed_types(self, sub: Mapping[str, Any], resolver: _Resolver) -> set[str] | None:
        """The JSON types *sub* admits, or None if it does not restrict them."""
        if "const" in sub:
            return {_json_type(sub["const"])}
        if "enum" in sub:
            return {_json_type(v) for v in sub["enum"]}
        for key in ("anyOf", "oneOf"):
            if key in sub:
                union: set[str] = set()
                for branch in sub[key]:
                    types = self._allowed_types(*self._resolve(branch, resolver))
                    if types is None:
                        return None
                    union |= types
                return union
        declared = sub.get("type")
        if declared is None:
            return None
        return {declared} if isinstance(declared, str) else set(declared)

    def _other_types(
        self, sub: Mapping[str, Any], resolver: _Resolver
    ) -> SearchStrategy[Any] | None:
        """Values of every JSON type *sub* does not admit."""
        allowed = self._allowed_types(sub, resolver)
        if allowed is None:
            return None
        if "number" in allowed:
            allowed.add("integer")
        text = unicode_text(0, 12, alphabet=self.alphabet)
        scalars = st.one_of(st.none(), st.booleans(), st.integers(-100, 100), text)
        by_type: dict[str, SearchStrategy[Any]] = {
            "null": st.none(),
            "boolean": st.booleans(),
            "integer": st.integers(-_MAX_SAFE_INT, _MAX_SAFE_INT),
            "number": st.floats(allow_nan=False, allow_infinity=False).filter(
                lambda x: not x.is_integer()
            ),
            "string": text,
            "array": st.lists(scalars, max_size=3),
            "object": st.dictionaries(text, scalars, max_size=3),
        }
        others = [strategy for t, strategy in by_type.items() if t not in allowed]
        return st.one_of(others) if others else None

    def _bad_strings(self, fmt: str) -> SearchStrategy[str]:
        free = unicode_text(0, 40, alphabet=self.alphabet)
        if fmt == "uuid":
            uuids = st.uuids()
            return st.one_of(
                st.sampled_from(["", "not-a-uuid", "123", "0", "null", "undefined"]),
                uuids.map(lambda u: u.hex),  # no dashes
                uuids.map(lambda u: "{" + str(u) + "}"),
                uuids.map(lambda u: str(u)[:-1]),
                uuids.map(lambda u: str(u) + "0"),
                uuids.map(lambda u: " " + str(u)),
                free,
            )
        if fmt == "date-time":
            return st.one_of(
                st.sampled_from(
                    [
                        "",
                        "2024-01-01 12:00:00",
                        "2024-01-01T12:00:00",
                        "2024-01-01T12:00:00.000",
                        "2024-01-01",
                        "12:00:00Z",
                        "2024-02-30T12:00:00Z",
                        "2024-01-01T24:00:00Z",
                        "1704110400",
                        "yesterday",
                    ]
                ),
                free,
            )
        return free

    def _set(self, frame: Mapping[str, Any], field: str, value: object) -> dict[str, Any]:
        changed = dict(frame)
        changed[field] = value
        return changed

    def _nm(
        self, kind: str, field: str | None, value: object, description: str, servable: bool = False
    ) -> NearMiss:
        servable = _servable(self.name, kind, field) or (self.client and servable)
        return NearMiss(self.name, kind, field, value, description, servable)

    def candidates(self) -> list[tuple[str, str | None, SearchStrategy[NearMiss]]]:
        """(kind, field, strategy) for every way to miss the schema."""
        out: list[tuple[str, str | None, SearchStrategy[NearMiss]]] = []
        for field, (sub, resolver) in self.properties.items():
            required = field in self.required
            others = self._other_types(sub, resolver)
            fmt = sub.get("format")
            if others is not None:
                kind = "wrong-type" if required else "bad-optional"
                out.append((kind, field, self._wrong_type(kind, field, others)))
            if isinstance(fmt, str):
                kind = "bad-format" if required else "bad-optional"
                out.append((kind, field, self._bad_format(kind, field, fmt)))
            if required:
                kind = "missing-type" if field == self.discriminator else "missing-field"
                out.append((kind, field, self._missing(kind, field)))
        if self.discriminator is not None:
            out.append(("unknown-type", self.discriminator, self._unknown_type()))
        out.append(("not-object", None, self._not_object()))
        out.append(("binary", None, self._binary()))
        out.append(("binary-json", None, self._binary_json()))
        return out

    def _missing(self, kind: str, field: str) -> SearchStrategy[NearMiss]:
        def make(frame: Mapping[str, Any]) -> NearMiss:
            rest = {key: value for key, value in frame.items() if key != field}
            return self._nm(kind, field, rest, f"required `{field}` is missing")

        return self.base.map(make)

    def _binary_json(self) -> SearchStrategy[NearMiss]:
        def make(frame: Mapping[str, Any]) -> NearMiss:
            description = f"a valid {self.name} frame sent as a binary frame"
            return self._nm("binary-json", None, _utf8_json(frame), description)

        return self.base.map(make)

    def _wrong_type(
        self, kind: str, field: str, others: SearchStrategy[Any]
    ) -> SearchStrategy[NearMiss]:
        blank_discriminator = field == self.discriminator

        def make(frame: Mapping[str, Any], value: Any) -> NearMiss:
            return self._nm(
                kind,
                field,
                self._set(frame, field, value),
                f"`{field}` is {_a(_json_type(value))} ({short_repr(value)})",
                # `"type": null` is commonly read as "no type" (ROBUST-009 then applies).
                servable=blank_discriminator and value is None,
            )

        return st.builds(make, self.base, others)

    def _bad_format(self, kind: str, field: str, fmt: str) -> SearchStrategy[NearMiss]:
        def make(frame: Mapping[str, Any], value: str) -> NearMiss:
            return self._nm(
                kind,
                field,
                self._set(frame, field, value),
                f"`{field}` is {short_repr(value)}, not a {fmt}",
            )

        return st.builds(make, self.base, self._bad_strings(fmt)).filter(
            lambda nm: not schemas.is_valid(self.name, nm.value)
        )

    def _unknown_type(self) -> SearchStrategy[NearMiss]:
        assert self.discriminator is not None
        field = self.discriminator
        known = _discriminator_values(self.name, field)
        folded = {str(v).casefold() for v in known}
        plausible = ["message", "edit", "remove", "chat_message", "new", "ping", "typing"]
        names = st.one_of(
            st.sampled_from(plausible), unicode_text(0, 16, alphabet=self.alphabet)
        ).filter(lambda s: s.strip().casefold() not in folded)

        def make(frame: Mapping[str, Any], value: str) -> NearMiss:
            return self._nm(
                "unknown-type",
                field,
                self._set(frame, field, value),
                f"`{field}` is {short_repr(value)}, not one of {sorted(map(str, known))}",
                # a blank type is commonly read as "no type" (ROBUST-009 then applies).
                servable=not value.strip(),
            )

        return st.builds(make, self.base, names)

    def _not_object(self) -> SearchStrategy[NearMiss]:
        values = st.one_of(
            json_values(self.alphabet).filter(lambda v: not isinstance(v, dict)),
            self.base.map(lambda frame: [frame]),  # the frame wrapped in an array
            self.base.map(lambda frame: json.dumps(frame)),  # the frame encoded twice
        )
        return values.map(
            lambda v: self._nm(
                "not-object", None, v, f"JSON {_a(_json_type(v))} ({short_repr(v)}), not an object"
            )
        )

    def _binary(self) -> SearchStrategy[NearMiss]:
        @st.composite
        def payloads(draw: st.DrawFn) -> bytes:
            head = draw(st.one_of(st.binary(max_size=32), self.base.map(_utf8_json)))
            poison = draw(st.sampled_from(_BINARY_POISON))
            tail = draw(st.binary(max_size=8))
            cut = draw(st.integers(0, len(head)))
            return head[:cut] + poison + head[cut:] + tail

        return payloads().map(
            lambda data: self._nm(
                "binary", None, data, f"{len(data)} bytes in a binary frame, not valid UTF-8"
            )
        )


def _servable(name: str, kind: str, field: str | None) -> bool:
    """Whether every near miss of *kind* on *field* of the client frame *name* may be served by
    a conformant server. (Servability is about what servers do with client frames: near misses
    of server frames are never servable.)"""
    return name.startswith("client/") and (kind in SERVABLE_KINDS or field in SERVABLE_FIELDS)


def _utf8_json(frame: object) -> bytes:
    return json.dumps(frame, ensure_ascii=False).encode("utf-8")


@cache
def _discriminator_values(name: str, field: str) -> frozenset[object]:
    """Every ``const`` of *field* among the schemas of *name*'s directory (``client/``...)."""
    prefix = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
    values: set[object] = set()
    for other in schemas.schema_names():
        if other.startswith(prefix):
            spec = schemas.schema(other).get("properties", {}).get(field, {})
            if isinstance(spec, Mapping) and "const" in spec:
                values.add(spec["const"])
    return frozenset(values)


def _check_near_miss(near: NearMiss) -> NearMiss:
    if schemas.is_valid(near.schema, near.value):
        raise SchemaStrategyError(f"near miss validates against {near.schema}: {near}")
    if near.kind == "binary":
        assert isinstance(near.value, bytes)
        try:
            near.value.decode("utf-8")
        except UnicodeDecodeError:
            return near
        raise SchemaStrategyError(f"binary near miss is valid UTF-8: {near.value!r}")
    return near


def near_miss(
    schema_name: str,
    *,
    kinds: Collection[str] | None = None,
    include_servable: bool = False,
    alphabet: SearchStrategy[str] | None = None,
) -> SearchStrategy[NearMiss]:
    """Frames that violate *schema_name* in exactly one way each, tagged with the kind.

    By default only near misses that no conformant server may serve are generated (ROBUST-017:
    they "never cause a broadcast"); ``include_servable=True`` adds the rest (see
    :attr:`NearMiss.servable`). *kinds* restricts the kinds (names from :data:`NEAR_MISS_KINDS`).
    Every near miss is checked to fail the schema's validator.
    """
    wanted = set(NEAR_MISS_KINDS if kinds is None else kinds)
    unknown = wanted - set(NEAR_MISS_KINDS)
    if unknown:
        raise ValueError(f"unknown near-miss kinds {sorted(unknown)}; known: {NEAR_MISS_KINDS}")
    chars = alphabet if alphabet is not None else unicode_text_alphabet()
    chosen = [
        strategy
        for kind, field, strategy in _NearMisses(schema_name, chars).candidates()
        if kind in wanted and (include_servable or not _servable(schema_name, kind, field))
    ]
    if not chosen:
        raise SchemaStrategyError(f"{schema_name}: no near miss of kinds {sorted(wanted)}")
    strategy = st.one_of(chosen)
    if not include_servable:
        # A null or blank `type` is servable whatever the kind: filter those few out.
        strategy = strategy.filter(lambda near: not near.servable)
    return strategy.map(_check_near_miss)
