"""Conversations: stateful, model-checked sequences (CONV-001..004, and the exchange requirements
a sequence breaks).

hypothesis' ``RuleBasedStateMachine`` draws sequences of steps: connections of several accounts
open, close, vanish (a TCP reset) and reconnect, in both rooms; they send texts of any Unicode and
of lengths around the limit, edit and delete their own messages, other users', deleted ones,
unknown ids and the other room's. After every step one sentinel per room with an open connection
proves the step complete (the sender's frames are handled in order), and every open connection's
frames are compared with what the model (:mod:`harness.core.conversation`) expects for it: only
frames the run owns are judged, strangers' traffic is observed.

A failing sequence is shrunk by hypothesis, then the shortest failing sequence is run once more,
on its own, and reported as numbered steps (the failure, the report's table, results.json's
``sequence`` figure and a standalone replay script). Budgets: ``[conversations]`` sequences, steps
and time_budget (README, "Timeouts and budgets"): a slow server gets fewer sequences, never a
failure for its pace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from harness import spec
from harness.core import conversation as conv
from harness.core.failures import ConformanceFailure, ResourceLimit
from harness.core.frames import is_error, is_event, show
from harness.server.chat import Chat, Conn

requirement = pytest.mark.requirement

ROLES = ("member", "member2", "host")
ROOMS = ("main", "other")
#: Connections open at once, at most (a sequence stays small enough to read).
MAX_OPEN = 4
#: Characters of the drawn texts: any Unicode a chat carries (SEND-010), without the controls,
#: surrogates and unassigned code points a server may refuse (the property suite's business).
CHARS = st.characters(blacklist_categories=("Cc", "Cs", "Cn", "Zl", "Zp"))
#: The character a text is padded with up to a length around the limit: never blank.
PAD = CHARS.filter(lambda ch: not ch.isspace())


@dataclass
class Op:
    """One step of a program, in the model's names (replayable on its own)."""

    do: str
    conn: str = ""
    role: str = ""
    room: str = ""
    ref: str | None = None  # the message an edit or delete names (None: an unknown id)
    body: str = ""
    other: str = ""  # reconnect: the connection it replaces
    #: The send whose message an edit or delete names (None: an unknown id): a program keeps
    #: its meaning when the shrinker takes steps out of it.
    target: Op | None = field(default=None, repr=False, compare=False)

    def text(self) -> str:
        if self.do in ("connect", "reconnect"):
            was = f" (replacing {self.other})" if self.other else ""
            return f"{self.conn} ({self.role}) {self.do}s to {self.room}{was}"
        if self.do == "send":
            return f"{self.conn} sends {_short(self.body)}"
        if self.do == "edit":
            return f"{self.conn} edits {self.ref or 'an unknown id'} to {_short(self.body)}"
        if self.do == "delete":
            return f"{self.conn} deletes {self.ref or 'an unknown id'}"
        return f"{self.conn} {'vanishes (TCP reset)' if self.do == 'vanish' else 'closes'}"


def _short(text: str, size: int = 30) -> str:
    shown = text if len(text) <= size else f"{text[: size - 1]}… ({len(text)} chars)"
    return repr(shown)


@dataclass
class Failed:
    """A failing program: its ops and the finding."""

    ops: list[Op]
    finding: conv.Finding


@dataclass
class Sequence:
    """One sequence against the server: the model, the record, the connections."""

    model: conv.Model
    record: conv.Record
    conns: dict[str, Conn] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    names: int = 0
    #: id(send op) -> the message it created; ref -> the send op that created it.
    made: dict[int, str] = field(default_factory=dict)
    creators: dict[str, Op] = field(default_factory=dict)
    #: Over the budget: its later steps go to the model only (:meth:`Conversations.dry`).
    dry: bool = False

    def created(self, send: Op, outcome: conv.Outcome) -> None:
        """Remember the message a send created (none when it was refused)."""
        if outcome.ref is not None and not outcome.refused:
            self.made[id(send)] = outcome.ref
            self.creators[outcome.ref] = send

    def target_of(self, op: Op) -> str | None:
        """The message an edit or delete names, in this sequence (None: an unknown id)."""
        return self.made.get(id(op.target)) if op.target is not None else None


