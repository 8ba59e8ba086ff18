"""A model of the conversation, and a checker of what every connection received (no I/O).

The stateful suite (``suites/test_conversation.py``) drives sequences of steps against a server:
connections open and close, messages are sent, edited and deleted by several accounts. For each
step the :class:`Model` says what the server must answer: which event, to which connections, or
which error text to the sender alone; and what may vary (ids, timestamps, extra fields, frames of
other types, a connection's history of older messages). The suite records, per step, the frames
each connection received before the step's sentinels (:class:`Record`), and :func:`check` folds
every connection's stream into its view of the conversation and compares it with the model's:

- an event where the model expects an error, or the wrong error, is named at the requirement of
  that exchange (EDIT-005, EDIT-009, DEL-006, ISO-002, ...);
- an error on a connection other than the sender's: ERR-001 (another account's) or ERR-002;
- an event repeated on one connection: CONV-001; an event of a message the connection saw
  deleted: CONV-002;
- an expected event that never came: the check tables' requirement for the action (SEND-002 on
  the sender's connection, SEND-003 on the others, EDIT-003, DEL-002), BCAST-001 on an account's
  second connection in the room;
- events of one step out of the model's order: BCAST-004;
- any other difference between a connection's view and the model's conversation: CONV-003.

The first difference is a :class:`Finding`, with its witness: the steps and frames behind it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["new", "update", "delete"]

#: A message id no server issued (edits and deletes of it are answered ``Message not found.``).
GHOST = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Texts:
    """The seed's error texts (``Common Error Messages``) and the message length limit."""

    limit: int
    too_long: str
    not_found: str
    edit_own: str
    delete_own: str


@dataclass
class Message:
    """A message of the conversation as the model knows it (``ref`` is the model's name for it,
    ``id`` the server's, once an event showed it)."""

    ref: str
    room: str
    user: str
    body: str
    step: int
    sentinel: bool = False
    id: str | None = None
    edits: int = 0
    deleted: int | None = None  # the step that deleted it


@dataclass
class Link:
    """A connection of the conversation: who (``role``, ``user``), where, and when it was open."""

    name: str
    role: str
    user: str
    room: str
    opened: int
    closed: int | None = None

    @property
    def open(self) -> bool:
        return self.closed is None


@dataclass(frozen=True)
class Event:
    """A ``chat_message`` event the model expects ``conn`` to receive."""

    conn: str
    action: Action
    ref: str
    body: str | None = None


@dataclass(frozen=True)
class Error:
    """An error frame the model expects on the sender's connection alone: one of ``texts``
    (empty: any text; the seed names none, e.g. for another room's message id)."""

    conn: str
    texts: frozenset[str]


Item = Event | Error


@dataclass
class Outcome:
    """What the server must answer to one step: ``items`` in the order each connection gets
    them, and the requirement a wrong answer to the sender breaks."""

    items: list[Item] = field(default_factory=list)
    requirement: str = ""
    #: A frame the model expects the server to refuse (the answer is an error).
    refused: bool = False
    #: The message the step names or creates (its ref), if any.
    ref: str | None = None
    #: Connections whose ``new`` events of older messages are history, not a fault (they just
    #: opened: a server may replay the room's recent messages to them).
    history: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Seen:
    """A frame a connection received that the run can own: an event of a message it knows or
    an error. ``shown``: the frame as the report shows it (short)."""

    conn: str
    action: Action | Literal["error"]
    id: str | None
    body: str | None
    shown: str


@dataclass
class Step:
    """One step of a sequence, for the story: what was done, what the model expected, what
    came back (``seen``, per connection, in order)."""

    n: int
    do: str
    conn: str
    outcome: Outcome
    frame: Mapping[str, Any] | None = None
    other: str | None = None  # reconnect: the connection it replaces
    room: str | None = None
    seen: list[Seen] = field(default_factory=list)


