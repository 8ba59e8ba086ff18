"""How a connection ended, as the rest of the harness sees it (no library's exception)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TooBig:
    """The harness refused a frame of the peer from its header (close 1009 sent): the size it
    announced (None if unknown), the bound it passed, what was read of it."""

    size: int | None
    max_size: int
    read: int = 0


class Closed(Exception):
    """The connection is closed: the close frame received (``code`` None: none came, the
    connection was lost), and why the harness closed it, if it did (``too_big``), or what the
    in-process application raised (``app_error``, one line)."""

    def __init__(
        self,
        code: int | None,
        reason: str = "",
        *,
        too_big: TooBig | None = None,
        app_error: str | None = None,
    ) -> None:
        self.code = code
        self.reason = reason
        self.too_big = too_big
        self.app_error = app_error
        super().__init__(f"closed: {code} {reason!r}" if code is not None else "connection lost")

    def describe(self) -> str:
        """The transcript's line for it."""
        if self.code is not None:
            return f"close {self.code} {self.reason!r}"
        return "connection lost (no close frame)"