class Conversations:
    """The sequences of one test (one event loop), their budget and what they found."""

    def __init__(self, chat: Chat) -> None:
        self.chat = chat
        self.loop = asyncio.new_event_loop()
        target = chat.target
        self.budget = target.conversations_budget_s
        self.steps = target.sequence_steps
        self.sequences = self._paced(target.sequences)
        self.deadline: float | None = None
        self.shrink_deadline: float | None = None
        self.ran = 0
        self.steps_run = 0
        self.skipped = 0
        self.best: Failed | None = None
        #: Whether failures are exploration's (hypothesis, the stories): the shortest is kept.
        self.exploring = True
        self.limit: ResourceLimit | None = None
        #: A frame that never came while other tests ran beside this one: no verdict (the
        #: test runs again alone), so every later step fails at once, without I/O, and
        #: hypothesis' shrinking costs CPU only.
        self.starved: conv.Finding | None = None
        self.current: Sequence | None = None
        self.started = time.monotonic()

    def _paced(self, wanted: int) -> int:
        """Sequences the budget has room for at the pace the preflight measured: a step costs
        about one round trip per open connection (the frame and the sentinels are sent at once,
        the reads overlap)."""
        gate = self.chat.gate
        if gate is None or not gate.round_trip_s:
            return wanted
        per_sequence = self.steps * MAX_OPEN * gate.round_trip_s
        return max(1, min(wanted, int(self.budget / max(per_sequence, 1e-6))))

    # the budget -------------------------------------------------------------------------

    def over_budget(self) -> bool:
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + self.budget
        if self.best is not None:  # shrinking: a budget of its own
            if self.shrink_deadline is None:
                self.shrink_deadline = now + self.budget
            return now > self.shrink_deadline
        return now > self.deadline

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        if self.limit is not None:
            coro.close()
            raise self.limit
        bound = max(30.0, 6 * self.chat.target.receive_timeout)
        try:
            return self.loop.run_until_complete(asyncio.wait_for(coro, bound))
        except ResourceLimit as exc:
            self.limit = exc
            raise

    # one sequence -----------------------------------------------------------------------

    def begin(self) -> Sequence:
        chat = self.chat
        texts = conv.Texts(
            chat.target.max_length,
            spec.too_long(chat.target.max_length),
            spec.ERRORS.not_found,
            spec.ERRORS.edit_own,
            spec.ERRORS.delete_own,
        )
        model = conv.Model(
            texts, chat.target.host_name, spec.ECHO_REQUIREMENT, spec.FANOUT_REQUIREMENT
        )
        self.current = Sequence(model, conv.Record(model))
        self.ran += 1
        return self.current

    def end(self) -> None:
        seq, self.current = self.current, None
        if seq is None:
            return
        self.run(self._close(seq))

    async def _close(self, seq: Sequence) -> None:
        await asyncio.gather(*(c.close() for c in seq.conns.values()), return_exceptions=True)
        for c in seq.conns.values():
            if c in self.chat.conns:
                self.chat.conns.remove(c)

    def new_name(self, seq: Sequence) -> str:
        seq.names += 1
        return f"c{seq.names}"

    def dry(self, seq: Sequence, op: Op) -> None:
        """Take a step in the model only (over the budget): no frame, no judgement."""
        model = seq.model
        model.step += 1
        seq.dry = True
        if op.do in ("connect", "reconnect"):
            if op.do == "reconnect" and model.links[op.other].open:
                model.close(op.other)
            model.connect(op.conn, op.role, self.chat.account(op.role).username, op.room)
        elif op.do in ("close", "vanish"):
            model.close(op.conn)
        elif op.do == "send":
            outcome = model.send(op.conn, op.body)
            seq.created(op, outcome)
        elif (ref := seq.target_of(op)) is not None:
            if op.do == "edit":
                model.edit(op.conn, ref, op.body)
            else:
                model.delete(op.conn, ref)

    def play(self, seq: Sequence, op: Op) -> None:
        """Run one step (sync: hypothesis' rules are); a finding fails the test."""
        if self.starved is not None:
            raise SequenceFailed(self.starved)
        if seq.dry:  # a sequence that went over the budget stays in the model
            self.skipped += 1
            self.dry(seq, op)
            return
        seq.ops.append(op)
        self.steps_run += 1
        try:
            finding = self.run(self._play(seq, op))
        except ConformanceFailure as exc:
            if exc.from_gate:
                raise
            # Found by the frame's own checks (a schema, another room's content): the step's.
            finding = conv.Finding(
                exc.requirement, seq.model.step, exc.expected, exc.actual,
                conv.witness_of(seq.record), exc.also, exc.frame_awaited,
            )  # fmt: skip
        if finding is not None:
            if finding.awaited and self.chat.crowded():
                self.starved = finding
            failed = Failed(list(seq.ops), finding)
            if self.exploring and (self.best is None or len(failed.ops) < len(self.best.ops)):
                self.best = failed
            raise SequenceFailed(finding)

    async def _play(self, seq: Sequence, op: Op) -> conv.Finding | None:
        chat, model = self.chat, seq.model
        model.step += 1
        frame: dict[str, Any] | None = None
        if op.do in ("connect", "reconnect"):
            if op.do == "reconnect" and model.links[op.other].open:
                await seq.conns[op.other].close()
                model.close(op.other)
            account = chat.account(op.role)
            conn = await chat.connect(op.role, op.room, label=op.conn)
            seq.conns[op.conn] = conn
            outcome = model.connect(op.conn, op.role, account.username, op.room)
        elif op.do in ("close", "vanish"):
            if op.do == "vanish":
                seq.conns[op.conn].abort()
            else:
                await seq.conns[op.conn].close()
            outcome = model.close(op.conn)
        elif op.do == "send":
            frame = {"type": "text", "message": op.body}
            outcome = model.send(op.conn, op.body)
            seq.created(op, outcome)
            await seq.conns[op.conn].send_text(op.body)
        elif op.do == "edit":
            op.ref = seq.target_of(op)
            message_id = model.id_of(op.ref) if op.ref else conv.GHOST
            frame = {"type": "update", "messageId": message_id, "message": op.body}
            outcome = model.edit(op.conn, op.ref or "?", op.body)
            await seq.conns[op.conn].send_update(message_id, op.body)
        else:
            op.ref = seq.target_of(op)
            message_id = model.id_of(op.ref) if op.ref else conv.GHOST
            frame = {"type": "delete", "messageId": message_id}
            outcome = model.delete(op.conn, op.ref or "?")
            await seq.conns[op.conn].send_delete(message_id)
        step = conv.Step(model.step, op.do, op.conn, outcome, frame, op.other or None, op.room)
        seq.record.add(step)
        step.seen = await self._settle(seq, op.conn, outcome)
        return conv.check(seq.record, step)

    async def _settle(self, seq: Sequence, actor: str, outcome: conv.Outcome) -> list[conv.Seen]:
        """One sentinel per room with an open connection (through the actor when it is open
        there); every open connection is read up to its room's sentinel."""
        chat, model = self.chat, seq.model
        sentinels: dict[str, str] = {}
        for room in ROOMS:
            links = model.open_in(room)
            if not links:
                continue
            sender = next((link for link in links if link.name == actor), links[0])
            body = chat.nonce("sentinel")
            sentinels[room] = body
            outcome.items.extend(model.send(sender.name, body, sentinel=True).items)
            await seq.conns[sender.name].send_text(body)
        seen: list[conv.Seen] = []
        for link in [link for room in ROOMS for link in model.open_in(room)]:
            conn = seq.conns[link.name]
            body = sentinels[link.room]
            await conn.wait_closed(
                chat.target.receive_timeout,
                until=lambda f, body=body: is_event(f, "new") and f.get("body") == body,
            )
            for frame in list(conn.buffer):
                item = self._seen(seq, link.name, frame)
                if item is not None:
                    seen.append(item)
            conn.buffer.clear()
        return seen

    def _seen(self, seq: Sequence, name: str, frame: Any) -> conv.Seen | None:
        """The frame as the checker sees it, if the run owns it (an error, or an event of a
        message the model knows or a body of this run); others are strangers' traffic."""
        if is_error(frame):
            return conv.Seen(name, "error", None, str(frame.get("error")), show(frame, 120))
        if not is_event(frame) or frame.get("action") not in ("new", "update", "delete"):
            return None
        message_id = str(frame.get("id"))
        if message_id not in seq.model.by_id and not self.chat.owns(frame):
            return None
        body = frame.get("body")
        return conv.Seen(
            name,
            frame["action"],
            message_id,
            body if isinstance(body, str) else None,
            show(frame, 120),
        )

    # after the run ----------------------------------------------------------------------

    def replay(self, ops: list[Op]) -> tuple[Sequence, conv.Finding | None]:
        """A program once more, on its own, in a sequence of its own."""
        seq = self.begin()
        finding: conv.Finding | None = None
        try:
            for op in ops:
                try:
                    self.play(seq, op)
                except SequenceFailed as exc:
                    finding = exc.finding
                    break
        finally:
            self.end()
        return seq, finding

    def tell(self, story: list[Op]) -> None:
        """One of the stories every run tells first (:data:`STORIES`)."""
        if self.best is None and not self.over_budget():
            self.replay(story)

    def shrink(self, failed: Failed) -> Failed:
        """Take steps out of a failing program, one at a time (with the steps that stand on
        it), for as long as it still fails at the same requirement and the shrinking budget
        lasts: the shortest story that still shows the failure."""
        self.exploring = False
        best = failed
        changed = True
        while changed:
            changed = False
            for i in range(len(best.ops) - 1, -1, -1):
                if self.over_budget():
                    return best
                candidate = _without(best.ops, i)
                if not candidate:
                    continue
                _, finding = self.replay(candidate)
                if finding is not None and finding.requirement == best.finding.requirement:
                    best, changed = Failed(candidate, finding), True
                    break
        return best

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.chat.close_all())
        finally:
            self.loop.close()