@dataclass(frozen=True)
class Finding:
    """The first difference between what a connection received and the model's conversation."""

    requirement: str
    step: int
    expected: str
    actual: str
    witness: tuple[str, ...] = ()
    #: Further requirements the same observation breaks.
    also: tuple[str, ...] = ()
    #: A frame that never came (as opposed to a wrong one): in a crowd, the test runs again
    #: alone before it is believed (the scheduler's rule for every test).
    awaited: bool = False


class Model:
    """Rooms, messages and connections of one sequence; what each client frame must cause."""

    def __init__(self, texts: Texts, host_user: str, echo: Mapping[str, str],
                 fanout: Mapping[str, str]) -> None:  # fmt: skip
        self.texts = texts
        self.host_user = host_user
        self.echo = echo
        self.fanout = fanout
        self.links: dict[str, Link] = {}
        self.messages: dict[str, Message] = {}
        self.by_id: dict[str, Message] = {}
        #: The story's step the next change belongs to (the suite advances it; a step's
        #: sentinels belong to the step).
        self.step = 0

    # state ---------------------------------------------------------------------------------

    def open_in(self, room: str) -> list[Link]:
        return [link for link in self.links.values() if link.open and link.room == room]

    def live(self, *, room: str | None = None, user: str | None = None) -> list[Message]:
        """Messages not deleted (sentinels excluded), optionally of one room or author."""
        return [
            m
            for m in self.messages.values()
            if m.deleted is None
            and not m.sentinel
            and (room is None or m.room == room)
            and (user is None or m.user == user)
        ]

    @property
    def sentinel_bodies(self) -> set[str]:
        return {m.body for m in self.messages.values() if m.sentinel}

    def bind(self, ref: str, message_id: str) -> None:
        """The server's id of ``ref``, from its first ``new`` event."""
        message = self.messages[ref]
        if message.id is None:
            message.id = message_id
            self.by_id[message_id] = message

    def id_of(self, ref: str) -> str:
        """The id a frame naming ``ref`` carries (:data:`GHOST` for one the server never
        issued or whose event never came)."""
        message = self.messages.get(ref)
        return message.id if message is not None and message.id is not None else GHOST

    # steps ---------------------------------------------------------------------------------

    def connect(self, name: str, role: str, user: str, room: str) -> Outcome:
        self.links[name] = Link(name, role, user, room, self.step)
        return Outcome(requirement="CONN-001", history=frozenset({name}))

    def close(self, name: str) -> Outcome:
        self.links[name].closed = self.step
        return Outcome()

    def send(self, name: str, body: str, *, sentinel: bool = False) -> Outcome:
        link = self.links[name]
        if len(body) > self.texts.limit:
            return self._refused(name, {self.texts.too_long}, "SEND-008")
        count = sum(1 for m in self.messages.values() if m.sentinel == sentinel) + 1
        ref = f"s{count}" if sentinel else f"m{count}"
        self.messages[ref] = Message(ref, link.room, link.user, body, self.step, sentinel)
        items: list[Item] = [Event(c.name, "new", ref, body) for c in self.open_in(link.room)]
        return Outcome(items, requirement="SEND-001", ref=ref)

    def edit(self, name: str, ref: str, body: str) -> Outcome:
        refusal = self._refusal(name, ref, "edit", body)
        if refusal is not None:
            return refusal
        message = self.messages[ref]
        message.body = body
        message.edits += 1
        items: list[Item] = [Event(c.name, "update", ref, body) for c in self.open_in(message.room)]
        return Outcome(items, requirement="EDIT-001", ref=ref)

    def delete(self, name: str, ref: str) -> Outcome:
        refusal = self._refusal(name, ref, "delete", None)
        if refusal is not None:
            return refusal
        message = self.messages[ref]
        message.deleted = self.step
        items: list[Item] = [Event(c.name, "delete", ref) for c in self.open_in(message.room)]
        return Outcome(items, requirement="DEL-001", ref=ref)

    def _refused(self, name: str, texts: Iterable[str], requirement: str,
                 ref: str | None = None) -> Outcome:  # fmt: skip
        return Outcome([Error(name, frozenset(texts))], requirement, refused=True, ref=ref)

    def _refusal(self, name: str, ref: str, verb: str, body: str | None) -> Outcome | None:
        """The error an edit (``body``) or delete of ``ref`` must get, or None when it is
        served. Where several causes hold, any of their texts is right (the seed orders none);
        the requirement named is the most specific one."""
        t = self.texts
        link = self.links[name]
        message = self.messages.get(ref)
        edit = verb == "edit"
        causes: list[tuple[str, str | None]] = []  # (requirement, text; None: any text)
        if message is None:
            causes.append(("EDIT-007" if edit else "DEL-005", t.not_found))
        elif message.room != link.room:
            causes.append(("ISO-002" if edit else "ISO-004", None))
        else:
            if message.deleted is not None:
                causes.append(("EDIT-009" if edit else "DEL-006", t.not_found))
            if message.user != link.user:
                host = link.user == self.host_user
                own = t.edit_own if edit else t.delete_own
                req = ("EDIT-006" if host else "EDIT-005") if edit else (
                    "DEL-004" if host else "DEL-003")  # fmt: skip
                causes.append((req, own))
        if body is not None and len(body) > t.limit:
            causes.append(("EDIT-008", t.too_long))
        if not causes:
            return None
        texts = frozenset() if any(text is None for _, text in causes) else {
            text for _, text in causes if text is not None}  # fmt: skip
        return self._refused(name, texts, causes[0][0], ref)

    def view(self, conn: str) -> dict[str, tuple[str, bool]]:
        """What ``conn`` should show when its events are folded: ref -> (body, deleted), for the
        messages it got a ``new`` event of (those created while it was open in their room)."""
        link = self.links[conn]
        out: dict[str, tuple[str, bool]] = {}
        for m in self.messages.values():
            if m.room == link.room and m.step > link.opened and (
                    link.closed is None or m.step < link.closed):  # fmt: skip
                out[m.ref] = (m.body, m.deleted is not None)
        return out


