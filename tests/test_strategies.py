"""harness.server.strategies: frames generated from the schemas are valid; near misses are not."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import schemas
from harness.server.strategies import (
    NEAR_MISS_KINDS,
    SERVABLE_FIELDS,
    SERVABLE_KINDS,
    NearMiss,
    SchemaStrategyError,
    from_schema,
    near_miss,
    rfc3339_datetimes,
    unicode_text_alphabet,
)
from harness.server.strategies.valid import _Builder, _Options

CLIENT = ["client/text", "client/update", "client/delete"]
SERVER = ["server/new", "server/update", "server/delete", "server/error"]
BOUNDED = settings(max_examples=50, deadline=None)
# Distribution checks draw a fixed sequence, so they cannot flake.
SAMPLED = settings(max_examples=100, deadline=None, derandomize=True, database=None)

T = TypeVar("T")


def sample(strategy: st.SearchStrategy[T], config: settings = SAMPLED) -> list[T]:
    """Examples of *strategy* drawn under hypothesis's control (no ``.example()``)."""
    seen: list[T] = []

    @config
    @given(strategy)
    def collect(value: T) -> None:
        seen.append(value)

    collect()
    return seen


def documented(name: str) -> set[str]:
    return set(schemas.schema(name)["properties"])


# --- valid frames -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLIENT + SERVER + ["results"])
def test_every_generated_frame_validates(name: str) -> None:
    @BOUNDED
    @given(from_schema(name))
    def check(frame: Any) -> None:
        assert schemas.validate(name, frame) == []

    check()


@pytest.mark.parametrize("name", CLIENT)
def test_frames_near_the_limit_validate_and_their_lengths_cluster_around_it(name: str) -> None:
    frames = sample(from_schema(name, text_limit=500))
    for frame in frames:
        assert schemas.validate(name, frame) == []
    if "message" in documented(name):
        lengths = {len(frame["message"]) for frame in frames}
        assert {499, 500, 501} <= lengths
        assert all(1 <= n <= 501 for n in lengths)


def test_generated_text_includes_astral_characters() -> None:
    frames = sample(from_schema("client/text", text_limit=20))
    assert any(any(ord(c) > 0xFFFF for c in frame["message"]) for frame in frames)


def test_generated_text_is_encodable_and_has_no_nul() -> None:
    @BOUNDED
    @given(from_schema("client/update", text_limit=500))
    def check(frame: dict[str, Any]) -> None:
        data = json.dumps(frame, ensure_ascii=False).encode("utf-8")  # no lone surrogates
        assert json.loads(data) == frame
        assert "\x00" not in frame["message"]

    check()


def test_extra_fields_are_generated_and_never_documented_names() -> None:
    frames = sample(from_schema("client/text"))
    every_documented = {f for name in CLIENT + SERVER for f in documented(name)}
    extras = [set(frame) - documented("client/text") for frame in frames]
    assert any(extras)
    assert all(not (extra & every_documented) for extra in extras)


@pytest.mark.parametrize("name", CLIENT)
def test_without_extra_fields_only_documented_fields_appear(name: str) -> None:
    @BOUNDED
    @given(from_schema(name, extra_fields=False))
    def check(frame: dict[str, Any]) -> None:
        assert set(schemas.schema(name)["required"]) <= set(frame) <= documented(name)

    check()


def test_optional_timestamp_is_sometimes_present_and_sometimes_not() -> None:
    frames = sample(from_schema("client/delete"))
    assert {"timestamp" in frame for frame in frames} == {True, False}


def test_user_id_takes_every_allowed_form() -> None:
    frames = sample(from_schema("server/new"))
    kinds = {type(frame["user_id"]).__name__ for frame in frames}
    assert kinds == {"str", "int"}


@BOUNDED
@given(rfc3339_datetimes())
def test_generated_date_times_are_valid_rfc_3339(timestamp: str) -> None:
    frame = {
        "type": "chat_message",
        "action": "update",
        "id": "123e4567-e89b-12d3-a456-426614174000",
        "body": "b",
        "edited": True,
        "updated": timestamp,
    }
    assert schemas.validate("server/update", frame) == []


def test_alphabet_can_be_restricted() -> None:
    @BOUNDED
    @given(from_schema("client/text", alphabet=st.sampled_from("ab"), extra_fields=False))
    def check(frame: dict[str, Any]) -> None:
        assert set(frame["message"]) <= {"a", "b"}

    check()


def test_default_alphabet_excludes_surrogates_and_nul() -> None:
    @BOUNDED
    @given(unicode_text_alphabet())
    def check(char: str) -> None:
        assert char != "\x00"
        assert not 0xD800 <= ord(char) <= 0xDFFF

    check()


# --- the builder refuses what it does not cover -----------------------------------------------


# Test schemas live beside the real ones, so "common.json#/$defs/..." resolves.
TEST_ID = "https://edusphere.example/schemas/test.json"


def build(contents: dict[str, Any]) -> Any:
    options = _Options(text_limit=None, extra_fields=True, alphabet=unicode_text_alphabet())
    resolver = schemas.registry().resolver(base_uri=TEST_ID)
    return _Builder(options).build(contents, resolver)


@pytest.mark.parametrize(
    "contents",
    [
        {"type": "object", "minProperties": 1},
        {"type": "array", "prefixItems": [{"type": "string"}]},
        {"type": "object", "unevaluatedProperties": False},
        {"type": "string", "format": "email"},
        {"$ref": "common.json#/$defs/uuid", "minLength": 3},
        {"anyOf": [{"type": "string"}], "allOf": [{"minLength": 1}]},
    ],
)
def test_builder_refuses_keywords_it_does_not_cover(contents: dict[str, Any]) -> None:
    with pytest.raises(SchemaStrategyError):
        build(contents)


