"""The schemas and harness.schemas: seed examples, formats, open points, AsyncAPI, results.json."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin

import pytest
import yaml
from jsonschema import (  # type: ignore[import-untyped, unused-ignore]
    Draft202012Validator,
    FormatChecker,
)

from harness import schemas
from harness.schemas import (
    SCHEMA_DIR,
    Violation,
    classify_server_frame,
    client_frame_kind,
    validate,
)

# --- the seed's examples, copied verbatim from websocket-api.md -------------------------------
# (The seed labels the delete and update examples `sql`; they are JSON.)

SEED_TEXT = """
{
  "type": "text",
  "message": "Hello world!",
  "timestamp": "2024-01-01T12:00:00.000Z"
}
"""

SEED_DELETE = """
{
  "type": "delete", 
  "messageId": "123e4567-e89b-12d3-a456-426614174000",
  "timestamp": "2024-01-01T12:00:00.000Z"
}
"""  # noqa: W291 - the trailing space is the seed's

SEED_UPDATE = """
{
  "type": "update",
  "messageId": "123e4567-e89b-12d3-a456-426614174000", 
  "message": "Updated message content",
  "timestamp": "2024-01-01T12:00:00.000Z"
}
"""  # noqa: W291

SEED_NEW_EVENT = """
{
  "type": "chat_message",
  "action": "new",
  "id": "123e4567-e89b-12d3-a456-426614174000",
  "user": "johndoe", 
  "user_id": "456e7890-e89b-12d3-a456-426614174000",
  "body": "Hello world!",
  "created": "2024-01-01T12:00:00.000000Z",
  "edited": false,
  "updated": "2024-01-01T12:00:00.000000Z",
  "userAvatar": "avatars/user.jpg"
}
"""  # noqa: W291

SEED_DELETE_EVENT = """
{
  "type": "chat_message",
  "action": "delete", 
  "id": "123e4567-e89b-12d3-a456-426614174000"
}
"""  # noqa: W291

SEED_UPDATE_EVENT = """
{
  "type": "chat_message",
  "action": "update",
  "id": "123e4567-e89b-12d3-a456-426614174000",
  "body": "Updated message content",
  "edited": true,
  "updated": "2024-01-01T12:01:00.000000Z"
}
"""

SEED_ERROR = """
{
  "error": "Message exceeds 500 characters."
}
"""

SEED_EXAMPLES = {
    "client/text": SEED_TEXT,
    "client/delete": SEED_DELETE,
    "client/update": SEED_UPDATE,
    "server/new": SEED_NEW_EVENT,
    "server/delete": SEED_DELETE_EVENT,
    "server/update": SEED_UPDATE_EVENT,
    "server/error": SEED_ERROR,
}

FRAME_SCHEMAS = sorted(SEED_EXAMPLES)


def seed(name: str) -> dict[str, Any]:
    frame = json.loads(SEED_EXAMPLES[name])
    assert isinstance(frame, dict)
    return frame


def messages(violations: list[Violation]) -> str:
    return "\n".join(str(v) for v in violations)


# --- the files ------------------------------------------------------------------------------


def test_schema_dir_is_the_repo_schemas_directory() -> None:
    assert Path(__file__).resolve().parent.parent / "schemas" == SCHEMA_DIR
    assert (SCHEMA_DIR / "common.json").is_file()


def test_every_schema_file_is_loaded_by_name() -> None:
    assert set(schemas.schema_names()) >= {*FRAME_SCHEMAS, "common", "results", "load", "target"}


def test_the_target_file_schema_is_published_valid_and_for_editors() -> None:
    """``schemas/target.json``: what the harness reads every target file through, and what an
    editor can point at (``#:schema``)."""
    contents = schemas.schema("target")
    Draft202012Validator.check_schema(contents)
    assert (SCHEMA_DIR / "target.json").is_file()
    assert "#:schema" in contents["description"]
    assert contents["additionalProperties"] is False


@pytest.mark.parametrize("name", schemas.schema_names())  # every file: no check at run time
def test_schema_is_valid_2020_12_with_id_matching_its_path(name: str) -> None:
    contents = schemas.schema(name)
    Draft202012Validator.check_schema(contents)
    assert contents["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert contents["$id"] == f"https://edusphere.example/schemas/{name}.json"
    assert contents["title"]
    assert contents["description"]


@pytest.mark.parametrize("name", FRAME_SCHEMAS)
def test_frame_schema_description_quotes_the_seed(name: str) -> None:
    assert "Seed, " in schemas.schema(name)["description"]


@pytest.mark.parametrize("name", FRAME_SCHEMAS)
def test_frame_schemas_allow_extra_properties(name: str) -> None:
    assert schemas.schema(name)["additionalProperties"] is True


def _walk(node: object, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}/{index}")


_ANNOTATIONS = {"$ref", "title", "description", "$comment", "examples", "default"}


@pytest.mark.parametrize("name", schemas.schema_names())
def test_no_ref_has_validation_siblings(name: str) -> None:
    """Draft-07 tools (AsyncAPI's default schema format) ignore a ``$ref``'s siblings; with only
    annotations beside each ``$ref`` they read our schemas exactly as 2020-12 does."""
    for path, node in _walk(schemas.schema(name)):
        if "$ref" in node and not path.endswith("/examples"):
            assert set(node) <= _ANNOTATIONS, f"{name}{path}: {sorted(node)}"


def _resolve_pointer(document: object, pointer: str) -> object:
    node = document
    for raw in pointer.split("/")[1:] if pointer else []:
        token = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(token)]
        else:
            assert isinstance(node, dict), f"cannot descend into {node!r} with {token!r}"
            assert token in node, f"{token!r} not in {sorted(node)}"
            node = node[token]
    return node


def _load(path: Path) -> object:
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)