# --- the checker -----------------------------------------------------------------------------


def _describe(item: Item) -> str:
    if isinstance(item, Error):
        texts = " or ".join(sorted(item.texts)) or "any text"
        return f"{item.conn}: error ({texts})"
    body = f" {_short(item.body)}" if item.body is not None and item.action != "new" else ""
    return f"{item.conn}: {item.action} {item.ref}{body}"


def _short(text: str | None, size: int = 40) -> str:
    if text is None:
        return ""
    return repr(text if len(text) <= size else text[: size - 1] + "…")


def describe_seen(seen: Seen, model: Model) -> str:
    """A frame as the story shows it: ``c2: update m1 'body'`` (the model's ref when known)."""
    if seen.action == "error":
        return f"{seen.conn}: error {seen.body!r}"
    message = model.by_id.get(seen.id or "")
    name = message.ref if message is not None else (seen.id or "?")
    body = f" {_short(seen.body)}" if seen.action == "update" else ""
    return f"{seen.conn}: {seen.action} {name}{body}"


class Record:
    """What one sequence did and received, step by step; :func:`check` judges it."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.steps: list[Step] = []
        #: Per connection, its view: message ref (or id) -> (latest body, deleted).
        self.folded: dict[str, dict[str, tuple[str, bool]]] = {}
        #: Per connection, every owned event it received: (action, ref or id, body, step).
        self.received: dict[str, list[tuple[str, str, str | None, int]]] = {}

    def add(self, step: Step) -> None:
        self.steps.append(step)


def _ref_of(seen: Seen, model: Model, step: Step) -> str | None:
    """The message a seen event is about: known by id, or a ``new`` of the step's message
    whose body matches (the first event of a message binds its id)."""
    if seen.id is not None and seen.id in model.by_id:
        return model.by_id[seen.id].ref
    if seen.action == "new":
        for item in step.outcome.items:
            if isinstance(item, Event) and item.action == "new" and item.body == seen.body:
                return item.ref
    return None


def check(record: Record, step: Step) -> Finding | None:
    """Judge ``step`` (its frames in ``step.seen``) against the model and everything the
    connections received before; fold what passes into the connections' views."""
    model = record.model
    outcome = step.outcome
    expected: dict[str, list[Item]] = {}
    for item in outcome.items:
        expected.setdefault(item.conn, []).append(item)
    got: dict[str, list[Seen]] = {}
    for seen in step.seen:
        got.setdefault(seen.conn, []).append(seen)

    def found(requirement: str, want: str, actual: str, *extra: str) -> Finding:
        awaited = actual.endswith(": nothing")
        witness = _witness(record, step, extra)
        return Finding(requirement, step.n, want, actual, witness, awaited=awaited)

    # 1. Frames nothing expected, most specific cause first.
    for conn, frames in got.items():
        want = list(expected.get(conn, []))
        history = conn in outcome.history
        now: list[tuple[str, str, str | None, int]] = []
        for seen in frames:
            match = _take(want, seen, model, step)
            if match is not None:
                if isinstance(match, Event):
                    now.append((match.action, match.ref, seen.body, step.n))
                continue
            shown = describe_seen(seen, model)
            ref = _ref_of(seen, model, step)
            if seen.action == "error":
                link = model.links[conn]
                actor = model.links[step.conn]
                if conn == step.conn:
                    wanted = " or ".join(
                        _describe(i)
                        for i in expected.get(conn, [])
                        if isinstance(i, Error) or not model.messages[i.ref].sentinel
                    )
                    return found(outcome.requirement or "ROBUST-016",
                                 wanted or f"{conn}: no error", shown)  # fmt: skip
                req = "ERR-002" if link.user == actor.user else "ERR-001"
                return found(req, f"the error on {step.conn} only", shown)
            if ref is not None and outcome.refused and ref == outcome.ref:
                wanted = " or ".join(_describe(i) for i in outcome.items if isinstance(i, Error))
                return found(outcome.requirement, wanted, shown)
            past = [*record.received.get(conn, []), *now]
            key = (seen.action, ref or seen.id or "?", seen.body)
            if any(p[:3] == key for p in past):
                first = next(p for p in past if p[:3] == key)
                return found("CONV-001", f"{shown} once", f"{shown} again",
                             f"step {first[3]}: {shown} (the first time)")  # fmt: skip
            view = record.folded.get(conn, {})
            if ref is not None and ref in view and view[ref][1]:
                return found("CONV-002", f"no event of {ref} after its delete on {conn}", shown)
            if history and seen.action == "new" and ref is not None and ref in model.messages:
                now.append((seen.action, ref, seen.body, step.n))
                continue  # a history replay of an older message to a connection that just opened
            if want:
                same = [i for i in want if isinstance(i, Event) and i.action == seen.action
                        and i.ref == ref]  # fmt: skip
                if same:
                    req = "SEND-001" if seen.action == "new" else "EDIT-001"
                    return found(req, _describe(same[0]), shown)
            return found("CONV-003", f"{conn}: nothing of {ref or seen.id}", shown)
        # 2. What was expected and never came.
        for item in want:
            return found(_missing(model, item, step), _describe(item), f"{conn}: nothing")
    for conn, items in expected.items():
        if conn not in got and items:
            return found(_missing(model, items[0], step), _describe(items[0]),
                         f"{conn}: nothing")  # fmt: skip
    # 3. The order of one step's events on one connection (one sender, accepted in order).
    for conn, frames in got.items():
        order = [i for i in expected.get(conn, []) if isinstance(i, Event)]
        refs = [_ref_of(s, model, step) for s in frames if s.action != "error"]
        refs = [r for r in refs if r in {i.ref for i in order}]
        if refs != [i.ref for i in order][: len(refs)]:
            return found("BCAST-004", " then ".join(i.ref for i in order), " then ".join(
                r or "?" for r in refs))  # fmt: skip
    _fold(record, step)
    return None


