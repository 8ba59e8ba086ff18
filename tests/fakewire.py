"""An in-memory chat server wired to the harness's client, without sockets (h11's habit).

``FakeServer(...).chat()`` gives a :class:`harness.server.chat.Chat` whose connections talk to the
fake through :class:`FakeSocket` queues, so the wire-level verifiers (``settle``, ``sentinel``,
``expect_refused``) are tested frame by frame, in milliseconds. The fake does only what the
tests need: ``text`` frames become ``new`` events for the whole room, anything else gets an
error; switches make it misbehave in the ways the verifiers exist to catch.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from harness.server.chat import Chat, Refusal
from harness.target import Target, parse
from harness.tokens import Minter
from harness.wire.closed import Closed, TooBig
from harness.wire.plan import Plan
from reference_server.demo import demo_target_dict

_CLOSED = object()
#: The token the fake refuses (``refuse`` says how); every other token is accepted.
BAD_TOKEN = "bad-token"


class FakeTransport:
    """What a :class:`harness.server.conn.Conn` asks of a transport: ``abort()`` drops the fake
    connection (the client then reads a close without a frame)."""

    def __init__(self, sock: FakeSocket) -> None:
        self.sock = sock
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True
        self.sock.shut(1006)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        pass


class FakeSocket:
    """One client connection of the fake: frames to the client wait in a queue."""

    def __init__(self, server: FakeServer, room: str) -> None:
        self.server = server
        self.room = room
        self.inbox: asyncio.Queue[object] = asyncio.Queue()
        self.close_code: int | None = None
        self.transport = FakeTransport(self)
        self.too_big: TooBig | None = None

    def deliver(self, frame: dict[str, Any] | str) -> None:
        if self.close_code is None:
            self.inbox.put_nowait(frame if isinstance(frame, str) else json.dumps(frame))

    def shut(self, code: int, reason: str = "") -> None:
        if self.close_code is None:
            self.close_code = code
            self.inbox.put_nowait(_CLOSED)
            self.server.members[self.room].remove(self)
            self.reason = reason

    async def send(self, message: str | bytes) -> None:
        if self.too_big is not None:
            raise Closed(None, too_big=self.too_big)
        if self.close_code is not None:
            raise Closed(self.close_code)
        self.server.handle(self, message)

    async def recv(self) -> str | bytes:
        item = await self.inbox.get()
        if item is _CLOSED:
            self.inbox.put_nowait(_CLOSED)
            raise Closed(self.close_code or 1000)
        if isinstance(item, TooBig):
            # What the wire raises after refusing a frame over max_size from its header: the
            # client sent 1009 and received no close frame (every later send too).
            self.too_big = item
            self.shut(1006)
            raise Closed(None, too_big=item)
        assert isinstance(item, str)
        return item

    async def close(self) -> None:
        self.shut(1000)


@dataclass
class FakeServer:
    """A room server in memory. Switches:

    - ``echo``: the sender gets its own events;
    - ``broadcast_errors``: errors go to the whole room;
    - ``close_on_bad``: a bad frame closes its sender with 1003;
    - ``refuse``: how a handshake with :data:`BAD_TOKEN` is refused (None accepts it, "http"
      answers 403, "close" accepts then closes with 4403);
    - ``greet_refused``: a client refused by a close first gets a room event;
    - ``noise``: each text frame is preceded, on every connection of the room, by this many
      events of a stranger's (frames no check asks for);
    - ``huge``: each connection is sent, after the handshake, an event whose body is this many
      bytes; over the client's ``max_size``, what the wire raises instead (a
      :class:`~harness.wire.closed.Closed` with ``too_big``: the frame refused from its
      header).
    """

    echo: bool = True
    broadcast_errors: bool = False
    close_on_bad: bool = False
    refuse: str | None = None
    greet_refused: bool = False
    noise: int = 0
    huge: int = 0
    members: dict[str, list[FakeSocket]] = field(default_factory=dict)
    #: The largest frame the client accepts (its target's ``max_received_frame_bytes``).
    client_max_size: int = 1024 * 1024

    def target(self, receive_timeout: float = 0.3, **changes: Any) -> Target:
        data = demo_target_dict("ws://fake.invalid/ws/chat/{host}/{room}")
        data["receive_timeout"] = receive_timeout
        data.update(changes)
        return parse(data, where="<fake>")

    def chat(self, **target_changes: Any) -> Chat:
        target = self.target(**target_changes)
        self.client_max_size = target.max_received_frame_bytes
        return Chat(target, Minter(target.auth), opener=self.open)

    async def open(self, plan: Plan) -> tuple[FakeSocket, int] | Refusal:
        url = plan.url
        refused = self.refuse if BAD_TOKEN in url else None
        if refused == "http":
            return Refusal("http", status=403)
        room = url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        sock = FakeSocket(self, room)
        self.members.setdefault(room, []).append(sock)
        if refused == "close":
            if self.greet_refused:
                sock.deliver(self.event(f"hello-{uuid.uuid4().hex[:8]}"))
            sock.shut(4403)
        elif self.huge:
            if self.huge > self.client_max_size:
                sock.inbox.put_nowait(TooBig(self.huge, self.client_max_size))
            else:
                sock.deliver(self.event("x" * self.huge))
        return sock, 101

    @staticmethod
    def event(body: str) -> dict[str, Any]:
        return {
            "type": "chat_message",
            "action": "new",
            "id": str(uuid.uuid4()),
            "user": "bob",
            "user_id": str(uuid.uuid4()),
            "body": body,
            "created": "2026-11-29T10:00:00Z",
            "edited": False,
            "updated": "2026-11-29T10:00:00Z",
            "userAvatar": None,
        }

    def handle(self, sock: FakeSocket, data: str | bytes) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            frame = None
        if isinstance(frame, dict) and frame.get("type") == "text":
            event = self.event(str(frame.get("message")))
            for other in list(self.members.get(sock.room, [])):
                for i in range(self.noise):
                    other.deliver(self.event(f"noise-{i}"))
                if other is not sock or self.echo:
                    other.deliver(event)
            return
        error = {"error": "Message not found."}
        receivers = self.members[sock.room] if self.broadcast_errors else [sock]
        for other in list(receivers):
            other.deliver(error)
        if self.close_on_bad:
            sock.shut(1003)


T = TypeVar("T")


def run_scenario(scenario: Callable[[Chat], Awaitable[T]], chat: Chat) -> T:
    """Run ``scenario(chat)`` in a fresh event loop; the session's connections are closed after."""

    async def go() -> T:
        try:
            return await scenario(chat)
        finally:
            await chat.close_all()

    return asyncio.run(go())