@pytest.mark.parametrize(
    ("contents", "exact"),
    [
        ({"enum": ["a", 1, None]}, True),
        ({"type": ["integer", "null"], "minimum": 3, "maximum": 5}, True),
        ({"type": "number", "exclusiveMinimum": 0, "maximum": 1}, True),
        ({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 3}, True),
        (
            {
                "type": "array",
                "items": {"$ref": "common.json#/$defs/uuid"},
                "minItems": 1,
                "maxItems": 2,
            },
            True,
        ),
        ({"allOf": [{"type": "string"}, {"minLength": 2, "maxLength": 4}]}, True),
        ({"type": "string", "pattern": "^[a-z]{2,4}$"}, True),
        ({"$ref": "common.json#/$defs/userId"}, True),
        ({"properties": {"a": {"const": 1}}, "required": ["a"]}, True),
        ({"type": "object", "additionalProperties": {"type": "integer"}}, True),
        ({"type": "object", "additionalProperties": False}, True),
        # oneOf: a value may match two branches, so from_schema filters these
        (
            {"oneOf": [{"type": "string", "maxLength": 3}, {"type": "string", "minLength": 2}]},
            False,
        ),
    ],
)
def test_builder_covers_the_keywords_it_claims(contents: dict[str, Any], exact: bool) -> None:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]

    validator = Draft202012Validator(
        {"$id": TEST_ID, **contents},
        registry=schemas.registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    values = sample(build(contents), BOUNDED)
    valid = [value for value in values if validator.is_valid(value)]
    assert valid
    if exact:
        assert valid == values


# --- near misses ------------------------------------------------------------------------------


@pytest.mark.parametrize("include_servable", [False, True])
@pytest.mark.parametrize("name", CLIENT + SERVER)
def test_every_near_miss_fails_validation(name: str, include_servable: bool) -> None:
    @BOUNDED
    @given(near_miss(name, include_servable=include_servable))
    def check(near: NearMiss) -> None:
        assert near.schema == name
        assert near.kind in NEAR_MISS_KINDS
        assert schemas.validate(name, near.value) != []
        if not include_servable:
            assert not near.servable
        if isinstance(near.value, bytes):
            assert near.kind in ("binary", "binary-json")
            assert near.wire == near.value
        else:
            assert json.loads(near.wire) == near.value

    check()


# A text frame has no required field with a format (its only format is the optional timestamp).
COVERED = [
    (name, kind)
    for name in CLIENT
    for kind in NEAR_MISS_KINDS
    if not (name == "client/text" and kind == "bad-format")
]


@pytest.mark.parametrize(("name", "kind"), COVERED)
def test_near_misses_cover_every_kind(name: str, kind: str) -> None:
    few = settings(max_examples=5, deadline=None)
    nears = sample(near_miss(name, kinds=[kind], include_servable=True), few)
    assert nears
    assert {near.kind for near in nears} == {kind}


def test_default_near_misses_are_the_ones_no_server_may_serve() -> None:
    for near in sample(near_miss("client/update")):
        assert near.kind not in SERVABLE_KINDS
        assert near.field not in SERVABLE_FIELDS
        assert near.value not in ({"type": None}, {"type": ""})


def test_servable_near_misses_are_tagged() -> None:
    nears = sample(near_miss("client/text", include_servable=True))
    for near in nears:
        if near.kind in SERVABLE_KINDS or near.field == "message":
            assert near.servable, near
    assert any(near.servable for near in nears)
    assert any(not near.servable for near in nears)


def test_server_frame_near_misses_are_never_servable() -> None:
    nears = sample(near_miss("server/new", include_servable=True))
    assert not any(near.servable for near in nears)
    missing_type = near_miss("server/new", kinds=["missing-type"])  # not filtered out
    assert sample(missing_type, settings(max_examples=3, deadline=None))


def test_one_field_is_wrong_in_each_near_miss() -> None:
    @BOUNDED
    @given(near_miss("client/update", kinds=["wrong-type", "bad-format", "missing-field"]))
    def check(near: NearMiss) -> None:
        assert isinstance(near.value, dict)
        pointers = {v.pointer for v in schemas.validate("client/update", near.value)}
        expected = "" if near.kind == "missing-field" else f"/{near.field}"
        assert pointers == {expected}, near

    check()


def test_binary_near_misses_are_not_utf8() -> None:
    @BOUNDED
    @given(near_miss("client/text", kinds=["binary"]))
    def check(near: NearMiss) -> None:
        assert isinstance(near.wire, bytes)
        with pytest.raises(UnicodeDecodeError):
            near.wire.decode("utf-8")

    check()


def test_unknown_types_are_never_a_known_type_in_another_case() -> None:
    @BOUNDED
    @given(near_miss("client/text", kinds=["unknown-type"], include_servable=True))
    def check(near: NearMiss) -> None:
        assert isinstance(near.value, dict)
        value = near.value["type"]
        assert isinstance(value, str)
        assert value.strip().casefold() not in {"text", "update", "delete"}

    check()


def test_not_object_near_misses_are_json_but_not_objects() -> None:
    @BOUNDED
    @given(near_miss("client/delete", kinds=["not-object"]))
    def check(near: NearMiss) -> None:
        assert isinstance(near.wire, str)
        assert not isinstance(json.loads(near.wire), dict)
        assert str(near).startswith("not-object: JSON ")

    check()


def test_near_miss_kinds_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown near-miss kinds"):
        near_miss("client/text", kinds=["typo"])


def test_near_miss_of_a_kind_the_schema_cannot_miss_is_refused() -> None:
    with pytest.raises(SchemaStrategyError):
        near_miss("client/text", kinds=["bad-format"])