def _take(want: list[Item], seen: Seen, model: Model, step: Step) -> Item | None:
    """The expected item ``seen`` is (removed from ``want``), binding a new message's id."""
    for item in want:
        if isinstance(item, Error):
            if seen.action == "error" and (not item.texts or seen.body in item.texts):
                want.remove(item)
                return item
            continue
        if seen.action != item.action:
            continue
        if item.body is not None and seen.body != item.body:
            continue
        message = model.messages[item.ref]
        if message.id is None and item.action == "new" and seen.id is not None:
            if seen.id in model.by_id:
                continue  # another message's id: SEND-006's business, not this event
            model.bind(item.ref, seen.id)
        if message.id != seen.id:
            continue
        want.remove(item)
        return item
    return None


def _missing(model: Model, item: Item, step: Step) -> str:
    if isinstance(item, Error):
        return step.outcome.requirement
    link = model.links[item.conn]
    if item.conn == step.conn:
        return model.echo.get(item.action, "SEND-002")
    twins = [
        other
        for other in model.links.values()
        if other.user == link.user
        and other.room == link.room
        and other.open
        and other.opened < link.opened
    ]
    if twins:
        return "BCAST-001"
    return model.fanout.get(item.action, "SEND-003")


def _fold(record: Record, step: Step) -> None:
    model = record.model
    for seen in step.seen:
        if seen.action == "error":
            continue
        ref = _ref_of(seen, model, step) or seen.id or "?"
        record.received.setdefault(seen.conn, []).append((seen.action, ref, seen.body, step.n))
        view = record.folded.setdefault(seen.conn, {})
        if seen.action == "new":
            view.setdefault(ref, (seen.body or "", False))
        elif seen.action == "update":
            view[ref] = (seen.body or "", False)
        else:
            body = view.get(ref, ("", False))[0]
            view[ref] = (body, True)


