"""The conversation model and its checker (harness.core.conversation), on lists of frames: no
socket, no loop, no clock. Each case feeds a step's frames as a server would send them and
checks the requirement the checker names (or that it names none)."""

from __future__ import annotations

import itertools

import pytest

from harness import spec
from harness.core import conversation as conv

TEXTS = conv.Texts(
    500, spec.too_long(500), spec.ERRORS.not_found, spec.ERRORS.edit_own, spec.ERRORS.delete_own
)
HOST = "alice"
USERS = {"member": "bob", "member2": "carol", "host": "alice"}


class Story:
    """Drives a model the way the suite does, with frames written by the test."""

    def __init__(self) -> None:
        self.model = conv.Model(TEXTS, HOST, spec.ECHO_REQUIREMENT, spec.FANOUT_REQUIREMENT)
        self.record = conv.Record(self.model)
        self.ids = (f"id-{n}" for n in itertools.count(1))
        #: The id the "server" gave each message.
        self.given: dict[str, str] = {}
        self.step: conv.Step | None = None

    def begin(self, do: str, conn: str, outcome: conv.Outcome) -> conv.Step:
        step = conv.Step(self.model.step, do, conn, outcome)
        self.record.add(step)
        self.step = step
        return step

    def connect(self, name: str, role: str, room: str = "main") -> conv.Outcome:
        self.model.step += 1
        outcome = self.model.connect(name, role, USERS[role], room)
        self.begin("connect", name, outcome)
        return outcome

    def act(self, do: str, conn: str, *args: str) -> conv.Outcome:
        self.model.step += 1
        outcome = getattr(self.model, do)(conn, *args)
        self.begin(do, conn, outcome)
        return outcome

    def event(self, conn: str, action: conv.Action, ref: str, body: str | None = None,
              message_id: str | None = None) -> None:  # fmt: skip
        assert self.step is not None
        message = self.model.messages.get(ref)
        if message_id is None:
            message_id = self.given.setdefault(ref, next(self.ids))
        if body is None and message is not None and action != "delete":
            body = message.body
        self.step.seen.append(conv.Seen(conn, action, message_id, body, f"{action} {ref}"))

    def error(self, conn: str, text: str) -> None:
        assert self.step is not None
        self.step.seen.append(conv.Seen(conn, "error", None, text, text))

    def deliver(self, outcome: conv.Outcome, *, skip: tuple[str, ...] = ()) -> None:
        """Every expected item, as a correct server sends it (but for ``skip`` connections)."""
        for item in outcome.items:
            if item.conn in skip:
                continue
            if isinstance(item, conv.Error):
                self.error(item.conn, sorted(item.texts)[0] if item.texts else "Nope.")
            else:
                self.event(item.conn, item.action, item.ref, item.body)

    def check(self) -> conv.Finding | None:
        assert self.step is not None
        return conv.check(self.record, self.step)


def two_in_main() -> Story:
    s = Story()
    for name, role in (("c1", "member"), ("c2", "member2")):
        s.connect(name, role)
        assert s.check() is None
    return s


def posted(s: Story, conn: str = "c1", body: str = "hello") -> str:
    outcome = s.act("send", conn, body)
    s.deliver(outcome)
    assert s.check() is None
    assert outcome.ref is not None
    return outcome.ref


def test_a_correct_conversation_passes_every_step_and_the_final_view() -> None:
    s = two_in_main()
    ref = posted(s)
    s.deliver(s.act("edit", "c1", ref, "edited"))
    assert s.check() is None
    s.connect("c3", "host", "other")
    assert s.check() is None
    s.deliver(s.act("delete", "c1", ref))
    assert s.check() is None
    assert conv.final_check(s.record) is None
    assert s.record.folded["c2"][ref] == ("edited", True)


def test_an_edit_of_a_deleted_message_served_is_edit_009() -> None:
    s = two_in_main()
    ref = posted(s)
    s.deliver(s.act("delete", "c1", ref))
    assert s.check() is None
    outcome = s.act("edit", "c1", ref, "back")
    assert outcome.refused and outcome.requirement == "EDIT-009"
    s.event("c1", "update", ref, "back")
    finding = s.check()
    assert finding is not None and finding.requirement == "EDIT-009"
    assert any("delete" in line for line in finding.witness)


def test_another_users_edit_and_the_hosts_are_refused_with_their_texts() -> None:
    s = two_in_main()
    ref = posted(s)
    outcome = s.act("edit", "c2", ref, "hijack")
    assert outcome.items == [conv.Error("c2", frozenset({spec.ERRORS.edit_own}))]
    s.error("c2", spec.ERRORS.not_found)  # the wrong text
    finding = s.check()
    assert finding is not None and finding.requirement == "EDIT-005"
    s.connect("c3", "host")
    outcome = s.act("delete", "c3", ref)
    assert outcome.requirement == "DEL-004"