def _check_refs(path: Path) -> int:
    """Resolve every ``$ref`` in the file at *path* as a file path plus JSON pointer."""
    document = _load(path)
    count = 0
    for where, node in _walk(document):
        ref = node.get("$ref")
        if not isinstance(ref, str) or where.endswith("/properties"):
            continue
        file_part, _, pointer = ref.partition("#")
        target_path = (path.parent / file_part).resolve() if file_part else path
        assert target_path.is_file(), f"{path.name}{where}: {ref} names no file"
        target = _load(target_path) if file_part else document
        _resolve_pointer(target, pointer)
        count += 1
    return count


@pytest.mark.parametrize("name", schemas.schema_names())
def test_every_ref_in_schema_files_resolves_to_a_file_and_pointer(name: str) -> None:
    _check_refs(SCHEMA_DIR / f"{name}.json")


@pytest.mark.parametrize("name", schemas.schema_names())
def test_every_ref_resolves_through_the_registry_too(name: str) -> None:
    base = schemas.schema_id(name)
    resolver = schemas.registry().resolver(base_uri=base)
    for _, node in _walk(schemas.schema(name)):
        ref = node.get("$ref")
        if isinstance(ref, str):
            assert resolver.lookup(ref).contents is not None, urljoin(base, ref)


def test_unknown_schema_name_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="unknown schema 'server/nope'"):
        schemas.validator("server/nope")


# --- format checking ------------------------------------------------------------------------


def test_format_checker_checks_date_time_and_uuid() -> None:
    checked = set(schemas.validator("server/new").format_checker.checkers)
    assert {"date-time", "uuid"} <= checked


def test_missing_date_time_checker_is_refused_naming_rfc3339_validator() -> None:
    without = FormatChecker(formats=["uuid"])
    with pytest.raises(RuntimeError, match="rfc3339-validator"):
        schemas.require_formats(without)


def test_invalid_uuid_is_rejected_by_the_format_checker() -> None:
    frame = seed("server/delete") | {"id": "123e4567-e89b-12d3-a456-42661417400g"}
    violations = validate("server/delete", frame)
    assert [(v.pointer, v.message) for v in violations] == [
        ("/id", "'123e4567-e89b-12d3-a456-42661417400g' is not a 'uuid'")
    ]


