"""The ``chat`` fixture: everything a test needs to talk to the target.

:class:`Chat` opens connections (:class:`~harness.server.conn.Conn`) through the openers of
:mod:`harness.wire`, each from one handshake plan, and holds the test's
:class:`~harness.core.session.Session`: the transcript, observations, traffic, the test's own
nonces and ids, the run's gate. The posting and observing vocabulary (``post``, ``settle``,
``sentinel``, ``expect_refused``) sequences the connections' waits; what each wait decides is the
session's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from harness import redact, spec
from harness.core.failures import ConformanceFailure, ConformanceTimeout, HarnessError
from harness.core.frames import Frame, Predicate, event_matching
from harness.core.gate import Gate
from harness.core.isolation import Place
from harness.core.session import Refusal, Session, refusal_line
from harness.server.conn import Conn, Opener, Socket
from harness.target import Account, Target
from harness.tokens import Minter
from harness.wire import raw, tls
from harness.wire.plan import Plan, plan_for
from harness.wire.websocket import open_websocket

__all__ = ["Chat", "Conn", "HalfOpen", "Refusal", "Socket"]

HalfOpen = raw.HalfOpen


def _alone() -> bool:
    return False


class Chat:
    """Everything a test needs to talk to the target: the ``chat`` fixture."""

    def __init__(
        self, target: Target, minter: Minter | None = None, opener: Opener | None = None
    ) -> None:
        self.target = target
        #: How a connection is opened: websockets by default, the application in-process for
        #: an ``[asgi]`` target; tests of the harness plug an in-memory server here
        #: (``tests/fakewire.py``).
        self.opener: Opener = opener or (
            self.open_asgi if target.asgi_app is not None else open_websocket
        )
        self.minter = minter or Minter(target.auth)
        #: The test's state, without I/O.
        self.session = Session(target, redact.redact, spec.judge_server_frame)
        session = self.session
        self.transcript = session.transcript
        self.observations = session.observations
        #: What the test measured, per requirement, for the report's tables and plots.
        self.figures = session.figures
        self.traffic = session.traffic
        self.attribution = session.attribution
        self.ledger = session.ledger
        self.extra_fields = session.extra_fields
        self.conns: list[Conn] = []
        self.half_opens: list[HalfOpen] = []
        self._peers: dict[int, Conn] = {}
        #: Connections opened so far: the next one goes to endpoint ``opened % len(endpoints)``
        #: (round-robin across ``nodes``).
        self.opened = 0
        #: Whether other tests ran beside this one since it started (the run's scheduler sets
        #: it for a test in pytest's thread): a frame that never came is then no verdict, the
        #: test runs again alone, and a test that repeats itself (shrinking) can stop at once.
        self.crowded: Callable[[], bool] = _alone

    # the session's state, as the suites and the plugin name it ----------------------------

    @property
    def own(self) -> tuple[str, ...]:
        return self.session.own

    @own.setter
    def own(self, value: tuple[str, ...]) -> None:
        self.session.own = value

    @property
    def gate(self) -> Gate | None:
        return self.session.gate

    @gate.setter
    def gate(self, value: Gate | None) -> None:
        self.session.gate = value

    @property
    def last_frame_at(self) -> float | None:
        return self.session.last_frame_at

    @last_frame_at.setter
    def last_frame_at(self, value: float | None) -> None:
        self.session.last_frame_at = value

    def sentinel_grace(self) -> float | None:
        return self.session.sentinel_grace()

    def send_interval(self) -> float | None:
        return self.session.send_interval()

    def rate_limit_text(self) -> str:
        return self.session.rate_limit_text()

    def rate_limited(self, frame: Frame) -> None:
        self.session.rate_limited(frame)

    def gate_check(self, requirement: str) -> None:
        self.session.gate_check(requirement)

    def needs(self, need: str) -> None:
        self.session.needs(need)

    def account(self, role: str) -> Account:
        account: Account = self.session.account(role)
        return account

    def slug(self, room: str) -> str:
        return self.session.slug(room)

    def place_of(self, room: str) -> Place:
        return self.session.place_of(room)

    def token(self, role: str) -> str:
        return self.minter.valid(self.account(role))

    def nonce(self, label: str = "m") -> str:
        return self.session.nonce(label)

    def unique_int(self) -> int:
        return self.session.unique_int()

    def owns(self, frame: Frame) -> bool:
        return self.session.owns(frame)

    def observe(self, requirement: str, text: str) -> None:
        self.session.observe(requirement, text)

    # connecting ----------------------------------------------------------------------------

    def plan(
        self, token: str | None, room: str, host: str | None, node: int, **options: Any
    ) -> Plan:
        """The handshake of a connection with ``token`` to ``host/room`` on endpoint ``node``."""
        return plan_for(self.target, self.target.url_for(room, host, node), token, **options)

    async def attempt(
        self,
        token: str | None,
        *,
        room: str,
        host: str | None = None,
        label: str = "client",
        account: Account | None = None,
        receive_buffer: int | None = None,
        node: int | None = None,
    ) -> Conn | Refusal:
        """Open a connection; a refusal at the handshake comes back as :class:`Refusal`.
        ``node``: the endpoint (an index into ``target.endpoints``); by default the next one,
        round-robin."""
        node = self.next_node() if node is None else node % len(self.target.endpoints)
        plan = self.plan(token, room, host, node, receive_buffer=receive_buffer)
        name = self.session.conn_name(label)
        via = self.target.auth.transport if token is not None else "none"
        where = self.target.node_label(node)
        where = f" to {where}" if where else ""
        self.transcript.log(
            name, "==", f"GET {plan.path}{where} (token via {via}{self._gateway()})"
        )
        try:
            opened = await self.opener(plan)
        except TimeoutError:
            self.transcript.log(name, "==", "handshake timed out")
            raise ConformanceTimeout(
                "CONN-001",
                "a handshake answer",
                f"no answer{where} within {self.target.connect_timeout:.1f} s",
            ) from None
        except OSError as exc:
            raise self.unreachable(exc, node) from None
        if isinstance(opened, Refusal):
            self.session.refused(name, opened, refusal_line(opened, redact.redact))
            return opened
        ws, status = opened
        state = self.session.accepted(name, status, account, room, node, host)
        conn = Conn(self.session, state, ws, self._peers)
        self.conns.append(conn)
        return conn

    async def open_asgi(self, plan: Plan) -> tuple[Socket, int] | Refusal:
        """The :attr:`opener` of an ``[asgi]`` target: a connection to the application
        in-process (:mod:`harness.wire.asgi`), bounded as a websockets connection is."""
        from harness.wire.asgi import open_asgi

        return await open_asgi(self.target, plan)

    def next_node(self) -> int:
        """The endpoint of the next connection: round-robin across ``nodes``."""
        node = self.opened % len(self.target.endpoints)
        self.opened += 1
        return node

    def _gateway(self) -> str:
        """The ``[headers]`` a handshake carries, by name (never by value), for its log line."""
        names = ", ".join(self.target.headers)
        return f"; with {names}" if names else ""

    def unreachable(self, exc: OSError, node: int = 0) -> HarnessError:
        """The run-ending line for a connection that failed below WebSocket: TLS (naming the
        ``[tls]`` key that fixes it), DNS, a refused port."""
        host, port = self.target.node_address(node)
        line = tls.explain(exc, self.target.tls, f"{host}:{port}", self.target.server_name)
        return HarnessError(line or f"target unreachable: {host}:{port}: {exc.strerror or exc}")

    async def half_open(self, role: str, room: str = "main", label: str = "half-open") -> HalfOpen:
        """A client that completes the handshake, then never reads again (raw TCP, a tiny
        receive window): the server's writes to it pile up until they block."""
        self.needs("network")
        account = self.account(role)
        node = self.next_node()
        plan = self.plan(self.token(role), self.slug(room), None, node)
        name = self.session.conn_name(label)
        self.transcript.log(
            name,
            "==",
            f"GET {plan.path} (raw; token via {self.target.auth.transport}{self._gateway()})",
        )
        try:
            writer, head = await raw.open_half_open(plan, self.target.node_address(node))
        except raw.RAW_FAILURES as exc:
            raise ConformanceFailure(
                "CONN-001", f"{role} accepted", f"raw handshake failed: {exc!r}"
            ) from None
        status = raw.status_line(head)
        self.transcript.log(name, "==", f"handshake: {status}; stops reading (half-open)")
        if not raw.accepted(head):
            raise ConformanceFailure("CONN-001", f"{role} ({account.username}) accepted", status)
        ghost = HalfOpen(name, writer)
        self.half_opens.append(ghost)
        return ghost

    async def connect(
        self,
        role: str = "member",
        room: str = "main",
        *,
        requirement: str = "CONN-001",
        label: str | None = None,
        node: int | None = None,
        receive_buffer: int | None = None,
    ) -> Conn:
        """A connection of ``role`` to room ``room`` (a key of [rooms]) that must be accepted,
        on ``node`` (default: the next endpoint, round-robin); ``receive_buffer``: its socket's
        receive buffer in bytes (a reader that lags)."""
        self.gate_check("CONN-001")
        account = self.account(role)
        host, slug = self.place_of(room)
        node = self.next_node() if node is None else node
        outcome = await self.attempt(
            self.token(role),
            room=slug,
            host=host,
            label=label or role,
            account=account,
            node=node,
            receive_buffer=receive_buffer,
        )
        if isinstance(outcome, Refusal):
            where = self.target.node_label(node)
            raise ConformanceFailure(
                requirement,
                f"{role} ({account.username}) accepted to {host}/{slug}"
                + (f" on {where}" if where else ""),
                f"refused: {outcome.describe()}",
            )
        return outcome

    async def connect_many(
        self, specs: Iterable[tuple[str, str]], requirement: str = "CONN-001"
    ) -> list[Conn]:
        return [await self.connect(role, room, requirement=requirement) for role, room in specs]

    # posting and observing -----------------------------------------------------------------

    async def post(
        self,
        conn: Conn,
        body: str | None = None,
        *,
        observers: Iterable[Conn] = (),
        echo: bool = True,
        echo_requirement: str = "SEND-002",
        fanout_requirement: str = "SEND-003",
    ) -> dict[str, Any]:
        """Send a text frame and wait for its ``new`` event on ``observers``, then (with
        ``echo``, or when there is no observer) on the sender itself."""
        body = body if body is not None else self.nonce("msg")
        observers = list(observers)
        # Blocked before sending, not after: a server wedged by what the gate proved may also
        # never answer this connection's closing handshake once it took the frame.
        if observers:
            self.gate_check(fanout_requirement)
            self.gate_check("SEND-003")
        if echo or not observers:
            self.gate_check(echo_requirement)
            self.gate_check("SEND-002")
        await conn.send_text(body)
        event: dict[str, Any] | None = None
        for other in observers:
            seen = await other.expect_event("new", body=body, requirement=fanout_requirement)
            event = event or seen
        if echo or event is None:
            event = await conn.expect_event("new", body=body, requirement=echo_requirement)
        conn.state.posted.append(str(event.get("id")))
        return event

    async def settle(
        self,
        culprit: Conn,
        watchers: Iterable[Conn],
        requirement: str,
        forbidden: Predicate,
        what: str,
    ) -> bool:
        """After a frame on ``culprit``, prove that nothing ``forbidden`` reached ``watchers``.

        The sentinel goes through the culprit itself, so the server handles it after the frame
        under test (frames of one connection are handled in order): anything that frame caused
        reaches every watcher before the sentinel. If the server closed the culprit (allowed for
        bad frames) a watcher sends the sentinel instead. Returns whether the culprit still
        serves frames.
        """
        watchers = list(watchers)
        body = self.nonce("sentinel")
        served = False
        if culprit.closed is None:
            self.gate_check("SEND-002")  # the culprit's own sentinel is its echo
            await culprit.send_text(body)
            closed = await culprit.wait_closed(
                self.target.receive_timeout,
                until=event_matching("new", body=body),
                forbidden=forbidden,
                forbidden_requirement=requirement,
            )
            served = closed is None and any(
                event_matching("new", body=body)(f) for f in culprit.buffer
            )
        if not served:
            await self.sentinel(watchers[0], watchers, requirement, forbidden, what)
            return False
        for obs in watchers:
            await obs.expect_nothing_before(body, forbidden, requirement=requirement, what=what)
        return True

    async def sentinel(
        self,
        sender: Conn,
        observers: Iterable[Conn],
        requirement: str,
        forbidden: Predicate,
        what: str,
    ) -> None:
        """Send a sentinel through ``sender``; each observer must see it with nothing
        ``forbidden`` before it. All observers must be in the sender's room."""
        body = self.nonce("sentinel")
        await sender.send_text(body)
        for obs in observers:
            # The sender's own copy of the sentinel is its echo (SEND-002).
            await obs.expect_nothing_before(
                body,
                forbidden,
                requirement=requirement,
                what=what,
                arrival_requirement="SEND-002" if obs is sender else None,
            )

    async def expect_refused(
        self,
        token: str | None,
        *,
        requirement: str,
        room: str,
        host: str | None = None,
        sentinel_room: str | None = None,
        label: str = "refused",
    ) -> Refusal:
        """The connection must be refused: an HTTP error at the handshake, or a close at once
        after it before any room event (protocol notes: "How a refusal looks")."""
        outcome = await self.attempt(token, room=room, host=host, label=label)
        if isinstance(outcome, Refusal):
            self.session.check_style(outcome, requirement)
            return outcome
        # Accepted: prove with a sentinel that it gets no room event, then wait for the close.
        if sentinel_room is not None and sentinel_room in self.target.rooms:
            poster = await self.connect("member", sentinel_room, label="sentinel")
            body = self.nonce("sentinel")
            await poster.send_text(body)
            await poster.expect_event("new", body=body, requirement="SEND-002")
        closed = await outcome.wait_closed(self.target.receive_timeout)
        return self.session.refused_after_accept(outcome.state, closed, requirement)

    async def count_pending(self) -> None:
        """After a failed test: count what its connections received and no check read."""
        await asyncio.gather(*(c.count_pending() for c in self.conns), return_exceptions=True)

    async def close_all(self) -> None:
        """Close every connection, and let go of what they kept: the buffered frames, the
        connections themselves, the transcript beyond what a report shows. The session outlives
        its test (pytest keeps it until the run ends), so a test against a flooding server must
        not leave megabytes behind. The session can still open new connections after this."""
        for ghost in self.half_opens:
            ghost.close()
        await asyncio.gather(*(c.close() for c in self.conns), return_exceptions=True)
        self.conns.clear()
        self.half_opens.clear()
        self._peers.clear()
        self.session.forget()
