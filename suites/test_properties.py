"""Property-based robustness: client frames generated from schemas/client (ROBUST-016, -017).

hypothesis draws frames from the schema files through :mod:`harness.server.strategies` (why not
hypothesis-jsonschema: see that module). The number of examples comes from ``--examples`` or the
target's ``[properties] examples``; a failure is shrunk to the smallest frame, which the failure
message (and so the report) shows.

The oracle only asserts what the catalogue states: an error where the seed names one must say
exactly that; where the seed is silent (empty or blank text, control characters, extra fields a
server may refuse) any error frame passes.
"""

from __future__ import annotations

import asyncio
import json
import time
import unicodedata
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from harness import schemas, spec
from harness.core.failures import ConformanceFailure, ResourceLimit
from harness.core.frames import is_error, is_event, same_visible_text, show, visible
from harness.server.chat import Chat, Conn
from harness.server.strategies import NearMiss, from_schema, near_miss, short_repr

requirement = pytest.mark.requirement

GHOST = "00000000-0000-4000-8000-000000000000"


def _unusual(text: str) -> bool:
    """Text a server may refuse without contradicting the seed: blank, or with control
    characters (other than tab and newline), or noncharacters."""
    if not text.strip():
        return True
    for ch in text:
        cat = unicodedata.category(ch)
        if (cat == "Cc" and ch not in "\t\n") or cat == "Cn" or ch in "\ufffe\uffff":
            return True
    return False


def _settings(examples: int) -> dict[str, Any]:
    """Bounded, reproducible-enough runs: no example database, no deadline (the network is in
    the loop), one reported failure, shrunk to the smallest frame."""
    return {
        "max_examples": examples,
        "deadline": None,
        "database": None,
        "suppress_health_check": list(HealthCheck),
        "phases": (Phase.explicit, Phase.generate, Phase.shrink),
        "print_blob": False,
        "report_multiple_bugs": False,
    }


class Session:
    """The connections and messages a property run keeps between examples (one event loop).

    A :class:`ResourceLimit` (the server passed one of the harness's own bounds) is not about the
    frame drawn: the first one is remembered and raised again at once, without any I/O, by every
    later example, so that hypothesis' shrinking costs CPU only against such a server.
    """

    def __init__(self, chat: Chat, requirement: str) -> None:
        self.chat = chat
        self.requirement = requirement
        self.loop = asyncio.new_event_loop()
        #: The time budget (``properties.time_budget``): examples drawn after it do no I/O.
        self.budget = chat.target.properties_budget_s
        #: Set when the first example starts, so hypothesis' own set-up (building strategies)
        #: never eats the budget: the first example is always sent.
        self.deadline: float | None = None
        self.ran = 0
        self.skipped = 0
        self.culprit: Conn | None = None
        self.watcher: Conn | None = None
        self.other: Conn | None = None
        self.own: list[str] = []
        self.theirs: str | None = None
        self.gone: set[str] = set()
        self.limit: ResourceLimit | None = None

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        if self.limit is not None:
            coro.close()  # never started: no I/O
            raise self.limit
        if self.deadline is None:
            self.deadline = time.monotonic() + self.budget
        elif time.monotonic() > self.deadline:
            coro.close()  # over the budget: the example is not sent (counted, reported)
            self.skipped += 1
            return None
        self.ran += 1
        bound = max(30.0, 6 * self.chat.target.receive_timeout)
        try:
            return self.loop.run_until_complete(asyncio.wait_for(coro, bound))
        except ResourceLimit as exc:
            self.limit = exc
            raise

    def close(self) -> None:
        if self.skipped:
            self.chat.observe(
                self.requirement,
                f"{self.ran} examples sent within the {self.budget:.0f} s time budget "
                f"(properties.time_budget); {self.skipped} drawn after it were not sent",
            )
        try:
            self.loop.run_until_complete(self.chat.close_all())
        finally:
            self.loop.close()

    async def ready(self) -> tuple[Conn, Conn]:
        if self.culprit is None or self.culprit.closed is not None:
            self.culprit = await self.chat.connect("member", label="culprit")
        if self.watcher is None or self.watcher.closed is not None:
            self.watcher = await self.chat.connect("member2", label="watcher")
        if self.theirs is None:
            self.theirs = str((await self.chat.post(self.watcher))["id"])
        if not self.own:
            self.own.append(str((await self.chat.post(self.culprit))["id"]))
        return self.culprit, self.watcher

    async def flush(self, conn: Conn, body: str | None = None) -> None:
        """Drain ``conn`` up to the echo of ``body`` (already sent), else of a fresh nonce, so no
        answer of one example leaks into the next."""
        if conn.closed is not None:
            return
        if body is None:
            body = self.chat.nonce("flush")
            await conn.send_text(body)
        closed = await conn.wait_closed(
            self.chat.target.receive_timeout,
            until=lambda f: is_event(f, "new") and f.get("body") == body,
        )
        if closed is None:
            conn.buffer.clear()