def test_impossible_date_passes_the_pattern_but_not_the_format_checker() -> None:
    """30 February has the right shape: only rfc3339-validator's calendar check rejects it, so
    this proves that the ``date-time`` format is really checked."""
    frame = seed("server/update") | {"updated": "2024-02-30T12:00:00Z"}
    violations = validate("server/update", frame)
    assert [(v.pointer, v.message) for v in violations] == [
        ("/updated", "'2024-02-30T12:00:00Z' is not a 'date-time'")
    ]


@pytest.mark.parametrize(
    "timestamp",
    [
        "2024-01-01T12:00:00Z",
        "2024-01-01T12:00:00+00:00",
        "2024-01-01T12:00:00-05:30",
        "2024-01-01T12:00:00.123Z",
        "2024-01-01T12:00:00.123456Z",
        "2024-01-01T12:00:00.123456789Z",
        "2024-01-01T12:00:00.123456+00:00",
        "2024-01-01T12:00:00.1+02:00",
        "2024-01-01t12:00:00z",
        "2024-02-29T23:59:59Z",
    ],
)
def test_rfc3339_timestamps_are_accepted(timestamp: str) -> None:
    for name in ("server/new", "client/text"):
        frame = seed(name)
        frame["created" if name == "server/new" else "timestamp"] = timestamp
        assert validate(name, frame) == [], timestamp


@pytest.mark.parametrize(
    "timestamp",
    [
        "2024-01-01T12:00:00",  # no time zone
        "2024-01-01T12:00:00.000000",  # no time zone
        "2024-01-01 12:00:00Z",  # space instead of T
        "2024-01-01T12:00Z",  # no seconds
        "2024-01-01T12:00:00+0000",  # offset without colon
        "2024-01-01T12:00:00.Z",  # empty fraction
        "2024-01-01T12:00:00Z\n",  # trailing newline
        "2023-02-29T12:00:00Z",  # not a leap year
        "2024-01-01T24:00:00Z",
        "2024-13-01T12:00:00Z",
        "1704110400",
        "",
    ],
)
def test_malformed_timestamps_are_rejected(timestamp: str) -> None:
    frame = seed("server/new") | {"updated": timestamp}
    violations = validate("server/new", frame)
    assert [v.pointer for v in violations] == ["/updated"], messages(violations)
    assert violations[0].message.endswith("is not a 'date-time'")


@pytest.mark.parametrize(
    "value",
    [
        "123e4567-e89b-12d3-a456-42661417400",
        "123e4567e89b12d3a456426614174000",
        "{123e4567-e89b-12d3-a456-426614174000}",
        "urn:uuid:123e4567-e89b-12d3-a456-426614174000",
        "123e4567-e89b-12d3-a456-426614174000\n",
        "",
        "１２３e4567-e89b-12d3-a456-426614174000",
    ],
)
def test_malformed_uuids_are_rejected(value: str) -> None:
    frame = seed("client/delete") | {"messageId": value}
    assert [v.pointer for v in validate("client/delete", frame)] == ["/messageId"]


def test_upper_case_uuid_is_accepted() -> None:
    frame = seed("client/delete") | {"messageId": "123E4567-E89B-12D3-A456-426614174000"}
    assert validate("client/delete", frame) == []


# --- seed examples and open points ----------------------------------------------------------


@pytest.mark.parametrize("name", FRAME_SCHEMAS)
def test_seed_example_validates(name: str) -> None:
    assert validate(name, seed(name)) == []


@pytest.mark.parametrize("name", FRAME_SCHEMAS)
def test_schema_examples_are_the_seed_examples(name: str) -> None:
    assert schemas.schema(name)["examples"] == [seed(name)]


def test_results_examples_validate() -> None:
    for example in schemas.schema("results")["examples"]:
        assert validate("results", example) == []


