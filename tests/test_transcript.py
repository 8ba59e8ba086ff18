"""Transcripts stay readable (harness/core/transcript.py): long frames cut, floods collapsed,
a hard cap, and what a failure needs kept."""

from __future__ import annotations

import json
import random
import secrets
import string
import uuid

import pytest

from harness import redact
from harness.core import transcript as tr
from harness.core.transcript import ELIDED, NOTE, RECEIVED, SENT, Entry, Transcript
from harness.server.chat import Chat
from harness.spec import judge_server_frame
from harness.target import parse

FLOOD = 1000


def flood_frame(n: int = 0) -> str:
    """One frame of a flood: the same text but for a nonce, a counter and a timestamp."""
    return json.dumps(
        {
            "type": "text",
            "message": f"flood-{uuid.uuid4().hex[:16]} #{n:04d} " + "x" * 60,
            "timestamp": f"2026-11-29T18:{n % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z",
        }
    )


def logged(entries: list[dict[str, object]]) -> int:
    """How many logged entries a shown transcript accounts for (its lines and what they hide)."""
    return sum(int(str(e.get("hidden", 1))) if e["dir"] == ELIDED else 1 for e in entries)


def distinct_text(rng: random.Random, size: int) -> str:
    """Text no other call returns in practice, and with no hex that masking would hide."""
    return "".join(rng.choices("ghijklmnopqrstuvwxyz", k=size))


# --- long frames ----------------------------------------------------------------------------


def test_a_2_mib_frame_is_shown_by_its_start_and_its_length() -> None:
    frame = '{"type":"text","message":"' + "a" * (2 * 1024 * 1024 - 28) + '"}'
    assert len(frame) == 2_097_152
    transcript = Transcript(redact.redact)
    transcript.log("member#1", SENT, frame)
    [entry] = transcript.as_list()
    text = str(entry["text"])
    assert text.startswith('{"type":"text","message":"aaaa')
    assert text.endswith("… (2,097,152 characters in all)")
    assert len(text) < tr.FRAME_LIMIT + 40
    assert "(2,097,152 characters in all)" in transcript.render()


def test_a_frame_up_to_the_limit_is_kept_whole() -> None:
    transcript = Transcript(redact.redact)
    transcript.log("member#1", RECEIVED, "b" * tr.FRAME_LIMIT)
    assert transcript.as_list()[0]["text"] == "b" * tr.FRAME_LIMIT


# --- runs of similar frames -----------------------------------------------------------------


def test_a_flood_collapses_to_a_handful_of_lines() -> None:
    entries = [Entry(float(i), "member#1", SENT, flood_frame(i)) for i in range(FLOOD)]
    shown = tr.collapse(entries, keep_last=0)
    assert len(shown) == tr.RUN_HEAD + 2
    assert shown[: tr.RUN_HEAD] == entries[: tr.RUN_HEAD]
    assert shown[-1] == entries[-1]
    marker = shown[tr.RUN_HEAD]
    assert marker.direction == ELIDED and marker.conn == "member#1"
    assert marker.hidden == FLOOD - tr.RUN_HEAD - 1
    assert f"… {FLOOD - tr.RUN_HEAD - 1:,} more sent like this" in marker.text


def test_a_flood_in_a_transcript_keeps_its_start_its_end_and_the_count() -> None:
    transcript = Transcript(redact.redact)
    transcript.log("member#1", NOTE, "handshake accepted: HTTP 101")
    for i in range(FLOOD):
        transcript.log("member#1", SENT, flood_frame(i))
    transcript.log("member#1", NOTE, "close 1000 (by the harness)")
    shown = transcript.as_list()
    # the note, the run's first frames, one line for the middle, the last KEEP_LAST entries
    assert len(shown) == 1 + tr.RUN_HEAD + 1 + tr.KEEP_LAST
    hidden = FLOOD - tr.RUN_HEAD - (tr.KEEP_LAST - 1)
    markers = [str(e["text"]) for e in shown if e["dir"] == ELIDED]
    assert len(markers) == 1 and markers[0].startswith(f"… {hidden:,} more sent like this")
    assert shown[tr.RUN_HEAD + 1]["dir"] == ELIDED
    assert logged(shown) == FLOOD + 2
    assert len(transcript.render().splitlines()) == len(shown)