def final_check(record: Record) -> Finding | None:
    """CONV-003 over the whole recorded run: every connection's folded view equals the model's
    conversation for the time it was open (messages created while it was open)."""
    model = record.model
    for name in model.links:
        want = {r: v for r, v in model.view(name).items() if not model.messages[r].sentinel}
        view = record.folded.get(name, {})
        have = {r: view[r] for r in want if r in view}
        for ref, (body, deleted) in want.items():
            if ref not in have:
                continue  # never delivered: already found at its step
            if have[ref] != (body, deleted):
                state = "deleted" if deleted else f"body {_short(body)}"
                got_body, got_deleted = have[ref]
                shows = "deleted" if got_deleted else f"body {_short(got_body)}"
                last = record.steps[-1].n if record.steps else 0
                return Finding("CONV-003", last, f"{name} shows {ref} {state}",
                               f"{name} shows {ref} {shows}",
                               _witness(record, None, ()))  # fmt: skip
    return None


def witness_of(record: Record) -> tuple[str, ...]:
    """The witness of a finding made outside the checker (a frame's own checks), at the last
    step recorded."""
    return _witness(record, record.steps[-1] if record.steps else None, ())


def _witness(record: Record, step: Step | None, extra: Iterable[str]) -> tuple[str, ...]:
    """The steps of the message the failing step names, and what came back at each: the
    shortest account of how the conversation got there."""
    model = record.model
    ref = step.outcome.ref if step is not None else None
    lines: list[str] = list(extra)
    for past in record.steps:
        if ref is not None and past.outcome.ref != ref and past is not step:
            continue
        quiet = model.sentinel_bodies
        seen = "; ".join(
            describe_seen(s, model) for s in past.seen
            if not (s.action == "new" and s.body in quiet)) or "nothing"  # fmt: skip
        lines.append(f"step {past.n}: {past.do} on {past.conn}: {seen}")
    return tuple(lines[-8:])