def test_user_avatar_may_be_null() -> None:
    assert validate("server/new", seed("server/new") | {"userAvatar": None}) == []


@pytest.mark.parametrize("avatar", [42, False, {"url": "x"}])
def test_user_avatar_of_another_type_is_rejected(avatar: object) -> None:
    violations = validate("server/new", seed("server/new") | {"userAvatar": avatar})
    assert [v.pointer for v in violations] == ["/userAvatar"]


@pytest.mark.parametrize("user_id", ["456e7890-e89b-12d3-a456-426614174000", "42", "u-42", 42, 0])
def test_user_id_may_be_a_uuid_a_string_or_an_integer(user_id: object) -> None:
    assert validate("server/new", seed("server/new") | {"user_id": user_id}) == []


@pytest.mark.parametrize("user_id", ["", None, True, 4.5, [], {}])
def test_user_id_of_another_kind_is_rejected(user_id: object) -> None:
    violations = validate("server/new", seed("server/new") | {"user_id": user_id})
    assert [v.pointer for v in violations] == ["/user_id"]


@pytest.mark.parametrize("name", FRAME_SCHEMAS)
def test_extra_fields_are_accepted(name: str) -> None:
    frame = seed(name) | {"room": "general", "reactions": [], "meta": {"x": None}, "n": 1.5}
    assert validate(name, frame) == []


def _required(name: str) -> list[tuple[str, str]]:
    return [(name, field) for field in schemas.schema(name)["required"]]


@pytest.mark.parametrize(
    ("name", "field"), [pair for name in FRAME_SCHEMAS for pair in _required(name)]
)
def test_missing_documented_field_is_rejected(name: str, field: str) -> None:
    frame = seed(name)
    assert field in frame, "every required field appears in the seed example"
    del frame[field]
    violations = validate(name, frame)
    assert [(v.pointer, v.message) for v in violations] == [
        ("", f"{field!r} is a required property")
    ]


def test_new_event_requires_every_documented_field() -> None:
    assert set(schemas.schema("server/new")["required"]) == set(seed("server/new"))


def test_client_timestamp_is_optional() -> None:
    for name in ("client/text", "client/update", "client/delete"):
        frame = seed(name)
        del frame["timestamp"]
        assert validate(name, frame) == []


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("server/new", "edited", True),
        ("server/update", "edited", False),
        ("server/new", "action", "update"),
        ("server/new", "type", "chat"),
        ("client/text", "type", "update"),
        ("client/text", "message", 5),
        ("client/text", "message", ""),
        ("client/update", "message", None),
        ("server/new", "body", None),
        ("server/new", "user", ""),
        ("server/error", "error", {"code": 1}),
    ],
)
def test_wrong_value_is_rejected(name: str, field: str, value: object) -> None:
    violations = validate(name, seed(name) | {field: value})
    assert [v.pointer for v in violations] == [f"/{field}"], messages(violations)
    assert violations[0].value == value


def test_long_message_is_a_valid_frame() -> None:
    """A message over the server's limit is a frame the server answers with an error."""
    assert validate("client/text", seed("client/text") | {"message": "x" * 501}) == []


def test_astral_message_is_accepted() -> None:
    assert validate("client/text", seed("client/text") | {"message": "😀" * 500}) == []


@pytest.mark.parametrize("frame", [None, [], "text", 3, True])
def test_non_object_is_rejected_at_the_root(frame: object) -> None:
    violations = validate("client/text", frame)
    assert [v.pointer for v in violations] == [""]
    assert "is not of type 'object'" in violations[0].message


# --- Violation --------------------------------------------------------------------------------


def test_violation_renders_pointer_message_and_file() -> None:
    frame = seed("server/new") | {"created": "2024-01-01 12:00"}
    (violation,) = validate("server/new", frame)
    assert violation == Violation(
        "server/new", "/created", "2024-01-01 12:00", "'2024-01-01 12:00' is not a 'date-time'"
    )
    assert str(violation) == (
        "/created: '2024-01-01 12:00' is not a 'date-time' (schemas/server/new.json)"
    )