def test_different_frames_are_never_collapsed_together() -> None:
    rng = random.Random(7)
    same = json.dumps({"type": "text", "message": "hello"})
    entries = [
        # one connection and direction, each frame differently worded (same length)
        *(Entry(0.0, "a#1", SENT, json.dumps({"m": distinct_text(rng, 12)})) for _ in range(6)),
        # the same frame on six connections
        *(Entry(1.0, f"c#{i}", SENT, same) for i in range(6)),
        # the same frame in alternating directions of one connection
        *(Entry(2.0, "d#1", d, same) for d in (SENT, RECEIVED) * 4),
        # the same words, lengths that differ
        *(Entry(3.0, "e#1", RECEIVED, "x" * n) for n in range(10, 16)),
        # frames that differ in their type only
        *(
            Entry(4.0, "f#1", SENT, json.dumps({"type": t, "messageId": "1"}))
            for t in ("update", "delete", "remove", "patch!", "insert", "append")
        ),
    ]
    assert tr.collapse(entries, keep_last=0) == entries


def test_a_different_frame_or_a_note_ends_a_run() -> None:
    def run(n: int, conn: str = "a#1") -> list[Entry]:
        return [Entry(0.0, conn, SENT, flood_frame(i)) for i in range(n)]

    odd = Entry(0.0, "a#1", SENT, '{"type": "delete", "messageId": "x"}')
    note = Entry(0.0, "a#1", NOTE, "close 1000")
    other = Entry(0.0, "b#1", RECEIVED, "an event on another connection")
    for breaker, ends in ((odd, True), (note, True), (other, False)):
        entries = [*run(10), breaker, *run(10)]
        markers = [e for e in tr.collapse(entries, keep_last=0) if e.direction == ELIDED]
        if ends:
            assert [m.hidden for m in markers] == [6, 6], breaker
        else:
            assert [m.hidden for m in markers] == [16], breaker


def test_the_last_entries_and_every_note_survive_a_flood() -> None:
    transcript = Transcript(redact.redact)
    notes = []
    for i in range(FLOOD):
        if i % 100 == 0:
            notes.append(f"note {i}: conn#{i} handshake accepted: HTTP 101")
            transcript.log("harness", NOTE, notes[-1])
        transcript.log("member#1", SENT, flood_frame(i))
    last = [e.text for e in transcript.entries[-tr.KEEP_LAST :]]
    shown = transcript.as_list()
    assert [e["text"] for e in shown[-tr.KEEP_LAST :]] == last
    assert [e["text"] for e in shown if e["dir"] == NOTE] == notes


# --- the hard cap ---------------------------------------------------------------------------


def test_the_cap_holds_for_5000_distinct_1_kb_frames() -> None:
    rng = random.Random(5000)
    transcript = Transcript(redact.redact)
    notes = []
    for i in range(5000):
        if i % 250 == 0:
            notes.append(f"handshake accepted: HTTP 101 (conn#{i})")
            transcript.log(f"conn#{i}", NOTE, notes[-1])
        conn, direction = ("a#1", SENT) if i % 2 else ("b#1", RECEIVED)
        transcript.log(conn, direction, distinct_text(rng, 1024))
    last = [(e.conn, e.text) for e in transcript.entries[-tr.KEEP_LAST :]]
    rendered = transcript.render()
    shown = transcript.as_list()
    assert len(rendered) <= tr.MAX_CHARS
    assert len(shown) <= tr.MAX_LINES
    assert sum(len(str(e["text"])) for e in shown) <= tr.MAX_CHARS
    assert [(e["conn"], e["text"]) for e in shown[-tr.KEEP_LAST :]] == last
    assert [e["text"] for e in shown if e["dir"] == NOTE] == notes
    gaps = [str(e["text"]) for e in shown if e["dir"] == ELIDED]
    assert gaps and all("entries left out (" in g for g in gaps)
    assert "a#1" in " ".join(gaps) and "b#1" in " ".join(gaps)  # what was left out
    assert logged(shown) == 5000 + len(notes)
    assert shown[0]["text"] == notes[0]  # the start is kept too