# --- ROBUST-016: valid frames --------------------------------------------------------------


def _valid_frames(limit: int) -> st.SearchStrategy[tuple[dict[str, Any], str]]:
    frames = st.one_of(
        from_schema("client/text", text_limit=limit),
        from_schema("client/update", text_limit=limit),
        from_schema("client/delete"),
    )
    return st.tuples(frames, st.sampled_from(["own", "theirs", "unknown"]))


async def _check_valid(s: Session, frame: dict[str, Any], pick: str) -> None:
    culprit, _ = await s.ready()
    limit = s.chat.target.max_length
    kind = frame["type"]
    frame = dict(frame)
    extra = bool(set(frame) - spec.CLIENT_FIELDS)
    target: str | None = None
    if kind in ("update", "delete"):
        if pick == "own":
            target = s.own[-1]
        elif pick == "theirs" and s.theirs is not None:
            target = s.theirs
        else:
            target = str(frame["messageId"])
        frame["messageId"] = target
    message = frame.get("message")
    text = message if isinstance(message, str) else ""
    too_long = kind != "delete" and len(text) > limit
    lenient = extra or (kind != "delete" and _unusual(text))

    def answers(f: Any) -> bool:
        if is_error(f):
            return True
        if kind == "text":
            if not is_event(f, "new"):
                return False
            body = f.get("body")
            if body in (text, text.strip()):
                return True
            # A server may sanitise what the seed does not cover (controls, blanks): the cleaned
            # body is its answer. Matched by what stays visible, and by the sender's name when
            # nothing does (a whitespace-only frame).
            return (
                lenient
                and same_visible_text(text, body)
                and (
                    bool(visible(text))
                    or f.get("user") in (None, s.chat.account("member").username)
                )
            )
        return is_event(f, kind) and f.get("id") == target

    # Silence is proven by a sentinel sent right after the frame: the server handles one
    # connection's frames in order, so the sentinel's echo arriving first means no answer.
    after = s.chat.nonce("after")
    shown = show(frame, 160)
    gone = target in s.gone  # before this frame
    if kind == "delete" and target in s.own:
        # Unanswered or not, the server may have deleted it: the next examples (hypothesis
        # replays the failing one) must not count on it, or the replay fails differently.
        s.own.remove(target)
        s.gone.add(target)
    try:
        await culprit.send_json(frame)
        await culprit.send_text(after)
        answer = await culprit.wait_for(
            lambda f: answers(f) or (is_event(f, "new") and f.get("body") == after),
            requirement="ROBUST-016",
            expected=f"an answer to {shown}",
        )
    except ConformanceFailure as exc:
        raise ConformanceFailure(
            "ROBUST-016", f"an answer to {shown}", f"{exc.actual} [{exc.requirement}]"
        ) from None
    if not answers(answer):
        raise ConformanceFailure(
            "ROBUST-016",
            f"an answer to {shown}",
            "no answer; the server answered a later frame (the sentinel) first",
        )

    def fail(expected: str) -> None:
        raise ConformanceFailure("ROBUST-016", f"{expected} for {shown}", f"answer {show(answer)}")

    exceeds = spec.too_long(limit)
    if is_error(answer):
        said = answer.get("error")
        # The errors the catalogue names for this frame; the seed gives no order between two
        # reasons, so either is right. Where the seed names none, or the frame carries
        # something a server may refuse on its own terms (lenient), any error text passes.
        allowed: set[str] = {exceeds} if too_long else set()
        if kind != "text" and (pick != "own" or gone):
            allowed.add(
                spec.not_yours(kind) if pick == "theirs" and not gone else spec.ERRORS.not_found
            )
        if not lenient:
            if not allowed:
                fail("an event (the frame is valid and within the limit)")
            if said not in allowed:
                fail(" or ".join(f'{{"error": "{a}"}}' for a in sorted(allowed)))
    else:
        if too_long:
            fail(f'{{"error": "{exceeds}"}}, not an event')
        if kind != "text" and (pick != "own" or gone):
            fail("an error (not the author, or no such message), not an event")

    await s.flush(culprit, after)
    if s.watcher is not None:
        s.watcher.buffer.clear()