def test_violation_at_the_root_says_so() -> None:
    frame = seed("server/delete")
    del frame["id"]
    (violation,) = validate("server/delete", frame)
    assert str(violation) == "(root): 'id' is a required property (schemas/server/delete.json)"


def test_violation_pointer_escapes_per_rfc_6901() -> None:
    assert schemas._pointer(["a/b", "c~d", 0]) == "/a~1b/c~0d/0"
    assert schemas._pointer([]) == ""


def test_violations_are_listed_each_once_sorted_by_pointer() -> None:
    frame = seed("server/new") | {"updated": "x", "created": "y", "id": 5}
    violations = validate("server/new", frame)
    assert [v.pointer for v in violations] == ["/created", "/id", "/updated"]


def test_violation_is_frozen() -> None:
    violation = Violation("server/new", "", None, "m")
    with pytest.raises(AttributeError):
        violation.pointer = "/x"  # type: ignore[misc]


# --- classification -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (seed("server/new"), "server/new"),
        (seed("server/update"), "server/update"),
        (seed("server/delete"), "server/delete"),
        (seed("server/error"), "server/error"),
        ({"error": None}, "server/error"),
        ({"error": "x", "type": "chat_message", "action": "new"}, "server/error"),
        ({"type": "chat_message", "action": "new"}, "server/new"),
        ({"type": "chat_message", "action": "edit"}, None),
        ({"type": "chat_message"}, None),
        ({"type": "chat_message", "action": ["new"]}, None),
        ({"type": "text", "action": "new"}, None),
        ({"action": "new"}, None),
        ({}, None),
        ([], None),
        ("error", None),
        (None, None),
    ],
)
def test_classify_server_frame(frame: object, expected: str | None) -> None:
    assert classify_server_frame(frame) == expected


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (seed("client/text"), "client/text"),
        (seed("client/update"), "client/update"),
        (seed("client/delete"), "client/delete"),
        ({"type": "text"}, "client/text"),
        ({"type": "TEXT"}, None),
        ({"type": "chat_message"}, None),
        ({"type": ["text"]}, None),
        ({"message": "hi"}, None),
        (["text"], None),
        (None, None),
    ],
)
def test_client_frame_kind(frame: object, expected: str | None) -> None:
    assert client_frame_kind(frame) == expected


# --- results.json -----------------------------------------------------------------------------


def results_example() -> dict[str, Any]:
    return copy.deepcopy(schemas.schema("results")["examples"][0])


def test_results_accepts_a_valid_file_with_extra_keys() -> None:
    results = results_example()
    results["strict"] = False
    results["conformant"] = True
    results["summary"]["MUST"]["fixed"] = 0
    requirement = results["requirements"][0]
    requirement.update({"area": "AUTH", "fixed": True, "observations": ["HTTP 403"]})
    assert validate("results", results) == []


@pytest.mark.parametrize("verdict", ["skipped", "PASSED", "error", None])
def test_results_rejects_a_bad_verdict(verdict: object) -> None:
    results = results_example()
    results["requirements"][0]["verdict"] = verdict
    violations = validate("results", results)
    assert [v.pointer for v in violations] == ["/requirements/0/verdict"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("summary", "LOW"), {"passed": 0, "failed": 0, "not_tested": 0, "known": 0}),
        (("summary", "MUST", "passed"), -1),
        (("requirements", 0, "fixed"), "yes"),
        (("requirements", 0, "level"), "MAY"),
        (("requirements", 0, "id"), "auth-1"),
        (("requirements", 0, "reason"), 3),
        (("started",), "2026-11-25 21:20:00"),
        (("duration_s",), -0.5),
    ],
)
def test_results_rejects_contract_breaches(path: tuple[Any, ...], value: object) -> None:
    results = results_example()
    node: Any = results
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert validate("results", results) != []


