"""What the endpoint looks like (harness/core/diagnosis.py): one line for a run against something
that is plainly not a chat endpoint, never for a conformant server."""

from __future__ import annotations

from collections import Counter

import pytest

from harness.catalogue import load as load_catalogue
from harness.core.diagnosis import Traffic, diagnose, total
from harness.core.results import TestRecord, aggregate


def test_an_echo_server_is_named() -> None:
    line = diagnose(Traffic(accepted=3, sent=10, received=10, echoed=10))
    assert line is not None
    assert line.startswith("answers every frame with the frame itself (10 of 10)")


def test_a_server_that_never_sends_is_named() -> None:
    line = diagnose(Traffic(accepted=4, sent=7))
    assert line is not None
    assert line.startswith("accepts connections but never sends a frame (7 frames sent")


def test_a_server_that_refuses_everything_is_named_with_its_statuses() -> None:
    line = diagnose(Traffic(refused=Counter({"HTTP 404": 9, "HTTP 403": 1})))
    assert line is not None
    assert line.startswith("refuses every connection (HTTP 404 x9, HTTP 403 x1)")


def test_a_server_that_sends_no_chat_frame_is_named_with_its_first_frame() -> None:
    line = diagnose(Traffic(accepted=1, sent=2, received=3, first_other='{"hello": 1}'))
    assert line is not None
    assert line.startswith("sends no chat frame (3 frames")
    assert '{"hello": 1}' in line


@pytest.mark.parametrize(
    "traffic",
    [
        Traffic(),  # nothing went over the wire
        Traffic(accepted=5, sent=9, received=12, echoed=0, chat_frames=12),  # a chat server
        Traffic(accepted=5, sent=9, received=12, echoed=3, chat_frames=9),  # echoes some frames
        Traffic(accepted=1, refused=Counter({"HTTP 403": 8}), sent=1, received=1, chat_frames=1),
        Traffic(accepted=2),  # connected, sent nothing: no evidence either way
    ],
    ids=["nothing", "chat", "some-echoes", "refuses-some", "no-frames-sent"],
)
def test_a_chat_server_has_no_diagnosis(traffic: Traffic) -> None:
    assert diagnose(traffic) is None


def test_traffic_round_trips_and_sums() -> None:
    a = Traffic(accepted=1, refused=Counter({"HTTP 404": 2}), sent=3, received=4, echoed=1)
    b = Traffic(accepted=2, sent=1, received=1, chat_frames=1, first_other="x")
    assert Traffic.from_dict(a.as_dict()) == a
    summed = total([a, b])
    assert (summed.accepted, summed.sent, summed.received, summed.echoed) == (3, 4, 5, 1)
    assert summed.refused == Counter({"HTTP 404": 2}) and summed.first_other == "x"
    assert Traffic.from_dict({"accepted": "many", "refused": [1]}) == Traffic()


def test_the_run_shows_the_diagnosis_beside_a_failure_only() -> None:
    echo = Traffic(accepted=1, sent=1, received=1, echoed=1).as_dict()
    failed = TestRecord(
        "t::a",
        ("CONN-001",),
        "failed",
        failed_requirements=("CONN-001",),
        kind="wrong answer",
        expected="an event",
        actual="an echo",
        traffic=echo,
    )
    result = aggregate([failed], catalogue=load_catalogue())
    assert result.verdict_word == "NON-CONFORMANT"
    assert result.reason is not None and result.reason.startswith("answers every frame")
    assert result.as_json()["diagnosis"] == result.reason
