"""The delivery judge (harness/core/delivery.py): records in, verdicts and figures out, no I/O."""

from __future__ import annotations

import pytest

from harness.core.delivery import Receiver, Sent, judge_burst, judge_lag, percentile


def burst(senders: int = 3, messages: int = 4) -> list[Sent]:
    return [Sent(s, q, s * 0.001 + q * 0.01) for s in range(senders) for q in range(messages)]


def receiver(name: str, sent: list[Sent], *, delay: float = 0.005, **kw: object) -> Receiver:
    """A receiver that got every message once, in order, ``delay`` after it was sent."""
    arrivals = sorted(((s.sender, s.seq, s.at + delay) for s in sent), key=lambda a: a[2])
    return Receiver(name, arrivals=arrivals, **kw)  # type: ignore[arg-type]


def test_every_message_everywhere_passes_with_figures() -> None:
    sent = burst()
    rs = [receiver("r1", sent), receiver("r2", sent, delay=0.010, where="node 2 (h:2)")]
    judged = judge_burst(sent, rs)
    assert judged.failures == {}
    fig = judged.figures
    assert (fig["kind"], fig["messages"], fig["accepted"], fig["deliveries"]) == (
        "burst",
        12,
        12,
        24,
    )
    assert fig["p50_ms"] == pytest.approx(5.0) and fig["max_ms"] == pytest.approx(10.0)
    lines = {r["name"]: r for r in fig["receivers"]}
    assert lines["r2"]["where"] == "node 2 (h:2)"
    assert lines["r1"]["delivered"] == lines["r1"]["expected"] == 12
    assert lines["r1"]["curve"][-1][1] == 12  # the curve ends at what was delivered
    assert "12 messages from 3 senders to 2 connections: 24 deliveries" in judged.summary


def test_a_missing_event_on_an_open_connection_fails_load_001_naming_it() -> None:
    sent = burst()
    lossy = receiver("lossy", sent)
    lossy.arrivals = [a for a in lossy.arrivals if (a[0], a[1]) != (1, 2)]
    judged = judge_burst(sent, [receiver("ok", sent), lossy])
    (line,) = judged.failures["LOAD-001"]
    assert "lossy stayed open and missed 1 of 12 events: sender 2 message 3" in line
    assert "LOAD-003" not in judged.failures
    assert {r["name"]: r["missing"] for r in judged.figures["receivers"]} == {"ok": 0, "lossy": 1}


def test_a_duplicate_fails_load_001() -> None:
    sent = burst()
    doubled = receiver("doubled", sent)
    doubled.arrivals.append((0, 1, 1.0))
    judged = judge_burst(sent, [doubled])
    assert any("more than once: sender 1 message 2" in x for x in judged.failures["LOAD-001"])
    assert judged.figures["receivers"][0]["duplicates"] == 1


def test_one_senders_events_out_of_order_fail_load_003_only() -> None:
    sent = burst()
    swapped = receiver("swapped", sent)
    i = next(i for i, a in enumerate(swapped.arrivals) if a[:2] == (2, 1))
    j = next(i for i, a in enumerate(swapped.arrivals) if a[:2] == (2, 2))
    swapped.arrivals[i], swapped.arrivals[j] = swapped.arrivals[j], swapped.arrivals[i]
    judged = judge_burst(sent, [swapped])
    assert list(judged.failures) == ["LOAD-003"]
    assert (
        "1 events after a later one of the same sender: sender 3 message 2"
        in (judged.failures["LOAD-003"][0])
    )


def test_different_senders_interleaved_in_any_order_is_fine() -> None:
    sent = burst()
    shuffled = receiver("r", sent)
    shuffled.arrivals.sort(key=lambda a: (-a[0], a[1]))  # sender 3 first, each in order
    assert judge_burst(sent, [shuffled]).failures == {}


def test_a_connection_closed_with_a_code_is_an_open_refusal_not_loss() -> None:
    sent = burst()
    closed = receiver("closed", sent, closed=(1013, "try again later"))
    closed.arrivals = closed.arrivals[:3]
    judged = judge_burst(sent, [receiver("ok", sent), closed])
    assert judged.failures == {}
    assert any("closed 1013 'try again later' during the burst" in n for n in judged.notes)