@pytest.mark.parametrize(
    "field", ["harness", "catalogue", "target", "started", "duration_s", "summary", "requirements"]
)
def test_results_requires_every_top_level_key(field: str) -> None:
    results = results_example()
    del results[field]
    assert [v.message for v in validate("results", results)] == [
        f"{field!r} is a required property"
    ]


@pytest.mark.parametrize("field", ["id", "level", "statement", "verdict", "tests", "reason"])
def test_results_requires_every_requirement_key(field: str) -> None:
    results = results_example()
    del results["requirements"][1][field]
    assert [v.pointer for v in validate("results", results)] == ["/requirements/1"]


def test_results_verdicts_and_levels_are_exactly_the_contract() -> None:
    defs = schemas.schema("results")["$defs"]
    assert defs["verdict"]["enum"] == ["passed", "failed", "not_tested", "known", "not_applicable"]
    assert defs["level"]["enum"] == ["MUST", "SHOULD", "INFO"]


# --- AsyncAPI ---------------------------------------------------------------------------------

ASYNCAPI = SCHEMA_DIR / "asyncapi.yaml"


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    document = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_asyncapi_version_is_3_0_0(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["info"]["title"]
    assert asyncapi["info"]["version"]


def test_asyncapi_every_ref_resolves_to_a_file_and_a_pointer() -> None:
    assert _check_refs(ASYNCAPI) > 20


def test_asyncapi_channel_has_the_endpoint_and_both_parameters(asyncapi: dict[str, Any]) -> None:
    (channel,) = asyncapi["channels"].values()
    assert channel["address"] == "/ws/chat/{host}/{room}"
    assert set(channel["parameters"]) == {"host", "room"}


def _deref(document: dict[str, Any], node: dict[str, Any]) -> Any:
    while "$ref" in node and node["$ref"].startswith("#"):
        node = _resolve_pointer(document, node["$ref"][1:])  # type: ignore[assignment]
    return node


def _payload_files(document: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    files = set()
    for message in operation["messages"]:
        payload = _deref(document, message)["payload"]
        files.add(payload["$ref"])
    return files


def test_asyncapi_operations_send_client_frames_and_receive_server_frames(
    asyncapi: dict[str, Any],
) -> None:
    operations = asyncapi["operations"]
    assert operations["send"]["action"] == "send"
    assert operations["receive"]["action"] == "receive"
    assert _payload_files(asyncapi, operations["send"]) == {
        "./client/text.json",
        "./client/update.json",
        "./client/delete.json",
    }
    assert _payload_files(asyncapi, operations["receive"]) == {
        "./server/new.json",
        "./server/update.json",
        "./server/delete.json",
        "./server/error.json",
    }


def test_asyncapi_operation_messages_belong_to_their_channel(asyncapi: dict[str, Any]) -> None:
    """AsyncAPI 3: an operation's messages must be a subset of its channel's messages."""
    for operation in asyncapi["operations"].values():
        channel_ref = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/")


def test_asyncapi_servers_offer_every_token_transport(asyncapi: dict[str, Any]) -> None:
    schemes = asyncapi["components"]["securitySchemes"]
    places = {(s["type"], s.get("in"), s.get("name")) for s in schemes.values()}
    assert ("httpApiKey", "cookie", "JWT") in places
    assert ("httpApiKey", "query", "JWT") in places
    assert ("httpApiKey", "header", "Sec-WebSocket-Protocol") in places
    assert any(s["type"] == "http" and s.get("bearerFormat") == "JWT" for s in schemes.values())
    for server in asyncapi["servers"].values():
        assert len(server["security"]) == len(schemes)


def test_asyncapi_message_examples_validate_against_their_payloads(
    asyncapi: dict[str, Any],
) -> None:
    for message in asyncapi["components"]["messages"].values():
        name = message["payload"]["$ref"].removeprefix("./").removesuffix(".json")
        assert message["examples"], name
        for example in message["examples"]:
            assert validate(name, example["payload"]) == [], name
            assert example["payload"] == seed(name)
