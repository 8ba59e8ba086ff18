"""Delivery under load: each load fault shows its defect under the burst or the lag, the correct
server shows none, and no load fault changes anything for a connection that is not under load.

The burst is the harness's shape, smaller: 10 senders of 50 messages (bodies of 200 characters)
at once, 5 receivers, in one room. The lag: a reader with a 4 KiB receive buffer stops reading
while about 2 MB of events are sent, then reads again.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from refserver_support import TIMEOUT, burst, client, lagging_reader, run

from reference_server.demo import demo_config
from reference_server.runner import ServerThread

SENDERS, MESSAGES = 10, 50
Received = list[list[tuple[int, int, str]]]


def lost(got: Received) -> int:
    """Events of the burst missing at the receiver that missed most."""
    return max(SENDERS * MESSAGES - len({eid for _, _, eid in events}) for events in got)


def duplicated(got: Received) -> int:
    """Events written twice to one receiver, summed over the receivers."""
    return sum(sum(n - 1 for n in Counter(eid for *_, eid in events).values()) for events in got)


def inversions(got: Received) -> int:
    """Pairs of one sender's consecutive events a receiver got out of the order sent."""
    count = 0
    for events in got:
        for who in range(SENDERS):
            numbers = [number for sender, number, _ in events if sender == who]
            count += sum(1 for a, b in itertools.pairwise(numbers) if b < a)
    return count


def burst_on(faults: frozenset[str]) -> Received:
    with ServerThread(demo_config(database=":memory:", faults=faults)) as srv:
        got = run(burst([srv.url_template], senders=SENDERS, messages=MESSAGES), 20 * TIMEOUT)
    srv.raise_errors()
    return got


def lag_on(faults: frozenset[str]) -> tuple[int, int]:
    with ServerThread(demo_config(database=":memory:", faults=faults)) as srv:
        url = srv.url_template
        sent_got = run(lagging_reader(url, url), 20 * TIMEOUT)
    srv.raise_errors()
    return sent_got


@pytest.fixture(scope="module")
def clean_burst() -> Received:
    return burst_on(frozenset())


def test_the_correct_server_delivers_the_whole_burst_once_and_in_order(
    clean_burst: Received,
) -> None:
    assert len(clean_burst) == 5
    assert (lost(clean_burst), duplicated(clean_burst), inversions(clean_burst)) == (0, 0, 0)


def test_the_correct_server_keeps_every_event_for_a_reader_that_lags() -> None:
    sent, got = lag_on(frozenset())
    assert sent > 2500
    assert got == sent


def test_drop_when_busy_loses_events_of_a_burst_silently() -> None:
    got = burst_on(frozenset({"drop-when-busy"}))  # every connection stayed open: marks came
    assert lost(got) > 0
    assert (duplicated(got), inversions(got)) == (0, 0)


def test_duplicate_under_load_writes_events_of_a_burst_twice() -> None:
    got = burst_on(frozenset({"duplicate-under-load"}))
    assert duplicated(got) > 0
    assert (lost(got), inversions(got)) == (0, 0)


def test_reorder_under_load_breaks_one_senders_order_and_loses_nothing() -> None:
    got = burst_on(frozenset({"reorder-under-load"}))
    assert inversions(got) > 0
    assert duplicated(got) == 0


def test_skip_lagging_reader_skips_events_of_a_reader_that_lags() -> None:
    sent, got = lag_on(frozenset({"skip-lagging-reader"}))
    assert got < sent


LOAD_FAULTS = ("drop-when-busy", "duplicate-under-load", "reorder-under-load",
               "skip-lagging-reader")  # fmt: skip


@pytest.fixture(params=LOAD_FAULTS)
def load_fault_server(
    request: pytest.FixtureRequest, make_server: Callable[..., ServerThread]
) -> Iterator[ServerThread]:
    yield make_server(faults=frozenset({request.param}))


def test_a_load_fault_changes_nothing_for_a_connection_not_under_load(
    load_fault_server: ServerThread,
) -> None:
    """A conversation at a chat's pace (fewer than 50 events a second to each connection),
    each message waiting for its echo: every event comes, in order, once, and none is late
    (31 round trips held 200 ms each would overrun the bound)."""

    async def scenario() -> list[str]:
        url = load_fault_server.url_template
        async with client(url, "bob") as bob, client(url, "carol") as carol:
            for i in range(30):
                await bob.say(f"slow-{i}")
            created = await bob.say("edit me")
            await bob.send({"type": "update", "messageId": created["id"], "message": "edited"})
            await bob.expect(lambda f: f.get("action") == "update")
            seen = await carol.until(lambda f: f.get("action") == "update")
            return [f["body"] for f in seen if f.get("action") == "new"]

    assert run(scenario(), timeout=TIMEOUT) == [*(f"slow-{i}" for i in range(30)), "edit me"]
