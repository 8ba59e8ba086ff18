"""Checking one frame a client sent against ``schemas/client`` (CLIENT-008). No I/O.

Seed, "Message Types (Client to Server)": "The client sends JSON messages to the WebSocket with a
`type` field specifying the operation" (``text``, ``delete``, ``update``). So a frame is a JSON
object in a text frame; its ``type`` picks the schema (``harness.schemas.client_frame_kind``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from harness import schemas

__all__ = ["FrameCheck", "inspect_frame"]


@dataclass(frozen=True)
class FrameCheck:
    """The verdict on one frame: the schema it was checked against and what is wrong."""

    schema: str | None
    violations: tuple[str, ...]
    parsed: object | None


def inspect_frame(data: str | bytes) -> FrameCheck:
    """Parse and validate one frame the client sent."""
    if isinstance(data, bytes):
        return FrameCheck(
            None,
            (f"binary frame ({len(data)} bytes): the seed's client frames are JSON text",),
            None,
        )
    try:
        parsed = json.loads(data)
    except json.JSONDecodeError as exc:
        return FrameCheck(None, (f"not JSON ({exc.msg} at {exc.pos})",), None)
    except RecursionError:
        return FrameCheck(None, ("JSON nested too deeply to parse",), None)
    if not isinstance(parsed, dict):
        return FrameCheck(None, (f"not a JSON object but {type(parsed).__name__}",), parsed)
    name = schemas.client_frame_kind(parsed)
    if name is None:
        kind = parsed.get("type")
        what = "no `type`" if kind is None else f"unknown `type` {kind!r}"
        return FrameCheck(None, (f"{what}: not a text, update or delete frame",), parsed)
    return FrameCheck(name, tuple(str(v) for v in schemas.validate(name, parsed)), parsed)
