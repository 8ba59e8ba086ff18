"""Fault switches: each one breaks exactly one behaviour of the reference server.

The harness's mutation matrix starts the server with one fault at a time and checks that the
suites fail exactly the requirements listed in ``Fault.requirements``. Each fault is implemented
in the server code behind ``if "<name>" in config.faults``; this module is data only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["MUST", "SHOULD"]


@dataclass(frozen=True)
class Fault:
    """A named defect, the catalogue requirements it must trip, and their strongest level."""

    name: str
    description: str
    requirements: tuple[str, ...]
    level: Level


def _faults(*faults: Fault) -> dict[str, Fault]:
    return {fault.name: fault for fault in faults}


FAULTS: dict[str, Fault] = _faults(
    Fault(
        "no-echo",
        "The sender's own connection does not get the events its frames cause.",
        ("SEND-002", "EDIT-003", "DEL-002"),
        "MUST",
    ),
    Fault(
        "errors-broadcast",
        "Error frames go to every connection of the room instead of the sender only.",
        ("ERR-001", "ERR-002"),
        "MUST",
    ),
    Fault(
        "edit-others",
        "Anyone can edit any message of the room.",
        ("EDIT-005", "EDIT-006"),
        "MUST",
    ),
    Fault(
        "delete-others",
        "Anyone can delete any message of the room.",
        ("DEL-003", "DEL-004"),
        "MUST",
    ),
    Fault(
        "host-can-edit",
        "The room host may edit other users' messages.",
        ("EDIT-006",),
        "MUST",
    ),
    Fault(
        "host-can-delete",
        "The room host may delete other users' messages.",
        ("DEL-004",),
        "MUST",
    ),
    Fault(
        "limit-low",
        "The length limit is max_length - 1: a message of exactly the limit is refused.",
        ("SEND-007", "SEND-009", "EDIT-008"),
        "MUST",
    ),
    Fault(
        "limit-high",
        "The length limit is max_length + 1: a message one over the limit is accepted.",
        ("SEND-008", "SEND-009", "EDIT-008"),
        "MUST",
    ),
    Fault(
        "limit-utf16",
        "Length is counted in UTF-16 code units: 500 astral characters count as 1000.",
        ("SEND-009",),
        "MUST",
    ),
    Fault(
        "not-found-typo",
        'The not-found error reads "Message not found" (no period).',
        ("EDIT-007", "EDIT-009", "DEL-005", "DEL-006", "ISO-003", "ISO-005", "ROBUST-013"),
        "MUST",
    ),
    Fault(
        "length-error-text",
        'The length error reads "Message exceeds 500 chars.".',
        ("SEND-008", "ERR-004", "EDIT-008"),
        "MUST",
    ),
    Fault(
        "edited-stays-false",
        "The update event carries edited: false.",
        ("EDIT-002", "EVT-003"),
        "MUST",
    ),
    Fault(
        "updated-missing",
        "The update event has no updated field.",
        ("EDIT-004", "EVT-003"),
        "MUST",
    ),
    Fault(
        "id-not-uuid",
        'Message ids are integers written as strings ("17").',
        ("EVT-002",),
        "MUST",
    ),
    Fault(
        "admit-outsider",
        "Users who are not participants of the room are accepted.",
        ("ROOM-004", "AUTH-008"),
        "MUST",
    ),
    Fault(
        "accept-expired",
        "The token's exp claim is not checked.",
        ("AUTH-003", "AUTH-008"),
        "MUST",
    ),
    Fault(
        "accept-alg-none",
        "Unsigned tokens (alg: none) are accepted.",
        ("AUTH-005", "AUTH-008"),
        "MUST",
    ),
    Fault(
        "skip-signature",
        "The token's signature is not verified (the algorithm still must match).",
        ("AUTH-004", "AUTH-007", "AUTH-008"),
        "MUST",
    ),
    Fault(
        "unknown-user-accepted",
        "A valid token naming an unknown user is accepted as a guest who may read the room.",
        ("AUTH-006", "AUTH-008"),
        "MUST",
    ),
    Fault(
        "leak-to-other-room",
        "Events also go to the connections of the host's other rooms.",
        ("ISO-001", "ISO-006"),
        "MUST",
    ),
    Fault(
        "cross-room-edit",
        "An edit by id reaches a message of another room and is broadcast there.",
        ("ISO-002", "ISO-003"),
        "MUST",
    ),
    Fault(
        "cross-room-delete",
        "A delete by id removes a message of another room and is broadcast there.",
        ("ISO-004", "ISO-005"),
        "MUST",
    ),
    Fault(
        "delete-not-broadcast",
        "The delete event goes to the sender's connection only.",
        ("DEL-002",),
        "MUST",
    ),
    Fault(
        "one-connection-per-user",
        "A second connection of an account to a room receives no events.",
        ("BCAST-001",),
        "MUST",
    ),
    Fault(
        "fanout-stops-on-dead",
        "Fan-out awaits each send in join order; a client that vanished without a close"
        " handshake stays registered until a send to it fails, which stops that fan-out, and a"
        " client that stops reading blocks it.",
        ("RECON-001", "RECON-002"),
        "MUST",
    ),
    Fault(
        "close-on-malformed",
        "A frame that is not JSON, or not a JSON object, closes the connection with 1003.",
        ("ROBUST-002", "ROBUST-004", "ROBUST-018"),
        "SHOULD",
    ),
    Fault(
        "accept-then-silence",
        "Refused clients are accepted and left open, receiving nothing.",
        (
            "AUTH-009",
            "AUTH-001",
            "AUTH-002",
            "AUTH-003",
            "AUTH-004",
            "AUTH-005",
            "AUTH-006",
            "AUTH-007",
            "ROOM-001",
            "ROOM-002",
            "ROOM-003",
            "ROOM-004",
        ),
        "MUST",
    ),
    Fault(
        "require-timestamp",
        "A frame without timestamp is answered with an error.",
        ("CONN-003",),
        "MUST",
    ),
    Fault(
        "escape-body",
        "The body is HTML-escaped before it is stored and broadcast (& < > become entities).",
        ("SEND-010",),
        "MUST",
    ),
    Fault(
        "unknown-type-broadcast",
        "A frame of unknown type is treated as a text frame and broadcast.",
        ("ROBUST-007", "ROBUST-017"),
        "MUST",
    ),
    Fault(
        "nonstring-body",
        "A non-string message is broadcast with that JSON value as body.",
        ("ROBUST-010", "ROBUST-017", "EVT-002"),
        "MUST",
    ),
    Fault(
        "binary-close",
        "A binary frame closes the connection (1003).",
        ("ROBUST-006", "ROBUST-018"),
        "SHOULD",
    ),
    Fault(
        "error-not-json",
        'Error frames are plain text "Error: ..." instead of JSON.',
        ("EVT-001",),
        "MUST",
    ),
    Fault(
        "created-no-tz",
        "The new event's created has no time zone.",
        ("SEND-012", "EVT-002"),
        "MUST",
    ),
    Fault(
        "userid-per-message",
        "The new event's user_id is a fresh uuid for every message.",
        ("SEND-004",),
        "MUST",
    ),
    Fault(
        "fanout-cap",
        "Only the first 5 connections of a room get its events.",
        ("BCAST-003",),
        "MUST",
    ),
    Fault(
        "reconnect-refused",
        "A token whose connection dropped without a close handshake is refused afterwards.",
        ("RECON-003",),
        "MUST",
    ),
    Fault(
        "owner-by-connection",
        "Authorship is checked by the connection that created a message, not by its user: an"
        " author who reconnected (or whose server restarted) can no longer edit or delete.",
        ("RECON-004", "RECON-006"),
        "MUST",
    ),
    Fault(
        "churn-leak",
        "The server stops accepting an account after 50 connections in its lifetime.",
        ("RECON-005",),
        "MUST",
    ),
    Fault(
        "no-persist",
        "Messages are kept in memory only and lost on restart.",
        ("RECON-006",),
        "MUST",
    ),
)


def fault_table() -> str:
    """The registry as a plain-text table: name, level, requirements, description."""
    rows = [("name", "level", "requirements", "description")]
    rows += [(f.name, f.level, ",".join(f.requirements), f.description) for f in FAULTS.values()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    )
