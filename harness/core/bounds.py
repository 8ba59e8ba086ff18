"""The harness's own bounds on what a server can make it hold (target file ``[limits]``).

A server under test may be broken or hostile; whatever it sends, the harness keeps bounded
memory and time:

- ``max_received_frame_bytes``: the largest frame (message) the harness accepts. The WebSocket
  layer checks a frame's header before it reads the payload, so a larger frame is never buffered
  whole: the connection is failed with close code 1009 (RFC 6455 7.4.1: "1009 indicates that an
  endpoint is terminating the connection because it has received a message that is too big for
  it to process") and :func:`frame_too_big` says what came;
- ``max_buffered_frames`` and ``max_buffered_bytes``: the frames a connection keeps for later
  checks (strangers' traffic, frames no wait asked for yet), held by :class:`FrameBuffer`.

Passing a bound raises :class:`~harness.core.failures.ResourceLimit` in the test that received
the frame. I/O-free: the wire layer (:mod:`harness.server.conn`) measures, this module judges.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

from harness.core.failures import ResourceLimit
from harness.core.frames import Frame


def frame_size(data: str | bytes) -> int:
    """The size of a frame's payload on the wire, in bytes (UTF-8 for text); cheap for ASCII
    text (``str.isascii`` reads a flag, it does not scan)."""
    if isinstance(data, bytes):
        return len(data)
    if data.isascii():
        return len(data)
    return len(data.encode("utf-8", "surrogatepass"))


def size_text(n: int) -> str:
    """A byte count for people: ``512 bytes``, ``12.4 kB``, ``2.3 MB`` (powers of ten)."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} MB"
    if n >= 1_000:
        return f"{n / 1_000:.1f} kB"
    return f"{n:,} bytes"


def frame_too_big(conn: str, size: int | None, limit: int, partial: int = 0) -> ResourceLimit:
    """The failure for a frame over ``max_received_frame_bytes`` (``limit``) on ``conn``.

    ``size`` is the length the frame's header announced (None when only decompressing it showed
    it too large); ``partial`` the bytes of a fragmented message already received before it.
    """
    if size is None:
        what = f"a frame of more than {limit:,} bytes once decompressed"
    elif partial:
        what = f"a fragmented message of {partial + size:,} bytes"
    else:
        what = f"a frame of {size:,} bytes"
    return ResourceLimit(
        f"server frames of at most {limit:,} bytes (limits.max_received_frame_bytes)",
        f"the server sent {what} on {conn}; the harness accepts up to {limit:,} and closed "
        "the connection with 1009",
    )


class FrameBuffer(Sequence[Frame]):
    """The frames one connection keeps for later checks, bounded in number and in bytes.

    Reads like a list (iterate, index, ``len``, ``del buffer[i]``, ``clear()``); frames come in
    through :meth:`add` only, which measures them and refuses the one that passes a bound.
    The counting is two integers and a clock reading per frame.
    """

    def __init__(self, conn: str, max_frames: int, max_bytes: int) -> None:
        self.conn = conn
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._frames: list[Frame] = []
        self._sizes: list[int] = []
        #: The bytes of the frames kept now.
        self.bytes = 0
        #: When the oldest frame kept now arrived (clock of the caller); None when empty.
        self.since: float | None = None

    def add(self, frame: Frame, size: int, now: float) -> ResourceLimit | None:
        """Keep ``frame`` (``size`` bytes on the wire, arrived at ``now``); or, if keeping it
        would pass a bound, keep nothing and return the failure, with what was measured."""
        count, total = len(self._frames) + 1, self.bytes + size
        since = now if self.since is None else self.since
        if count > self.max_frames:
            return self._limit(
                f"at most {self.max_frames:,} frames on one connection that no check asked for "
                "(limits.max_buffered_frames)",
                f"{count:,} frames ({size_text(total)})",
                now - since,
                f"at most {self.max_frames:,} (limits.max_buffered_frames)",
            )
        if total > self.max_bytes:
            return self._limit(
                f"at most {self.max_bytes:,} bytes of frames on one connection that no check "
                "asked for (limits.max_buffered_bytes)",
                f"{count:,} frames ({total:,} bytes)",
                now - since,
                f"at most {self.max_bytes:,} bytes (limits.max_buffered_bytes)",
            )
        self._frames.append(frame)
        self._sizes.append(size)
        self.bytes = total
        self.since = since
        return None

    def _limit(self, expected: str, what: str, elapsed: float, keeps: str) -> ResourceLimit:
        return ResourceLimit(
            expected,
            f"the server sent {what} on {self.conn} in {elapsed:.1f} s that no check asked for; "
            f"the harness keeps {keeps}",
        )

    def clear(self) -> None:
        self._frames.clear()
        self._sizes.clear()
        self.bytes = 0
        self.since = None

    def __delitem__(self, index: int) -> None:
        del self._frames[index]
        self.bytes -= self._sizes.pop(index)
        if not self._frames:
            self.since = None

    @overload
    def __getitem__(self, index: int) -> Frame: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Frame]: ...

    def __getitem__(self, index: int | slice) -> Frame | Sequence[Frame]:
        return self._frames[index]

    def __len__(self) -> int:
        return len(self._frames)

    def __iter__(self) -> Iterator[Frame]:
        return iter(self._frames)

    def __repr__(self) -> str:
        return f"FrameBuffer({self._frames!r})"
