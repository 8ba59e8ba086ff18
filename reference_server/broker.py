"""The broker of a cluster: Redis pub/sub carries every event to every node.

Protocol notes, "Several nodes": a deployment behind a load balancer "must behave as one server:
an event reaches connections on every node, errors stay with their sender, rooms stay
isolated". Django Channels does it with a channel layer on Redis; so does the reference server
when ``ServerConfig.broker`` names one. Each node PUBLISHes each event to its room's channel
(``edusphere:room:ROOM_ID``) and pattern-subscribes to them all; every node, the publishing one
included, delivers what its subscription receives to its own connections of the room, in the
order received. Redis relays all publications to a subscriber in one order, so every connection
of a room sees the room's events in one order, whichever node it is on. Errors never go through
the broker: they answer the sender's connection directly (seed, "Error Handling").

Without a broker the server delivers to its own connections directly (``ChatServer._fan_out``),
with neither a publication nor a task hop. ``redis`` is imported only when a broker starts.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, cast, get_args
from urllib.parse import urlsplit

from reference_server.behaviour import Action
from reference_server.logs import log

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

logger = logging.getLogger("reference_server.broker")

CHANNEL_PREFIX: Final = "edusphere:room:"
"""A room's channel is this prefix and the room id; a node subscribes to the pattern PREFIX*."""
CONNECT_TIMEOUT: Final = 5.0
"""Seconds to reach the broker and subscribe at start-up."""

Kind = Action | Literal["error"]
"""What a publication carries: an event of that action, or an error frame."""
_KINDS: Final = frozenset((*get_args(Action), "error"))


class BrokerError(RuntimeError):
    """The broker cannot be reached, or was lost; the message is one line, without password."""


@dataclass(frozen=True, slots=True)
class Publication:
    """One event on its way through the broker: the room, the encoded frame, what it is, the
    node that published it and the id of the connection whose frame caused it (so that the
    publishing node can still tell its sender's connection apart)."""

    room_id: str
    text: str
    action: Kind
    origin: str
    sender: str

    def encode(self) -> str:
        """The publication as the JSON text published on the room's channel."""
        return json.dumps(
            {
                "room": self.room_id,
                "text": self.text,
                "action": self.action,
                "origin": self.origin,
                "sender": self.sender,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, data: bytes | str) -> Publication:
        """The publication of a channel message; ValueError if it is not one of ours."""
        fields = json.loads(data)
        if not isinstance(fields, dict):
            raise ValueError("not a JSON object")
        values = [fields.get(key) for key in ("room", "text", "action", "origin", "sender")]
        if not all(isinstance(value, str) for value in values) or values[2] not in _KINDS:
            raise ValueError("not a publication")
        room_id, text, action, origin, sender = cast(list[str], values)
        return cls(room_id, text, cast(Kind, action), origin, sender)


def broker_address(url: str) -> str:
    """HOST:PORT of a broker URL, for messages and logs (never its password)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}"


def _unreachable(url: str, exc: BaseException) -> BrokerError:
    reason = str(exc).splitlines()[0] if str(exc) else "no answer"
    return BrokerError(f"cannot reach the broker at {broker_address(url)}: {reason}")


async def check_broker(url: str) -> None:
    """Raise BrokerError (one line) unless the broker at ``url`` answers a PING."""
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            await client.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        raise _unreachable(url, exc) from None
    finally:
        await client.aclose()


class RedisBroker:
    """One node's link to the broker: a client that publishes, and a subscription whose
    publications ``deliver`` hands to the node's connections, one at a time, in order.

    ``lost`` is called once if the subscription fails after the start (the node can then no
    longer deliver anything, so it should stop).
    """

    def __init__(
        self,
        url: str,
        deliver: Callable[[Publication], Awaitable[None]],
        lost: Callable[[BaseException], None],
    ) -> None:
        self.url = url
        self._deliver = deliver
        self._lost = lost
        self._client: Redis | None = None
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and subscribe to every room's channel; return once Redis has confirmed the
        subscription, so that no publication made after this returns is missed. Raises
        BrokerError (one line) when the broker cannot be reached."""
        from redis.asyncio import Redis
        from redis.exceptions import RedisError

        client = Redis.from_url(self.url, socket_connect_timeout=CONNECT_TIMEOUT)
        pubsub = client.pubsub()
        self._client, self._pubsub = client, pubsub
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await pubsub.psubscribe(CHANNEL_PREFIX + "*")
                while True:
                    message = await pubsub.get_message(timeout=CONNECT_TIMEOUT)
                    if message is not None and message["type"] == "psubscribe":
                        break
        except (RedisError, OSError, TimeoutError) as exc:
            await self._close()
            raise _unreachable(self.url, exc) from None
        self._listener = asyncio.create_task(self._listen(pubsub), name="broker-subscription")
        log(logger, logging.INFO, "subscribed", broker=broker_address(self.url))

    async def publish(self, publication: Publication) -> None:
        """PUBLISH on the room's channel; returns once Redis has taken it."""
        if self._client is None:
            raise BrokerError("the broker is not started")
        await self._client.publish(CHANNEL_PREFIX + publication.room_id, publication.encode())

    async def stop(self) -> None:
        """Stop delivering, unsubscribe and close the broker's connections."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with suppress(asyncio.CancelledError):
                await listener
        await self._close()

    async def _close(self) -> None:
        pubsub, client = self._pubsub, self._client
        self._pubsub = self._client = None
        if pubsub is not None:
            with suppress(Exception):  # a broker that went away: nothing left to close
                # redis-py < 8.2 leaves PubSub.aclose untyped; 8.2 types it: both pass.
                await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
        if client is not None:
            with suppress(Exception):
                await client.aclose()

    async def _listen(self, pubsub: PubSub) -> None:
        """Deliver each publication in the order received; a message that is not a
        publication is logged and skipped."""
        try:
            async for message in pubsub.listen():
                if message["type"] != "pmessage":
                    continue
                try:
                    publication = Publication.decode(message["data"])
                except ValueError:
                    log(logger, logging.WARNING, "not a publication", channel=message["channel"])
                    continue
                await self._deliver(publication)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log(logger, logging.ERROR, "broker lost", broker=broker_address(self.url), error=exc)
            self._lost(exc)
