"""The requirement catalogue as data: its types and :func:`parse` (no file: the one reader of
``harness/catalogue.toml`` is :mod:`harness.catalogue`); never restated in code."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

Level = Literal["MUST", "SHOULD", "INFO"]
LEVELS: tuple[Level, ...] = ("MUST", "SHOULD", "INFO")
#: The conditions a requirement may need (``needs``), each with what a target lacking it is
#: told: ``nodes``, a deployment named node by node (NODE-*); ``network``, a server on the
#: network rather than an application in-process (a half-open TCP peer, TCP backpressure, the
#: frame size an ASGI server enforces, a server process to restart).
NEEDS: Mapping[str, str] = MappingProxyType(
    {
        "nodes": "needs nodes = [...] in the target file (two or more nodes named one by one)",
        "network": "needs a network transport (the target is an in-process [asgi] application)",
        "twin": "needs rooms.twin_host in the target file (another host with a room of the slug of "
        "rooms.main and the same participants)",
    }
)


@dataclass(frozen=True)
class Requirement:
    id: str
    level: Level
    statement: str
    source: str
    scope: str = "server"
    #: Why the level is what it is, where the source alone does not say.
    rationale: str = ""
    #: What the target must offer for the requirement to apply (:data:`NEEDS`): without it,
    #: the requirement is not tested and does not count towards the verdict.
    needs: str | None = None

    @property
    def area(self) -> str:
        return self.id.rsplit("-", 1)[0]


@dataclass(frozen=True)
class Catalogue:
    version: str
    areas: dict[str, str]
    requirements: tuple[Requirement, ...]
    #: The seed's facts (error texts, limits), read by :mod:`harness.spec`.
    protocol: Mapping[str, Any] = field(default_factory=dict)
    #: Which requirement each shared check names, read by :mod:`harness.spec`.
    checks: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, rid: str) -> Requirement:
        return self.by_id[rid]

    def __contains__(self, rid: object) -> bool:
        return rid in self.by_id

    @functools.cached_property
    def by_id(self) -> dict[str, Requirement]:
        return {r.id: r for r in self.requirements}

    def scoped(self, scope: str) -> tuple[Requirement, ...]:
        return tuple(r for r in self.requirements if r.scope == scope)

    def select(self, only: str | None) -> set[str]:
        """Requirement ids named by ``--only`` (areas like ``AUTH`` or ids like ``EDIT-002``).

        Raises ``ValueError`` naming the first token that is neither.
        """
        if not only:
            return set(self.by_id)
        chosen: set[str] = set()
        for token in (t.strip().upper() for t in only.split(",")):
            if not token:
                continue
            if token in self.by_id:
                chosen.add(token)
            elif token in self.areas:
                chosen.update(r.id for r in self.requirements if r.area == token)
            else:
                raise ValueError(f"--only: {token!r} is neither an area nor a requirement id")
        return chosen


def parse(data: dict[str, object]) -> Catalogue:
    reqs = []
    raw = data.get("requirement")
    assert isinstance(raw, list)
    for entry in raw:
        level = entry["level"]
        if level not in LEVELS:
            raise ValueError(f"catalogue: {entry['id']}: unknown level {level!r}")
        needs = entry.get("needs")
        if needs is not None and needs not in NEEDS:
            raise ValueError(f"catalogue: {entry['id']}: unknown needs {needs!r}")
        reqs.append(
            Requirement(
                id=entry["id"],
                level=level,
                statement=entry["statement"],
                source=entry["source"],
                scope=entry.get("scope", "server"),
                rationale=entry.get("rationale", ""),
                needs=needs,
            )
        )
    areas = data.get("areas")
    assert isinstance(areas, dict)
    ids = [r.id for r in reqs]
    if len(ids) != len(set(ids)):
        raise ValueError("catalogue: duplicate requirement id")
    protocol, checks = data.get("protocol", {}), data.get("checks", {})
    assert isinstance(protocol, dict) and isinstance(checks, dict)
    return Catalogue(
        version=str(data["version"]),
        areas=dict(areas),
        requirements=tuple(reqs),
        protocol=protocol,
        checks=checks,
    )


def format_table(catalogue: Catalogue, scope: str | None = None) -> str:
    """The catalogue as a plain-text table (``edusphere-conformance list``)."""
    lines = [f"EduSphere chat conformance catalogue {catalogue.version}"]
    current = ""
    for req in catalogue.requirements:
        if scope and req.scope != scope:
            continue
        if req.area != current:
            current = req.area
            lines.append("")
            lines.append(f"{current}: {catalogue.areas.get(current, '')}")
        lines.append(f"  {req.id:<11} {req.level:<6} {req.statement}")
    listed = [r for r in catalogue.requirements if not scope or r.scope == scope]
    counts = {lvl: sum(1 for r in listed if r.level == lvl) for lvl in LEVELS}
    lines.append("")
    lines.append(
        f"{len(listed)} requirements: " + ", ".join(f"{n} {lvl}" for lvl, n in counts.items())
    )
    return "\n".join(lines)
