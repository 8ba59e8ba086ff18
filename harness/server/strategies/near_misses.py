"""Near misses: frames that violate a schema in exactly one way each, tagged with the kind.

:func:`near_miss` derives them from an object schema's properties (wrong type, missing field,
unknown ``type``, bad format, not an object, binary frames) and checks every one fails the
schema's validator; :class:`NearMiss` says which way and whether a conformant server may still
serve it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from harness import schemas
from harness.server.strategies.valid import (
    SchemaStrategyError,
    _Resolver,
    _resolver_for,
    from_schema,
)
from harness.server.strategies.values import (
    _MAX_SAFE_INT,
    _json_type,
    json_values,
    unicode_text,
    unicode_text_alphabet,
)

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
