"""The protocol's facts (harness/spec.py): equal to the seed, read from data, not restated.

The seed strings below are the independent oracle: copied by hand from the seed
(websocket-api.md, "Error Handling" and "Common Error Messages"), on purpose not read through the
code under test. Nowhere else may they be written out.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from harness import catalogue, schemas, spec
from harness.target import Target

ROOT = Path(__file__).resolve().parent.parent
SUITES = sorted((ROOT / "suites").glob("*.py"))

# The oracle, from the seed ("Common Error Messages" table and the "Error Handling" example).
SEED_TOO_LONG = "Message exceeds {max} characters."
SEED_NOT_FOUND = "Message not found."
SEED_DELETE_OWN = "You can only delete your own messages."
SEED_EDIT_OWN = "You can only edit your own messages."
SEED_EXAMPLE = "Message exceeds 500 characters."  # "Error Handling": {"error": "..."}
SEED_MAX_LENGTH = 500
# Seed, "Message Types (Client to Server)": the fields of the text, delete and update formats.
SEED_CLIENT_FIELDS = {"type", "message", "messageId", "timestamp"}


# --- the values equal the seed ------------------------------------------------------------


def test_error_strings_are_the_seeds() -> None:
    seed = spec.Errors(
        too_long=SEED_TOO_LONG,
        not_found=SEED_NOT_FOUND,
        delete_own=SEED_DELETE_OWN,
        edit_own=SEED_EDIT_OWN,
    )
    assert seed == spec.ERRORS


def test_limit_is_the_seeds_and_its_error_reads_as_the_seeds_example() -> None:
    assert spec.MAX_LENGTH == SEED_MAX_LENGTH
    assert spec.too_long(spec.MAX_LENGTH) == SEED_EXAMPLE


def test_length_error_names_any_configured_limit() -> None:
    assert spec.too_long(280) == "Message exceeds 280 characters."


def test_refusal_of_someone_elses_message_depends_on_the_frame() -> None:
    assert spec.not_yours("update") == SEED_EDIT_OWN
    assert spec.not_yours("delete") == SEED_DELETE_OWN


def test_client_fields_are_the_seeds_formats() -> None:
    assert spec.CLIENT_FIELDS == SEED_CLIENT_FIELDS


def test_every_protocol_fact_names_its_seed_section() -> None:
    with catalogue.CATALOGUE_PATH.open("rb") as fh:
        protocol = tomllib.load(fh)["protocol"]
    entries = [protocol["max_length"], *protocol["errors"].values()]
    assert all(str(entry["source"]).startswith("seed: ") for entry in entries)


def test_target_default_limit_is_the_specs() -> None:
    default = next(f.default for f in dataclasses.fields(Target) if f.name == "max_length")
    assert default == spec.MAX_LENGTH


# --- documented fields come from the schemas ----------------------------------------------


@pytest.mark.parametrize("action", [*spec.EVENT_ACTIONS, "error"])
def test_documented_fields_are_the_schemas_required_set(action: str) -> None:
    assert spec.documented_fields(action) == spec.required_fields(f"server/{action}")


def test_documented_map_covers_every_event_action() -> None:
    assert set(spec.DOCUMENTED) == set(spec.EVENT_ACTIONS)
    for action, fields in spec.DOCUMENTED.items():
        assert fields == spec.documented_fields(action)


def test_client_fields_are_the_client_schemas_properties() -> None:
    names = [n for n in schemas.schema_names() if n.startswith("client/")]
    assert names
    for name in names:
        assert spec.required_fields(name) <= spec.CLIENT_FIELDS


# --- the requirement maps -----------------------------------------------------------------


def test_every_mapped_requirement_is_in_the_catalogue() -> None:
    known = catalogue.load()
    ids = [
        *spec.ECHO_REQUIREMENT.values(),
        *spec.FANOUT_REQUIREMENT.values(),
        *spec.SCHEMA_REQUIREMENT.values(),
        *spec.FIELD_REQUIREMENT.values(),
    ]
    assert [rid for rid in ids if rid not in known] == []


def test_echo_and_fanout_name_a_requirement_per_event_action() -> None:
    assert set(spec.ECHO_REQUIREMENT) == set(spec.EVENT_ACTIONS)
    assert set(spec.FANOUT_REQUIREMENT) == set(spec.EVENT_ACTIONS)


def test_schema_map_covers_every_server_schema() -> None:
    server = {n for n in schemas.schema_names() if n.startswith("server/")}
    assert set(spec.SCHEMA_REQUIREMENT) == server


def test_field_map_names_documented_fields_only() -> None:
    for name, field in spec.FIELD_REQUIREMENT:
        assert field in spec.documented_fields(name.removeprefix("server/")), (name, field)


def test_unknown_requirement_in_a_map_is_refused() -> None:
    with pytest.raises(
        ValueError, match=re.escape("checks.echo.new: unknown requirement 'NOPE-001'")
    ):
        spec._ids({"new": "NOPE-001"}, "checks.echo")


@pytest.mark.parametrize("value", [0, -1, True, "500"])
def test_limit_must_be_a_positive_integer(value: object) -> None:
    with pytest.raises(ValueError, match=re.escape("protocol.max_length.value")):
        spec._max_length({"protocol": {"max_length": {"value": value}}})


# --- no restatement -----------------------------------------------------------------------

RESTATED = [
    SEED_TOO_LONG,
    SEED_NOT_FOUND,
    SEED_DELETE_OWN,
    SEED_EDIT_OWN,
    # Fragments, so that a reworded or formatted copy is caught too.
    "Message exceeds",
    "Message not found",
    "your own messages",
]
NUMBER = re.compile(rf"(?<![\w.]){SEED_MAX_LENGTH}(?![\w.])")


def test_suites_exist() -> None:
    assert len(SUITES) >= 10


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_suite_restates_no_error_string_and_not_the_limit(path: Path) -> None:
    """Suites take these from harness.spec; a copy would drift from the catalogue."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = [
        f"{path.name}:{n}: {line.strip()}"
        for n, line in enumerate(lines, 1)
        if any(s in line for s in RESTATED) or NUMBER.search(line)
    ]
    assert found == []


def test_restatement_check_catches_a_copy() -> None:
    """The check above is not vacuous: each pattern matches the line a copy would be."""
    assert NUMBER.search("limit = min(chat.target.max_length, 500)")
    assert not NUMBER.search("about 2.5 MB; 5000 cycles; 1500 ms")
    assert any(s in 'NOT_FOUND = "Message not found"' for s in RESTATED)


def test_spec_imports_neither_websockets_nor_pytest() -> None:
    """The core is I/O-free: checked in a fresh interpreter, where nothing else imported them."""
    code = (
        "import sys, harness.spec; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'websockets', 'pytest'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"