@requirement("ROBUST-016")
def test_valid_frames_get_consistent_answers(chat: Chat, examples: int) -> None:
    session = Session(chat, "ROBUST-016")
    limit = chat.target.max_length

    @settings(**_settings(examples))
    @example(case=({"type": "text", "message": "explicit: one over the seed's limit " * 14}, "own"))
    @example(case=({"type": "update", "messageId": GHOST, "message": "explicit: ghost"}, "unknown"))
    @example(case=({"type": "delete", "messageId": GHOST}, "theirs"))
    @given(case=_valid_frames(limit))
    def prop(case: tuple[dict[str, Any], str]) -> None:
        session.run(_check_valid(session, *case))

    try:
        prop()
    finally:
        session.close()


# --- ROBUST-017: near misses ---------------------------------------------------------------


#: Near misses every run tries first (hypothesis' explicit phase), whatever it draws after:
#: one of each kind a broken server is known to mishandle.
EXPLICIT_NEAR_MISSES = [
    NearMiss("client/text", "unknown-type", "type",
             {"type": "shout", "message": "explicit: unknown type"}, "`type` names no frame"),
    NearMiss("client/text", "wrong-type", "type",
             {"type": False, "message": "explicit: type is false"}, "`type` is a boolean"),
    NearMiss("client/text", "wrong-type", "message", {"type": "text", "message": 42},
             "`message` is an integer", servable=True),
    NearMiss("client/update", "bad-format", "messageId",
             {"type": "update", "messageId": "not-a-uuid", "message": "explicit: bad id"},
             "`messageId` is not a UUID"),
    NearMiss("client/text", "not-object", None, ["text", "explicit: an array"], "an array"),
    NearMiss("client/text", "binary", None, b"\xff\xfeexplicit: not UTF-8", "binary, not UTF-8"),
]  # fmt: skip


def _with_explicit(test: Any) -> Any:
    for near in EXPLICIT_NEAR_MISSES:
        test = example(near=near)(test)
    return test


def _caused_by(near: NearMiss) -> Any:
    """Events a broadcast of this near miss would produce: matched by its own content. For a
    near miss a server may serve (``near.servable``), only a non-string body is forbidden."""
    value = near.value
    bodies: set[str] = set()
    ids: set[str] = set()
    if isinstance(value, dict):
        if isinstance(value.get("message"), str):
            bodies.add(value["message"])
        if isinstance(value.get("messageId"), str):
            ids.add(value["messageId"])
    elif isinstance(value, str):
        bodies.add(value)
    elif not isinstance(value, bytes):
        bodies.add(near.wire if isinstance(near.wire, str) else "")

    def match(f: Any) -> bool:
        if not is_event(f):
            return False
        body = f.get("body")
        if "body" in f and not isinstance(body, str):
            return True  # ROBUST-010: never a non-string body
        if near.servable:
            return False
        return body in bodies or (f.get("action") in ("update", "delete") and f.get("id") in ids)

    return match


def _made_own(chat: Chat, near: NearMiss) -> NearMiss:
    """The near miss, carrying something unique to this test wherever it can without changing
    how it misses: a broadcast of ``"explicit: unknown type"`` or ``42`` could be another run's
    in the same room; one carrying this test's nonce or 16-digit number is this test's. Values
    that cannot carry anything (``null``, ``true``, a missing field) stay as they are."""
    value = near.value
    if isinstance(value, bytes):
        if near.kind != "binary-json":
            return replace(near, value=value + b" " + chat.nonce("binary").encode())
        try:
            frame = json.loads(value)
        except ValueError:
            return near
        own = _own_frame(chat, frame, None) if isinstance(frame, dict) else frame
        return replace(near, value=json.dumps(own, ensure_ascii=False).encode())
    if not isinstance(value, dict):
        own = _own_value(chat, value)
        return replace(near, value=own, description=_swap(near.description, value, own))
    own = _own_frame(chat, value, near.field)
    if not schemas.validate(near.schema, own):
        return near  # it would no longer miss (never expected; a guard)
    description = near.description
    if near.field is not None and near.field in value:
        description = _swap(description, value[near.field], own[near.field])
    return replace(near, value=own, description=description)