def test_an_error_on_other_connections_is_err_001_or_err_002() -> None:
    s = two_in_main()
    s.connect("c3", "member")
    outcome = s.act("delete", "c1", "nothing-such")
    assert outcome.requirement == "DEL-005"
    s.deliver(outcome)
    s.error("c3", spec.ERRORS.not_found)
    finding = s.check()
    assert finding is not None and finding.requirement == "ERR-002"
    s.record.steps.pop()
    outcome = s.act("delete", "c1", "nothing-such")
    s.deliver(outcome)
    s.error("c2", spec.ERRORS.not_found)
    finding = s.check()
    assert finding is not None and finding.requirement == "ERR-001"


def test_a_repeated_event_is_conv_001() -> None:
    s = two_in_main()
    outcome = s.act("send", "c1", "twice")
    s.deliver(outcome)
    s.event("c2", "new", outcome.ref or "")
    finding = s.check()
    assert finding is not None and finding.requirement == "CONV-001"


def test_an_event_of_a_message_after_its_delete_is_conv_002() -> None:
    s = two_in_main()
    ref = posted(s)
    s.deliver(s.act("delete", "c1", ref))
    assert s.check() is None
    outcome = s.act("send", "c1", "later")
    s.deliver(outcome)
    s.event("c2", "update", ref, "ghost of an edit")
    finding = s.check()
    assert finding is not None and finding.requirement == "CONV-002"


@pytest.mark.parametrize(
    ("roles", "missing", "requirement"),
    [
        (("member", "member2"), "c2", "EDIT-003"),  # another account's connection
        (("member", "member"), "c2", "BCAST-001"),  # the account's second connection
        (("member", "member2"), "c1", "EDIT-003"),  # the editor's own (checks.echo)
    ],
)
def test_a_lost_update_names_who_lost_it(
    roles: tuple[str, str], missing: str, requirement: str
) -> None:
    s = Story()
    s.connect("c1", roles[0])
    s.connect("c2", roles[1])
    ref = posted(s)
    s.deliver(s.act("edit", "c1", ref, "new body"), skip=(missing,))
    finding = s.check()
    assert finding is not None and finding.requirement == requirement
    assert finding.actual == f"{missing}: nothing"


def test_a_wrong_body_is_the_actions_requirement() -> None:
    s = two_in_main()
    ref = posted(s)
    s.act("edit", "c1", ref, "right")
    s.event("c1", "update", ref, "right")
    s.event("c2", "update", ref, "wrong")
    finding = s.check()
    assert finding is not None and finding.requirement == "EDIT-001"


def test_another_rooms_message_may_be_refused_with_any_text() -> None:
    s = two_in_main()
    ref = posted(s)
    s.connect("c3", "member", "other")
    outcome = s.act("edit", "c3", ref, "across")
    assert outcome.requirement == "ISO-002" and outcome.items == [conv.Error("c3", frozenset())]
    s.error("c3", "No such message in this room.")
    assert s.check() is None
    outcome = s.act("delete", "c3", ref)
    s.event("c1", "delete", ref)
    finding = s.check()
    assert finding is not None and finding.requirement == "ISO-004"


def test_too_long_texts_and_edits_are_refused() -> None:
    s = two_in_main()
    outcome = s.act("send", "c1", "x" * 501)
    assert outcome.items == [conv.Error("c1", frozenset({TEXTS.too_long}))]
    assert outcome.requirement == "SEND-008"
    ref = posted(s, body="x" * 500)
    outcome = s.act("edit", "c2", ref, "y" * 501)  # not own and too long: either text
    assert outcome.items == [conv.Error("c2", frozenset({TEXTS.too_long, TEXTS.edit_own}))]


def test_history_on_connect_is_allowed_once() -> None:
    s = two_in_main()
    ref = posted(s)
    s.connect("c3", "member2")
    s.event("c3", "new", ref)
    assert s.check() is None
    s.record.steps.pop()
    s.connect("c4", "member2")
    s.event("c4", "new", ref)
    s.event("c4", "new", ref)
    finding = s.check()
    assert finding is not None and finding.requirement == "CONV-001"


def test_events_of_one_sender_out_of_order_are_bcast_004() -> None:
    s = two_in_main()
    outcome = s.act("send", "c1", "first")
    sentinel = s.model.send("c1", "sentinel", sentinel=True)
    outcome.items.extend(sentinel.items)
    for conn in ("c1", "c2"):
        items = [i for i in outcome.items if i.conn == conn]
        if conn == "c2":
            items.reverse()
        for item in items:
            assert isinstance(item, conv.Event)
            s.event(conn, item.action, item.ref, item.body)
    finding = s.check()
    assert finding is not None and finding.requirement == "BCAST-004"


def test_the_final_view_must_equal_the_conversation() -> None:
    s = two_in_main()
    ref = posted(s)
    s.deliver(s.act("edit", "c1", ref, "latest"))
    assert s.check() is None
    assert conv.final_check(s.record) is None
    s.record.folded["c2"][ref] = ("hello", False)  # a view that kept the old body
    finding = conv.final_check(s.record)
    assert finding is not None and finding.requirement == "CONV-003"
    assert "latest" in finding.expected and "hello" in finding.actual


def test_a_closed_connection_expects_nothing_more() -> None:
    s = two_in_main()
    s.act("close", "c2")
    outcome = s.act("send", "c1", "after")
    assert [i.conn for i in outcome.items] == ["c1"]