def test_accepted_without_an_error_yet_delivered_nowhere_is_loss() -> None:
    sent = burst()
    everyone = [receiver(f"r{i}", [s for s in sent if (s.sender, s.seq) != (0, 3)]) for i in (1, 2)]
    judged = judge_burst(sent, everyone)
    assert any(
        "sender 1: 1 of its 4 messages were accepted without an error, yet no connection" in x
        for x in judged.failures["LOAD-001"]
    )


def test_an_error_frame_explains_a_message_nobody_received() -> None:
    sent = burst()
    kept = [s for s in sent if (s.sender, s.seq) != (0, 3)]
    sender = receiver("sender#1", kept, sender=0, errors=["Slow down."])
    judged = judge_burst(sent, [sender, receiver("r", kept)])
    assert judged.failures == {}
    assert any(
        "1 error frames (an open refusal), the first 'Slow down.'" in n for n in judged.notes
    )


def test_frames_that_are_not_the_bursts_are_ignored() -> None:
    sent = burst(1, 2)
    r = receiver("r", sent)
    r.arrivals.append((7, 7, 9.0))  # not a message of this burst
    assert judge_burst(sent, [r]).failures == {}


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
    assert percentile([5.0], 99) == 5.0


def lag(sent: list[Sent], got: int, closed: tuple[int | None, str] | None = None) -> Receiver:
    return Receiver(
        "lagging#1", arrivals=[(s.sender, s.seq, 1.0) for s in sent[:got]], closed=closed
    )


def test_lagging_reader_that_got_everything_passes() -> None:
    sent = burst(2, 5)
    judged = judge_lag(sent, lag(sent, 10), lagged_s=1.2, sent_bytes=3 * 2**20)
    assert judged.failures == {}
    assert "10 events (3.0 MiB) sent while lagging#1 lagged 1.2 s: every one arrived" in (
        judged.summary
    )
    assert judged.figures["kind"] == "lag" and judged.figures["missing"] == 0


def test_lagging_reader_skipped_silently_fails_load_002() -> None:
    sent = burst(2, 5)
    judged = judge_lag(sent, lag(sent, 7), lagged_s=1.0, sent_bytes=2**20)
    assert "3 were skipped silently (the connection stayed open" in judged.failures["LOAD-002"][0]


def test_lagging_reader_closed_with_a_close_frame_passes() -> None:
    sent = burst(2, 5)
    judged = judge_lag(sent, lag(sent, 4, (1008, "too slow")), lagged_s=1.0, sent_bytes=2**20)
    assert judged.failures == {}
    assert "the server ended the lagging reader (close code 1008)" in judged.notes[0]


def test_lagging_reader_ended_without_a_close_frame_passes() -> None:
    # A heartbeat timeout (the reader could not answer pings while it did not read) or a TCP
    # close: the connection ended, so its client knows the stream broke and reconnects.
    sent = burst(2, 5)
    reader = Receiver(
        "lagging#1",
        arrivals=[(s.sender, s.seq, 1.0) for s in sent if s.seq < 2],
        closed=(None, ""),
    )
    judged = judge_lag(sent, reader, lagged_s=1.0, sent_bytes=2**20, ended_after_s=1.4)
    assert judged.failures == {}
    assert "the server ended the lagging reader after 1.4 s (no close frame)" in judged.notes[0]
    assert "it got 4 of them without a gap first, and 6 never arrived" in judged.notes[0]


def test_a_gap_then_later_events_fails_even_if_the_connection_ends_later() -> None:
    sent = burst(1, 6)
    arrivals = [(0, q, 1.0) for q in (0, 1, 4, 5)]
    reader = Receiver("lagging#1", arrivals=arrivals, closed=(None, ""))
    judged = judge_lag(sent, reader, lagged_s=1.0, sent_bytes=2**20)
    line = judged.failures["LOAD-002"][0]
    assert "2 were skipped silently (later events of the same sender arrived" in line
    assert "later the connection was lost without a close frame" in line
    assert "sender 1 message 3, sender 1 message 4" in line


def test_a_closed_reader_missing_only_the_tail_of_each_sender_passes() -> None:
    sent = burst(2, 4)
    arrivals = [(0, 0, 1.0), (1, 0, 1.0), (0, 1, 1.1)]  # no gap: prefixes of each sender
    reader = Receiver("lagging#1", arrivals=arrivals, closed=(1011, "keepalive ping timeout"))
    judged = judge_lag(sent, reader, lagged_s=1.0, sent_bytes=2**20)
    assert judged.failures == {}
    assert "(close code 1011)" in judged.notes[0]