def _without(ops: list[Op], index: int) -> list[Op]:
    """``ops`` without the one at ``index`` and the later ones that stand on it: those of a
    connection it opened, edits and deletes of the message it sent."""
    gone_conns: set[str] = set()
    gone_ops: set[int] = set()
    out: list[Op] = []
    for i, op in enumerate(ops):
        depends = (
            i == index
            or op.conn in gone_conns
            or op.other in gone_conns
            or (op.target is not None and id(op.target) in gone_ops)
        )
        if depends:
            gone_ops.add(id(op))
            if op.do in ("connect", "reconnect"):
                gone_conns.add(op.conn)
            continue
        out.append(op)
    return out


class SequenceFailed(Exception):
    """A step broke the model (hypothesis shrinks on it)."""

    def __init__(self, finding: conv.Finding) -> None:
        super().__init__(f"[{finding.requirement}] {finding.expected} / {finding.actual}")
        self.finding = finding


def _bodies() -> st.SearchStrategy[tuple[str, int | None]]:
    """A drawn text and where its length lands: as drawn, or one under, at or over the limit."""
    return st.tuples(
        st.text(CHARS, max_size=12),
        st.sampled_from([None, None, None, -1, 0, 1]),
    )


def _machine(c: Conversations) -> type[RuleBasedStateMachine]:
    limit = c.chat.target.max_length

    def body_of(drawn: tuple[str, int | None], pad: str) -> str:
        """The nonce and a space (the run owns the frame: the nonce stays a word of its own),
        the drawn text, and, for a length around the limit, the pad character up to it; never
        blank at either end (a server may trim)."""
        text, offset = drawn
        head = f"{c.chat.nonce('conv')} "
        body = head + (text.strip() or pad)
        size = limit + (offset or 0)
        if offset is None or size <= len(head):
            return body.rstrip()
        body = body[:size].rstrip()
        return body + pad * (size - len(body))

    class Conversation(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.seq = c.begin()
            #: The messages steps named or created, in order (the story's thread).
            self.touched: list[str] = []

        def teardown(self) -> None:
            c.end()

        def _open(self) -> list[str]:
            return [link.name for link in self.seq.model.links.values() if link.open]

        def _who(self, data: st.DataObject) -> str:
            """One of the open connections, drawn from those open now."""
            return data.draw(st.sampled_from(self._open()), label="who")

        def _target(self, data: st.DataObject) -> tuple[str, str | None]:
            """Who acts on which message. The message: of either room, deleted or not, the
            last one a step touched most often (a story goes on with the message it is
            about); None: an id no server issued. Who: most often a connection of its author
            in its room (the author's edits and deletes are the ones served), else anyone."""
            model = self.seq.model
            touched = [r for r in reversed(self.touched) if r in model.messages]
            recent = list(dict.fromkeys(touched))[:4]
            refs = [*([recent[0]] * 3 if recent else []), *recent[1:], None]
            ref = data.draw(st.sampled_from(refs), label="message")
            open_ = self._open()
            if ref is None:
                return data.draw(st.sampled_from(open_), label="who"), None
            message = model.messages[ref]
            authors = [
                n for n in open_
                if model.links[n].user == message.user and model.links[n].room == message.room
            ]  # fmt: skip
            return data.draw(st.sampled_from([*(authors * 3), *open_]), label="who"), ref

        def _touch(self, ref: str | None = None) -> None:
            if ref is None:  # a send: the message it created, if the server took it
                made = [m.ref for m in self.seq.model.messages.values() if not m.sentinel]
                ref = made[-1] if made else None
            if ref is not None:
                self.touched.append(ref)

        def _do(self, op: Op) -> None:
            if c.over_budget():
                # Not sent, but the model takes the step: what hypothesis draws next depends
                # on the model alone, whatever the clock said (a replay draws the same).
                c.skipped += 1
                c.dry(self.seq, op)
                return
            c.play(self.seq, op)

        def seq_name(self) -> str:
            return c.new_name(self.seq)

        @initialize(roles=st.permutations(ROLES))
        def first(self, roles: list[str]) -> None:
            """Two accounts in the main room to begin with: most stories need two."""
            for role in roles[:2]:
                self._do(Op("connect", self.seq_name(), role, "main"))

        @precondition(lambda self: len(self._open()) < MAX_OPEN)
        @rule(role=st.sampled_from(ROLES), room=st.sampled_from(ROOMS))
        def connect(self, role: str, room: str) -> None:
            self._do(Op("connect", self.seq_name(), role, room))

        @precondition(lambda self: bool(self._open()))
        @rule(data=st.data(), drawn=_bodies(), pad=PAD)
        def send(self, data: st.DataObject, drawn: tuple[str, int | None], pad: str) -> None:
            self._do(Op("send", self._who(data), body=body_of(drawn, pad)))
            self._touch()

        @precondition(lambda self: bool(self._open()))
        @rule(data=st.data(), drawn=_bodies(), pad=PAD)
        def edit(self, data: st.DataObject, drawn: tuple[str, int | None], pad: str) -> None:
            who, ref = self._target(data)
            target = self.seq.creators.get(ref) if ref else None
            self._do(Op("edit", who, ref=ref, body=body_of(drawn, pad), target=target))
            self._touch(ref)

        @precondition(lambda self: bool(self._open()))
        @rule(data=st.data())
        def delete(self, data: st.DataObject) -> None:
            who, ref = self._target(data)
            target = self.seq.creators.get(ref) if ref else None
            self._do(Op("delete", who, ref=ref, target=target))
            self._touch(ref)

        @precondition(lambda self: bool(self._open()))
        @rule(data=st.data(), room=st.sampled_from(ROOMS))
        def reconnect(self, data: st.DataObject, room: str) -> None:
            old = self._who(data)
            role = self.seq.model.links[old].role
            self._do(Op("reconnect", self.seq_name(), role, room, other=old))

        @precondition(lambda self: len(self._open()) > 1)
        @rule(data=st.data(), vanish=st.booleans())
        def leave(self, data: st.DataObject, vanish: bool) -> None:
            self._do(Op("vanish" if vanish else "close", self._who(data)))

    return Conversation


def stories(chat: Chat) -> list[list[Op]]:
    """The stories every run tells first, whatever hypothesis draws after (its explicit phase,
    as the property suite's explicit examples): one per kind of sequence a chat server is known
    to get wrong. A message's life: edited, deleted, edited and deleted again, by its author
    and by another user. Twins and reconnects: a second connection of the author, a reconnect
    within a second of a vanished one, a delete after it, a reconnect to the other room, then
    edits."""

    def body(label: str) -> str:
        return f"{chat.nonce('story')} {label}"

    life: list[Op] = [Op("connect", "c1", "member", "main"), Op("connect", "c2", "member2", "main")]
    m1 = Op("send", "c1", body=body("first"))
    life += [
        m1,
        Op("edit", "c1", body=body("edited"), target=m1),
        Op("edit", "c2", body=body("not theirs"), target=m1),
        Op("delete", "c1", target=m1),
        Op("edit", "c1", body=body("after its delete"), target=m1),
        Op("delete", "c1", target=m1),
        Op("delete", "c2", target=m1),
    ]
    twins: list[Op] = [
        Op("connect", "c1", "member", "main"),
        Op("connect", "c2", "member2", "main"),
        Op("connect", "c3", "member", "main"),
    ]
    kept, gone = Op("send", "c1", body=body("kept")), Op("send", "c1", body=body("gone"))
    moved = Op("send", "c3", body=body("moved"))
    twins += [
        kept,
        Op("edit", "c1", body=body("edited"), target=kept),
        gone,
        Op("delete", "c1", target=gone),
        Op("vanish", "c1"),
        Op("connect", "c4", "member", "main"),
        Op("send", "c2", body=body("while back")),
        Op("delete", "c4", target=gone),
        moved,
        Op("reconnect", "c5", "member", "other", other="c3"),
        Op("edit", "c4", body=body("after the move"), target=moved),
        Op("edit", "c4", body=body("again"), target=kept),
    ]
    return [life, twins]


def _story(seq: Sequence, finding: conv.Finding) -> list[str]:
    """The sequence as numbered steps: who did what on which connection, what came back (the
    failing step marked with the requirement it broke)."""
    lines = []
    for n, (op, step) in enumerate(zip(seq.ops, seq.record.steps, strict=False), start=1):
        quiet = "accepted" if op.do in ("connect", "reconnect") else "nothing"
        seen = "; ".join(conv.describe_seen(s, seq.model) for s in step.seen
                         if not _sentinel(seq, s)) or quiet  # fmt: skip
        mark = "  <- " + finding.requirement if n == finding.step else ""
        lines.append(f"{n}. {op.text()}: {seen}{mark}")
    return lines


def _sentinel(seq: Sequence, seen: conv.Seen) -> bool:
    """A sentinel's own ``new`` event (the story leaves them out: they prove, they tell
    nothing)."""
    return seen.action == "new" and seen.body in seq.model.sentinel_bodies


def _figure(c: Conversations, seq: Sequence, finding: conv.Finding) -> dict[str, Any]:
    """The ``sequence`` figure (schemas/results.json): the story, in data."""
    chat, model = c.chat, seq.model
    target = chat.target
    connections = []
    for link in model.links.values():
        conn = seq.conns.get(link.name)
        host, slug = chat.place_of(link.room)
        url = target.endpoints[conn.node if conn is not None else 0]
        connections.append({
            "name": link.name, "role": link.role, "user": link.user, "room": link.room,
            "url": url.format(host=host, room=slug),
        })  # fmt: skip
    steps = []
    for op, step in zip(seq.ops, seq.record.steps, strict=False):
        expect: list[dict[str, Any]] = []
        for item in step.outcome.items:
            if isinstance(item, conv.Error):
                expect.append({"conn": item.conn, "error": sorted(item.texts)})
            elif not model.messages[item.ref].sentinel:
                entry: dict[str, Any] = {"conn": item.conn, "event": item.action,
                                         "message": item.ref}  # fmt: skip
                if item.body is not None:
                    entry["body"] = item.body
                expect.append(entry)
        failed = step.n == finding.step
        entry = {
            "n": step.n, "do": op.do, "conn": op.conn,
            "expect": expect,
            "observed": [conv.describe_seen(s, model) for s in step.seen
                         if not _sentinel(seq, s)],
            "ok": not failed,
            "note": f"{finding.requirement}: expected {finding.expected}; got {finding.actual}"
            if failed else "",
        }  # fmt: skip
        if step.frame is not None:
            entry["frame"] = dict(step.frame)
        if op.do == "send" and step.outcome.ref is not None:
            entry["creates"] = step.outcome.ref
        if op.do in ("edit", "delete"):
            entry["message"] = op.ref
        if op.do in ("connect", "reconnect"):
            entry["room"] = op.room
        if op.other:
            entry["from"] = op.other
        steps.append(entry)
    auth = target.auth
    return {
        "kind": "sequence",
        "requirement": finding.requirement,
        "sequences": c.ran,
        "steps_run": c.steps_run,
        "failed_step": finding.step,
        "auth": {
            "transport": auth.transport,
            "param": auth.param_name,
            "scheme": (auth.scheme or None) if auth.transport == "header" else None,
            "subprotocol": (auth.name or None) if auth.transport == "subprotocol" else None,
        },
        "origin": target.origin,
        "header_names": sorted(target.headers),
        "connections": connections,
        "steps": steps,
        "witness": list(finding.witness),
    }


@requirement("CONV-001", "CONV-002", "CONV-003", "CONV-004")
def test_conversations_follow_the_model(chat: Chat) -> None:
    chat.gate_check("SEND-002")  # a sentinel is the sender's own event
    chat.gate_check("SEND-003")
    chat.gate_check("BCAST-001")  # the stories open second connections of an account
    c = Conversations(chat)
    machine = _machine(c)
    chosen = settings(
        max_examples=c.sequences,
        stateful_step_count=c.steps,
        deadline=None,
        database=None,
        # The same sequences on every run: a gate's verdict does not change by chance.
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.shrink),
        print_blob=False,
        report_multiple_bugs=False,
    )
    try:
        try:
            for story in stories(chat):
                c.tell(story)
            if c.best is None:
                run_state_machine_as_test(machine, settings=chosen)
        except ResourceLimit:
            raise
        except Exception:  # a finding (or hypothesis' report of it) is judged below
            if c.best is None:
                raise
        if c.best is not None:
            _report(c, c.best)
        if c.steps_run == 0:
            pytest.skip("not tested: the time budget ran out before a step was sent")
        pace = (time.monotonic() - c.started) / max(c.steps_run, 1)
        chat.observe(
            "CONV-004",
            f"{c.ran} sequences, {c.steps_run} steps in all (at most {c.steps} per sequence), "
            f"{pace * 1000:.0f} ms a step"
            + (f"; {c.skipped} steps drawn after the {c.budget:.0f} s time budget "
               "(conversations.time_budget) were not sent" if c.skipped else ""),
        )  # fmt: skip
        if c.sequences < chat.target.sequences:
            chat.observe(
                "CONV-004",
                f"{c.sequences} of the {chat.target.sequences} sequences "
                "(conversations.sequences) fit the time budget at the server's pace",
            )
    finally:
        c.close()


def _report(c: Conversations, best: Failed) -> None:
    """Shrink the failing sequence further, run the shortest once more and fail the test with
    its story; a frame that never came in a crowd (:attr:`Conversations.starved`) fails it at
    once, for the run alone to tell the story."""
    if c.starved is not None:
        starved = ConformanceFailure(
            c.starved.requirement, c.starved.expected, c.starved.actual, also=c.starved.also
        )
        starved.frame_awaited = True
        raise starved
    best = c.shrink(best)
    seq, finding = c.replay(best.ops)
    again = finding is not None
    finding = finding or best.finding
    story = _story(seq, finding) if again else [f"{i}. {op.text()}" for i, op in
                                                   enumerate(best.ops, start=1)]  # fmt: skip
    if again:
        c.chat.figures[finding.requirement] = _figure(c, seq, finding)
    else:
        c.chat.observe(
            finding.requirement,
            "the shortest failing sequence did not fail again when run on its own",
        )
    lines = "\n".join(f"    {line}" for line in story)
    failure = ConformanceFailure(
        finding.requirement,
        finding.expected,
        f"{finding.actual} (step {finding.step} of {len(story)}):\n{lines}",
        also=finding.also,
    )
    failure.frame_awaited = finding.awaited
    raise failure
