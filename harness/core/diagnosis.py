"""What the endpoint looks like, from the traffic of a run: one line for a run that failed because
the harness was pointed at something that is not a chat endpoint at all.

Every test counts its traffic (:class:`Traffic`, kept by the client and carried by the test's
record); the run sums them, and :func:`diagnose` says what the sum looks like when it has a
recognisable shape: an echo server, a server that accepts and never answers, one that refuses
every connection, one that sends no chat frame at all. The line is shown beside a verdict that is
not CONFORMANT (a conformant server never has any of these shapes); it never changes a verdict.

No I/O here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Traffic:
    """The counts of one test (or, summed, of a run)."""

    #: Connections whose handshake the server accepted.
    accepted: int = 0
    #: Refused handshakes, by how they were refused ("HTTP 404", "close 4003").
    refused: Counter[str] = field(default_factory=Counter)
    #: Frames the harness sent.
    sent: int = 0
    #: Frames the server sent.
    received: int = 0
    #: Received frames identical to a frame the harness sent on the same connection.
    echoed: int = 0
    #: Received frames that are valid chat frames (an event or an error, per the schemas).
    chat_frames: int = 0
    #: The first received frame that is not a chat frame, as shown in the transcript.
    first_other: str = ""

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "accepted": self.accepted,
            "refused": dict(self.refused),
            "sent": self.sent,
            "received": self.received,
            "echoed": self.echoed,
            "chat_frames": self.chat_frames,
        }
        if self.first_other:
            data["first_other"] = self.first_other
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Traffic:
        def count(key: str) -> int:
            value = data.get(key, 0)
            return value if isinstance(value, int) else 0

        refused = data.get("refused") or {}
        return cls(
            accepted=count("accepted"),
            refused=Counter(
                {str(k): v for k, v in refused.items() if isinstance(v, int)}
                if isinstance(refused, Mapping)
                else {}
            ),
            sent=count("sent"),
            received=count("received"),
            echoed=count("echoed"),
            chat_frames=count("chat_frames"),
            first_other=str(data.get("first_other", "")),
        )

    def add(self, other: Traffic) -> None:
        self.accepted += other.accepted
        self.refused.update(other.refused)
        self.sent += other.sent
        self.received += other.received
        self.echoed += other.echoed
        self.chat_frames += other.chat_frames
        self.first_other = self.first_other or other.first_other


def total(parts: Iterable[Traffic]) -> Traffic:
    out = Traffic()
    for part in parts:
        out.add(part)
    return out


def diagnose(traffic: Traffic) -> str | None:
    """One line saying what the endpoint looks like, when it is plainly not a chat endpoint."""
    t = traffic
    if t.accepted == 0 and t.refused:
        how = ", ".join(f"{what} x{n}" for what, n in t.refused.most_common(3))
        gateway = (
            ", or a gateway that wants its own header (an API key, Basic auth: [headers])"
            if {"HTTP 401", "HTTP 407"} & set(t.refused)
            else ""
        )
        return (
            f"refuses every connection ({how}): a wrong url, or tokens it does not accept "
            f"(auth.transport, auth.secret, auth.claims){gateway}?"
        )
    if t.received and t.echoed == t.received:
        return (
            f"answers every frame with the frame itself ({t.echoed:,} of {t.received:,}): "
            "an echo server, not a chat endpoint?"
        )
    if t.accepted and t.sent and not t.received:
        return (
            f"accepts connections but never sends a frame ({t.sent:,} frames sent, none "
            "answered): not a chat endpoint, or a server that never answers?"
        )
    if t.received and not t.chat_frames:
        first = f"; the first: {t.first_other}" if t.first_other else ""
        return (
            f"sends no chat frame ({t.received:,} frames, none an event or an error of the "
            f"protocol{first}): not a chat endpoint?"
        )
    return None
