"""The client-scope requirements, read from ``harness/catalogue.toml`` (never restated here)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CATALOGUE_PATH", "ClientCatalogue", "ClientRequirement", "load_client_catalogue"]

CATALOGUE_PATH = Path(__file__).resolve().parents[1] / "catalogue.toml"


@dataclass(frozen=True)
class ClientRequirement:
    id: str
    level: str
    statement: str
    source: str


@dataclass(frozen=True)
class ClientCatalogue:
    version: str
    requirements: tuple[ClientRequirement, ...]

    def get(self, rid: str) -> ClientRequirement | None:
        for requirement in self.requirements:
            if requirement.id == rid:
                return requirement
        return None

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.requirements)


def load_client_catalogue(path: Path = CATALOGUE_PATH) -> ClientCatalogue:
    """The requirements with ``scope = "client"``, in catalogue order."""
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    found = tuple(
        ClientRequirement(
            id=str(entry["id"]),
            level=str(entry["level"]),
            statement=str(entry["statement"]),
            source=str(entry.get("source", "")),
        )
        for entry in data.get("requirement", [])
        if entry.get("scope") == "client"
    )
    return ClientCatalogue(version=str(data.get("version", "")), requirements=found)