def _own_frame(chat: Chat, frame: dict[str, Any], field: str | None) -> dict[str, Any]:
    """A frame whose wrong ``field`` (an id or the message) holds this test's value, and whose
    ``message``, when it is a string that is not what misses, ends with this test's nonce."""
    own = dict(frame)
    if field in ("message", "messageId") and field in own:
        own[field] = _own_value(chat, own[field])
    message = own.get("message")
    if field != "message" and isinstance(message, str):
        nonce = chat.nonce("near")
        keep = max(0, chat.target.max_length - len(nonce) - 1)
        own["message"] = f"{message[:keep]} {nonce}".lstrip()
    return own


def _own_value(chat: Chat, value: Any) -> Any:
    """A wrong value of the same JSON type, carrying this test's nonce or number."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return chat.unique_int()
    if isinstance(value, str):
        return f"{value} {chat.nonce('near')}"
    if isinstance(value, list):
        return [*value, chat.nonce("near")]
    if isinstance(value, dict):
        return {**value, "nonce": chat.nonce("near")}
    return value


def _swap(description: str, old: Any, new: Any) -> str:
    """The description naming the value sent (near misses quote it: :func:`short_repr`)."""
    return description.replace(short_repr(old), short_repr(new)) if old is not new else description


async def _check_near_miss(s: Session, near: NearMiss, *, stay_connected: bool = False) -> None:
    culprit, watcher = await s.ready()
    near = _made_own(s.chat, near)
    shown = f"{near} ({show(near.value if not isinstance(near.value, bytes) else near.wire, 120)})"
    # ROBUST-018 judges only whether the sender stays served; broadcasts are ROBUST-017's.
    forbidden = (lambda frame: False) if stay_connected else _caused_by(near)
    try:
        await culprit.send_raw(near.wire)
        served = await s.chat.settle(
            culprit, [watcher], "ROBUST-017", forbidden, f"broadcast caused by {shown}"
        )
    except ConformanceFailure as exc:
        if stay_connected:
            raise  # a schema violation, say: it names its own requirement
        raise ConformanceFailure(
            "ROBUST-017", f"nothing broadcast, the room served, after {shown}", exc.actual
        ) from None
    # What came before the sentinel is judged; stale frames must not reach the next example.
    watcher.buffer.clear()
    if stay_connected and not served:
        how = "closed" if culprit.closed is not None else "no longer served"
        code = f" (close code {culprit.closed[0]})" if culprit.closed else ""
        s.culprit = None
        raise ConformanceFailure(
            "ROBUST-018", f"the sender still connected and served after {shown}", f"{how}{code}"
        )
    if served:
        culprit.buffer.clear()
    else:
        s.culprit = None  # closed or stuck: the SHOULD checks judge that; start afresh


def _near_misses() -> st.SearchStrategy[NearMiss]:
    kinds = ("text", "update", "delete")
    return st.one_of(*(near_miss(f"client/{k}", include_servable=True) for k in kinds))


def _run_near_misses(chat: Chat, examples: int, *, stay_connected: bool) -> None:
    session = Session(chat, "ROBUST-018" if stay_connected else "ROBUST-017")

    @settings(**_settings(examples))
    @_with_explicit
    @given(near=_near_misses())
    def prop(near: NearMiss) -> None:
        session.run(_check_near_miss(session, near, stay_connected=stay_connected))

    try:
        prop()
    finally:
        session.close()


@requirement("ROBUST-017")
def test_near_miss_frames_never_broadcast(chat: Chat, examples: int) -> None:
    _run_near_misses(chat, examples, stay_connected=False)


@requirement("ROBUST-018")
def test_near_miss_frames_keep_the_sender_connected(chat: Chat, examples: int) -> None:
    _run_near_misses(chat, examples, stay_connected=True)
