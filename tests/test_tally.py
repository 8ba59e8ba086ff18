"""harness.core.tally: the load mode's counting and verdict, without I/O."""

from __future__ import annotations

import pytest

from harness.core.tally import (
    SENDERS_PER_WORKER,
    Codec,
    Reservoir,
    Tally,
    Timeline,
    accepted_counts,
    judge,
    sender_name,
)


def test_codec_round_trips_and_ignores_other_bodies() -> None:
    codec = Codec("ld-1234abcd", 80)
    body = codec.body(100_003, 17, 1_700_000_000_123_456)
    assert len(body) == 80
    assert codec.parse(body) == (100_003, 17, 1_700_000_000_123_456)
    assert codec.parse("ld-other 1 2 3 xxxx") is None
    assert codec.parse(body.replace("ld-1234abcd", "ld-1234abce")) is None
    assert codec.parse(None) is None
    assert codec.parse(42) is None


def test_sender_names_say_worker_and_connection() -> None:
    assert sender_name(0) == "w1-c1"
    assert sender_name(SENDERS_PER_WORKER + 4) == "w2-c5"


def _tally(arrivals: list[tuple[int, int]], expect: dict[int, int]) -> Tally:
    tally = Tally("w1-c1", sender=0)
    for sender, seq in arrivals[: len(arrivals) // 2]:
        tally.arrive(sender, seq)
    tally.expect(expect)  # the master's word may come mid-stream
    for sender, seq in arrivals[len(arrivals) // 2 :]:
        tally.arrive(sender, seq)
    return tally


def test_a_complete_stream_leaves_nothing_outstanding() -> None:
    arrivals = [(s, q) for q in range(50) for s in (0, 1, 2)]
    tally = _tally(arrivals, {0: 50, 1: 50, 2: 50})
    assert tally.outstanding == 0
    line = tally.summary()
    assert (line["expected"], line["delivered"], line["missing"]) == (150, 150, 0)
    assert (line["duplicates"], line["out_of_order"]) == (0, 0)
    assert tally.past_gap == {}  # in order: nothing kept past the contiguous prefix


def test_loss_duplicates_and_disorder_are_counted_and_named() -> None:
    arrivals = [(0, 0), (0, 2), (0, 1), (0, 2), (1, 0), (1, 3), (1, 1)]
    tally = _tally(arrivals, {0: 3, 1: 4})
    line = tally.summary()
    assert line["expected"] == 7
    assert line["delivered"] == 6
    assert line["missing"] == 1
    assert line["missing_examples"] == ["w1-c2 message 3"]
    assert line["duplicates"] == 1
    assert line["out_of_order"] == 2  # (0, 1) after (0, 2); (1, 1) after (1, 3)
    assert tally.outstanding == 1


def test_messages_past_the_accepted_count_are_not_expected() -> None:
    tally = _tally([(0, 0), (0, 1), (0, 2)], {0: 2})
    assert tally.summary()["delivered"] == 2
    assert tally.outstanding == 0


def test_a_closed_connection_is_not_judged_for_loss() -> None:
    tally = _tally([(0, 0)], {0: 10})
    tally.closed = (1013, "overloaded")
    line = tally.summary()
    assert (line["expected"], line["missing"], line["closed"]) == (0, 0, "closed 1013 'overloaded'")
    verdict = judge([line])
    assert verdict.failures == {}
    assert verdict.judged == 0
    assert "the connection ended" in verdict.notes[0]


def test_a_connection_lost_without_a_close_frame_after_a_prefix_is_not_loss() -> None:
    # A heartbeat timeout: the client knows the stream broke.
    tally = _tally([(0, 0), (0, 1), (1, 0)], {0: 10, 1: 10})
    tally.closed = (None, "")
    line = tally.summary()
    assert line["skipped"] == 0
    assert judge([line]).failures == {}


def test_a_gap_then_later_events_is_loss_even_on_a_connection_that_ended() -> None:
    tally = _tally([(0, 0), (0, 3), (0, 4), (1, 0), (1, 2)], {0: 10, 1: 10})
    tally.closed = (None, "")
    line = tally.summary()
    assert line["skipped"] == 3  # sender 0: 1 and 2; sender 1: 1
    (failure,) = judge([line]).failures["loss"]
    assert "skipped 3 events silently (later events of the same sender arrived)" in failure
    assert "then was lost without a close frame" in failure


def test_accepted_counts_drop_closed_senders_and_refused_messages() -> None:
    senders = [
        {"sender": 0, "sent": 10, "errors": 2, "open": True},
        {"sender": 1, "sent": 10, "errors": 0, "open": False},
        {"sender": 2, "sent": 3, "errors": 5, "open": True},
    ]
    assert accepted_counts(senders) == {0: 8, 2: 0}


def test_judge_fails_each_kind_with_its_requirement() -> None:
    good = _tally([(0, q) for q in range(5)], {0: 5}).summary()
    lossy = _tally([(0, 0), (0, 1)], {0: 5}).summary() | {"name": "w1-c2"}
    doubled = _tally([(0, 0), (0, 0), (0, 1), (0, 2), (0, 3), (0, 4)], {0: 5}).summary()
    swapped = _tally([(0, 1), (0, 0), (0, 2), (0, 3), (0, 4)], {0: 5}).summary()
    assert judge([good]).failures == {}
    assert judge([good]).judged == 1
    verdict = judge([good, lossy, doubled, swapped])
    assert set(verdict.failures) == {"loss", "duplicates", "disorder"}
    assert "w1-c2 stayed open and missed 3 of 5 events" in verdict.failures["loss"][0]
    assert verdict.totals == {
        "expected": 20,
        "delivered": 17,
        "missing": 3,
        "duplicates": 1,
        "out_of_order": 1,
    }


def test_judge_bounds_its_lines() -> None:
    lossy = [_tally([], {0: 3}).summary() | {"name": f"w1-c{i}"} for i in range(100)]
    lines = judge(lossy, shown=5).failures["loss"]
    assert len(lines) == 6
    assert lines[-1].startswith("… and more")


def test_reservoir_is_exact_until_full_then_uniform_and_bounded() -> None:
    small = Reservoir(cap=100)
    for v in range(50):
        small.add(v)
    assert sorted(small.values) == list(range(50))
    big = Reservoir(cap=100, seed=1)
    for v in range(10_000):
        big.add(v)
    assert len(big.values) == 100
    assert big.seen == 10_000
    assert big.top == 9_999
    assert 2_000 < sum(big.values) / 100 < 8_000  # a spread sample, not the first 100


def test_reservoirs_merge_exactly_or_by_weight() -> None:
    a, b = Reservoir(cap=10), Reservoir(cap=10)
    for v in range(5):
        a.add(v)
        b.add(100 + v)
    merged, seen = Reservoir.merge([a.as_data(), b.as_data()])
    assert sorted(merged) == [0, 1, 2, 3, 4, 100, 101, 102, 103, 104]
    assert seen == 10
    heavy = Reservoir(cap=10)
    for v in range(1_000):
        heavy.add(1_000 + v)
    merged, seen = Reservoir.merge([a.as_data(), heavy.as_data()], cap=10)
    assert seen == 1_005
    assert len(merged) <= 10
    assert sum(1 for v in merged if v >= 1_000) >= 9  # weighted by what each saw


@pytest.mark.parametrize("width", [1.0, 2.0])
def test_timeline_merges_workers_per_interval(width: float) -> None:
    one, two = Timeline(100.0, width), Timeline(100.0, width)
    one.sent(100.2)
    one.delivered(100.5, 2_000)
    two.delivered(100.7, 4_000)
    two.delivered(103.1, 8_000)
    rows = Timeline.merge([one.as_data(), two.as_data()], width)
    assert rows[0]["t"] == 0.0
    assert rows[0]["sent_per_s"] == 1 / width
    assert rows[0]["delivered_per_s"] == 2 / width
    assert rows[0]["p50_ms"] == 2.0
    assert rows[0]["max_ms"] == 4.0
    assert rows[-1]["max_ms"] == 8.0


def test_judge_names_the_worst_connections_first() -> None:
    mild = _tally([(0, 0), (0, 1)], {0: 3}).summary() | {"name": "mild"}
    bad = _tally([], {0: 3}).summary() | {"name": "bad"}
    lines = judge([mild, bad]).failures["loss"]
    assert [line.split()[0] for line in lines] == ["bad", "mild"]