def test_the_cap_holds_when_notes_alone_break_it() -> None:
    transcript = Transcript(redact.redact)
    for i in range(3000):
        transcript.log(f"cycle#{i}", NOTE, f"handshake accepted: HTTP 101; {'n' * 80} {i}")
    last = [e.text for e in transcript.entries[-tr.KEEP_LAST :]]
    shown = transcript.as_list()
    assert len(transcript.render()) <= tr.MAX_CHARS
    assert [e["text"] for e in shown[-tr.KEEP_LAST :]] == last
    assert logged(shown) == 3000


def test_the_line_cap_holds() -> None:
    transcript = Transcript(redact.redact, limit=100)
    for i in range(500):
        transcript.log("a#1", SENT, f"frame {string.ascii_letters[i % 52] * (i % 7 + 1)} {i}")
    shown = transcript.as_list()
    assert len(shown) <= 100
    assert logged(shown) == 500


def test_compacting_again_keeps_the_counts() -> None:
    transcript = Transcript(redact.redact)
    for i in range(FLOOD):
        transcript.log("member#1", SENT, flood_frame(i))
        transcript.log("watcher#1", RECEIVED, distinct_text(random.Random(i), 300))
    once = transcript.as_list()
    twice = tr.compact_list(once, max_chars=5_000, keep_last=5)
    assert logged(once) == logged(twice) == 2 * FLOOD
    assert len(tr.render(tr.Entry.from_dict(e) for e in twice)) <= 5_000
    assert twice[-5:] == once[-5:]


def test_memory_stays_bounded_in_a_long_flood() -> None:
    transcript = Transcript(redact.redact)
    total = tr.GUARD_ENTRIES + 5000
    for i in range(total):
        transcript.log("member#1", SENT, f"ping {i}")
    assert len(transcript.entries) < tr.GUARD_ENTRIES
    shown = transcript.as_list()
    assert logged(shown) == total
    assert shown[-1]["text"] == f"ping {total - 1}"


# --- secrets and failures -----------------------------------------------------------------------


def test_a_registered_token_never_shows_even_across_the_cut() -> None:
    token = "tok-" + secrets.token_hex(24)
    redact.register(token)
    halves = (token[: len(token) // 2], token[len(token) // 2 :])
    transcript = Transcript(redact.redact, max_chars=10**9, limit=10**6)
    for before in range(tr.FRAME_LIMIT - len(token) - 2, tr.FRAME_LIMIT + 2):
        transcript.log("member#1", RECEIVED, "x" * before + token + "y" * 3000)
    shown = json.dumps(transcript.as_list(), ensure_ascii=False) + transcript.render()
    assert token not in shown
    assert not any(half in shown for half in halves)


def test_a_schema_violation_keeps_its_pointer_and_the_frame_its_length() -> None:
    """The failure names the pointer; the transcript's last entry says the frame's full length."""
    target = parse(
        {
            "url": "ws://127.0.0.1:9/ws/chat/{host}/{room}",
            "accounts": {
                "host": {"username": "a", "token": "t-a"},
                "member": {"username": "b", "token": "t-b"},
            },
            "rooms": {"main": "g"},
        },
        env={},
    )
    chat = Chat(target)
    frame = {
        "type": "chat_message",
        "action": "new",
        "id": str(uuid.uuid4()),
        "user": "bob",
        "user_id": str(uuid.uuid4()),
        "body": "z" * 70_000,
        "created": "yesterday",
        "edited": False,
        "updated": "2026-11-29T18:00:00Z",
    }
    data = json.dumps(frame)
    chat.transcript.log("member#1", RECEIVED, data)
    failure = judge_server_frame(data).violation
    assert failure is not None
    assert "/created" in failure.actual
    assert f"({len(json.dumps(frame, separators=(',', ':'))):,} characters)" in failure.actual
    assert chat.transcript.as_list()[-1]["text"].endswith(f"({len(data):,} characters in all)")


@pytest.mark.parametrize("text", ["", "plain", "0123456789abcdef", "2026-11-29T18:00:00.123Z"])
def test_shape_masks_numbers_and_hex_only(text: str) -> None:
    assert tr.shape(text) == tr.shape(text.translate(str.maketrans("0123456789", "9876543210")))
    assert tr.shape(text + "!") != tr.shape(text + "?")
