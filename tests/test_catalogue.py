"""The requirement catalogue (harness/catalogue.toml) and its loader (harness/catalogue.py)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from harness import catalogue
from harness.catalogue import CATALOGUE_PATH
from harness.core.catalogue import LEVELS, Catalogue, Requirement, format_table

ID = re.compile(r"[A-Z]+-[0-9]{3}")


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    return catalogue.load()


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    with CATALOGUE_PATH.open("rb") as fh:
        return tomllib.load(fh)


# --- the data -----------------------------------------------------------------------------


def test_catalogue_has_fifty_or_more_requirements(cat: Catalogue) -> None:
    assert len(cat.requirements) >= 50


def test_ids_in_the_file_are_unique(raw: dict[str, Any]) -> None:
    """Read from the TOML itself, not through the loader, which could mask duplicates."""
    ids = [entry["id"] for entry in raw["requirement"]]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert duplicates == []


def test_ids_have_the_stable_area_number_format(cat: Catalogue) -> None:
    bad = [r.id for r in cat.requirements if not ID.fullmatch(r.id)]
    assert bad == []


def test_every_area_of_a_requirement_is_declared(cat: Catalogue) -> None:
    undeclared = sorted({r.area for r in cat.requirements} - set(cat.areas))
    assert undeclared == []


def test_every_declared_area_has_requirements_and_a_title(cat: Catalogue) -> None:
    used = {r.area for r in cat.requirements}
    assert sorted(set(cat.areas) - used) == []
    assert all(title.strip() for title in cat.areas.values())


def test_levels_are_valid(raw: dict[str, Any], cat: Catalogue) -> None:
    assert {entry["level"] for entry in raw["requirement"]} <= set(LEVELS)
    assert {r.level for r in cat.requirements} == set(LEVELS)


def test_every_requirement_has_a_statement_and_a_source(cat: Catalogue) -> None:
    assert [r.id for r in cat.requirements if not r.statement.strip()] == []
    assert [r.id for r in cat.requirements if not r.source.strip()] == []


def test_client_scope_is_exactly_the_client_area(cat: Catalogue) -> None:
    assert {r.scope for r in cat.requirements} == {"server", "client"}
    assert {r.id for r in cat.scoped("client")} == {
        r.id for r in cat.requirements if r.area == "CLIENT"
    }


def test_lookup_by_id(cat: Catalogue) -> None:
    first = cat.requirements[0]
    assert first.id in cat
    assert cat[first.id] is first
    assert "NOPE-001" not in cat
    with pytest.raises(KeyError):
        cat["NOPE-001"]


def test_area_is_the_id_prefix() -> None:
    req = Requirement(id="ROBUST-012", level="SHOULD", statement="s", source="x")
    assert req.area == "ROBUST"
    assert req.scope == "server"


# --- the loader ---------------------------------------------------------------------------


def _toml(requirements: list[dict[str, str]]) -> str:
    lines = ['version = "9.9"', "[areas]", 'AAA = "Area A"']
    for entry in requirements:
        lines.append("[[requirement]]")
        lines.extend(f'{key} = "{value}"' for key, value in entry.items())
    return "\n".join(lines) + "\n"


def test_loader_reads_a_catalogue_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        _toml(
            [
                {"id": "AAA-001", "level": "MUST", "statement": "one", "source": "seed"},
                {
                    "id": "AAA-002",
                    "level": "INFO",
                    "statement": "two",
                    "source": "notes",
                    "scope": "client",
                },
            ]
        ),
        encoding="utf-8",
    )
    loaded = catalogue.load(path)
    assert loaded.version == "9.9"
    assert loaded.areas == {"AAA": "Area A"}
    assert [(r.id, r.level, r.scope) for r in loaded.requirements] == [
        ("AAA-001", "MUST", "server"),
        ("AAA-002", "INFO", "client"),
    ]


def test_loader_refuses_a_duplicate_id(tmp_path: Path) -> None:
    entry = {"id": "AAA-001", "level": "MUST", "statement": "s", "source": "x"}
    path = tmp_path / "c.toml"
    path.write_text(_toml([entry, entry]), encoding="utf-8")
    with pytest.raises(ValueError, match="duplicate"):
        catalogue.load(path)


def test_loader_refuses_an_unknown_level(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        _toml([{"id": "AAA-001", "level": "MAY", "statement": "s", "source": "x"}]),
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"AAA-001.*'MAY'"):
        catalogue.load(path)


# --- select (--only) ----------------------------------------------------------------------


@pytest.mark.parametrize("only", [None, ""])
def test_select_nothing_means_everything(cat: Catalogue, only: str | None) -> None:
    assert cat.select(only) == {r.id for r in cat.requirements}


def test_select_an_area(cat: Catalogue) -> None:
    chosen = cat.select("AUTH")
    assert chosen == {r.id for r in cat.requirements if r.area == "AUTH"}
    assert len(chosen) > 1


def test_select_ids_and_areas_mixed_with_spaces_and_lower_case(cat: Catalogue) -> None:
    chosen = cat.select(" edit-002 , DEL,CONN-001 ")
    expected = {"EDIT-002", "CONN-001"} | {r.id for r in cat.requirements if r.area == "DEL"}
    assert chosen == expected


def test_select_an_id_only_chooses_that_id(cat: Catalogue) -> None:
    assert cat.select("EDIT-002") == {"EDIT-002"}


@pytest.mark.parametrize("only", ["NOPE", "AUTH,NOPE", "AUTH-999,AUTH", "AUTH-1"])
def test_select_refuses_a_bad_token_naming_it(cat: Catalogue, only: str) -> None:
    bad = next(t for t in only.split(",") if t not in cat.areas)
    with pytest.raises(ValueError) as info:
        cat.select(only)
    message = str(info.value)
    assert repr(bad) in message
    assert "\n" not in message


# --- format_table (edusphere-conformance list) --------------------------------------------


def test_format_table_lists_every_id_with_its_level(cat: Catalogue) -> None:
    lines = format_table(cat).splitlines()
    assert cat.version in lines[0]
    for req in cat.requirements:
        row = [line for line in lines if line.split()[:1] == [req.id]]
        assert len(row) == 1, req.id
        assert row[0].split()[1] == req.level


def test_format_table_names_every_area(cat: Catalogue) -> None:
    text = format_table(cat)
    for area, title in cat.areas.items():
        assert f"{area}: {title}" in text


def test_format_table_with_a_scope_lists_only_that_scope(cat: Catalogue) -> None:
    text = format_table(cat, "client")
    listed = set(ID.findall(text))
    assert listed == {r.id for r in cat.scoped("client")}


def test_format_table_footer_counts_the_listed_requirements(cat: Catalogue) -> None:
    footer = format_table(cat, "client").splitlines()[-1]
    assert footer.startswith(f"{len(cat.scoped('client'))} requirements")
