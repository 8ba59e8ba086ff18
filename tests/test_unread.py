"""Frames no check read: marked in the transcript, left out of a passing test's report.

Under concurrency (and on any deployed server) a test's connections carry other traffic of the
room. A failure's transcript keeps all of it (evidence); a passing test's report shows each run of
such frames as one line, so that a crowded room does not bloat the report.
"""

from __future__ import annotations

from harness.core.transcript import Entry, compact_list, without_unread
from harness.server.chat import Chat
from tests.fakewire import FakeServer, run_scenario


def test_frames_no_check_read_are_marked_and_frames_read_later_are_not() -> None:
    chat = FakeServer(noise=3).chat()

    async def scenario(chat: Chat) -> None:
        sender = await chat.connect("member")
        first, second = chat.nonce("first"), chat.nonce("second")
        await sender.send_text(first)
        await sender.send_text(second)
        # The second event first: the noise and the first event are kept in the buffer...
        await sender.expect_event("new", body=second, requirement="SEND-002")
        # ...and the first is read from there after all.
        await sender.expect_event("new", body=first, requirement="SEND-002")

    run_scenario(scenario, chat)
    received = [e for e in chat.transcript.entries if e.direction == "<-"]
    unread = [e for e in received if e.unread]
    assert len(unread) == 6 and all("noise-" in e.text for e in unread)
    assert not any(e.unread for e in received if "noise-" not in e.text)


def test_a_passing_report_shows_each_run_of_unread_frames_as_one_line() -> None:
    entries = [
        Entry(1.0, "a#1", "->", "sent"),
        Entry(2.0, "a#1", "<-", "noise 1", unread=True),
        Entry(3.0, "a#1", "<-", "noise 2", unread=True),
        Entry(4.0, "a#1", "<-", "mine"),
        Entry(5.0, "a#1", "<-", "noise 3", unread=True),
    ]
    shown = without_unread(entries)
    assert [e.text for e in shown] == [
        "sent",
        "2 frames no check of this test read (other traffic)",
        "mine",
        "1 frame no check of this test read (other traffic)",
    ]
    assert [e.hidden for e in shown] == [0, 2, 0, 1]
    data = [e.as_dict() for e in entries]
    assert [e["text"] for e in compact_list(data)] == [e.text for e in entries]  # failures: all
    assert "noise" not in str(compact_list(data, hide_unread=True))
