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

The package: :mod:`~harness.server.strategies.values` (text, date-times, JSON values),
:mod:`~harness.server.strategies.valid` (:func:`from_schema`, the builder) and
:mod:`~harness.server.strategies.near_misses` (:func:`near_miss`, :class:`NearMiss`).
"""

from __future__ import annotations

from harness.server.strategies.near_misses import (
    NEAR_MISS_KINDS,
    SERVABLE_FIELDS,
    SERVABLE_KINDS,
    NearMiss,
    near_miss,
    short_repr,
)
from harness.server.strategies.valid import SchemaStrategyError, from_schema
from harness.server.strategies.values import (
    json_values,
    rfc3339_datetimes,
    unicode_text,
    unicode_text_alphabet,
)

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
