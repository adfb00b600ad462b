"""Bulk requests wait while the pipeline is behind; live ones never do (services/ingest/backlog.py)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable

import pytest

from cem.adapters.memory_log import MemoryLog
from kernel.api_errors import ApiError
from kernel.filings import FILING_STAGE
from kernel.ports import FILINGS_TOPIC, TOUCHPOINTS_TOPIC, Record
from kernel.settings import IngestSettings
from services.ingest import backlog
from services.ingest.backlog import BacklogGate, LogBacklog, Reading

SETTINGS = IngestSettings(
    backlog_limit=100, backlog_bulk_events=20, backlog_max_wait_s=30, backlog_stall_s=5
)


def filing(waiting: int, done: int) -> Reading:
    """A reading of one group, `filing`, behind by `waiting` with `done` committed."""
    return Reading(waiting, {"filing": done}, frozenset({"filing"} if waiting else ()))


class Clock:
    """Monotonic seconds that move only when the gate sleeps."""

    def __init__(self) -> None:
        self.at = 0.0

    def now(self) -> float:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.at += seconds


class Readings:
    """The readings the gate is given in turn (the last one again once they run out)."""

    def __init__(self, readings: Iterable[Reading]) -> None:
        self.left, self.taken = list(readings), 0

    def __call__(self) -> Reading:
        self.taken += 1
        return self.left.pop(0) if len(self.left) > 1 else self.left[0]


class Moving:
    """A pipeline that commits something at every reading, `waiting` behind all along."""

    def __init__(self, waiting: int) -> None:
        self.waiting, self.done = waiting, 0

    def __call__(self) -> Reading:
        self.done += 1
        return filing(self.waiting, self.done)


def gate(readings: object, clock: Clock, settings: IngestSettings = SETTINGS) -> BacklogGate:
    return BacklogGate(readings, settings, now=clock.now, sleep=clock.sleep, poll_s=0.05)  # type: ignore[arg-type]


async def enter(gate: BacklogGate, events: int) -> None:
    async with gate.admitted(events):
        pass


def test_a_request_under_the_bulk_size_never_reads_the_backlog() -> None:
    clock, readings = Clock(), Readings([filing(10**6, 0)])
    asyncio.run(enter(gate(readings, clock), 19))
    assert (readings.taken, clock.at) == (0, 0.0)


def test_a_bulk_request_waits_while_the_pipeline_is_behind_and_moving() -> None:
    clock = Clock()
    readings = Readings([filing(500, 0), filing(300, 200), filing(150, 350), filing(90, 410)])
    asyncio.run(enter(gate(readings, clock), 20))
    assert readings.taken == 4
    assert clock.at == pytest.approx(0.15)  # three polls waited, the fourth reading let it in


def test_a_limit_of_zero_turns_the_gate_off() -> None:
    clock, readings = Clock(), Readings([filing(10**6, 0)])
    off = IngestSettings(backlog_limit=0)
    asyncio.run(enter(gate(readings, clock, off), 1000))
    assert readings.taken == 0


def test_a_pipeline_that_does_not_move_is_not_waited_for_once_stalled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, readings = Clock(), Readings([filing(5_000, 7)])
    the_gate = gate(readings, clock)
    with caplog.at_level(logging.WARNING, logger="services.ingest.backlog"):
        asyncio.run(enter(the_gate, 500))
    stalled = clock.at
    assert stalled == pytest.approx(5.0, abs=0.06)  # the stall, once (polled every 0.05 s)
    assert "filing committed nothing for 5 s with 5000 events waiting" in caplog.text
    asyncio.run(enter(the_gate, 500))  # while it stays stalled, at once
    assert clock.at == stalled
    # It moves again: bulk requests wait for it again.
    readings.left = [filing(5_000, 8), filing(5_000, 9), filing(50, 10)]
    asyncio.run(enter(the_gate, 500))
    assert clock.at - stalled == pytest.approx(0.1)


def test_one_group_that_stopped_is_not_waited_for_while_the_others_move(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The filing stage keeps filing live traffic; `satisfaction` stopped, so the backlog (its lag)
    would never drain: waiting for it would only end in a 429."""
    clock, moved = Clock(), iter(range(10**6))

    def one_stopped() -> Reading:
        done = {"filing": next(moved), "projections": 40, "satisfaction": 0}
        return Reading(3_000, done, frozenset({"filing", "satisfaction"}))

    with caplog.at_level(logging.WARNING, logger="services.ingest.backlog"):
        asyncio.run(enter(gate(one_stopped, clock), 500))
    assert clock.at == pytest.approx(5.0, abs=0.06)
    assert "satisfaction committed nothing for 5 s" in caplog.text
    assert "filing committed" not in caplog.text


def test_a_pipeline_that_moves_but_never_catches_up_gets_a_429_with_retry_after() -> None:
    clock = Clock()
    with pytest.raises(ApiError) as refused:
        asyncio.run(enter(gate(Moving(450), clock), 500))
    error = refused.value
    assert (error.status, error.code) == (429, "pipeline_behind")
    assert error.headers == {"Retry-After": "5"}  # 450 waiting, taken 100 at a time
    assert "450 accepted events are still being processed" in error.message
    assert "fewer than 20 events per request" in error.message
    assert clock.at == pytest.approx(30.0)


def test_a_reading_that_fails_lets_the_request_through_and_none_is_tried_for_a_while(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tried: list[float] = []

    def unreachable() -> Reading:
        tried.append(clock.at)
        raise ConnectionError("broker down")

    clock = Clock()
    the_gate = gate(unreachable, clock)
    with caplog.at_level(logging.WARNING, logger="services.ingest.backlog"):
        asyncio.run(enter(the_gate, 500))
        clock.at = 4.9
        asyncio.run(enter(the_gate, 500))  # within the pause: not tried
        clock.at = 5.1
        asyncio.run(enter(the_gate, 500))  # tried again, fails again: logged once in all
    assert tried == [0.0, 5.1]
    assert caplog.text.count("cannot be read (broker down); not waiting") == 1


def test_a_reading_that_does_not_answer_is_given_up_after_the_read_timeout(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A log that is down can take its own timeout per call (seconds each): the request must not
    wait for them, so that a 503 still comes in bounded time (RELIABILITY F01)."""
    monkeypatch.setattr(backlog, "READ_TIMEOUT_S", 0.05)
    answer = threading.Event()

    def silent() -> Reading:
        answer.wait(60)  # a gate that waited for it would take a minute, not a loaded second
        return filing(0, 0)

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="services.ingest.backlog"):
        asyncio.run(enter(BacklogGate(silent, SETTINGS), 500))
    answer.set()
    assert time.monotonic() - started < 30
    assert "cannot be read (no answer within 0.05 s); not waiting" in caplog.text


def test_a_bulk_request_let_in_counts_until_published_so_two_cannot_pass_on_one_reading() -> None:
    """Both read an empty backlog; the second also sees the first's 500 events in flight, and is
    let in once they are published (and the pipeline has them)."""
    order: list[str] = []
    pipeline = Moving(0)

    async def request(name: str, the_gate: BacklogGate) -> None:
        async with the_gate.admitted(500):
            order.append(f"{name} in")
            await asyncio.sleep(0.05)  # its validation and publish
            order.append(f"{name} out")

    async def both() -> None:
        the_gate = BacklogGate(pipeline, SETTINGS, poll_s=0.005)
        await asyncio.gather(request("a", the_gate), request("b", the_gate), enter(the_gate, 1))
        assert the_gate.in_flight == 0

    asyncio.run(both())
    assert order == ["a in", "a out", "b in", "b out"]


def test_bulk_requests_under_the_limit_are_validated_and_published_side_by_side() -> None:
    order: list[str] = []
    roomy = IngestSettings(backlog_limit=10_000, backlog_bulk_events=20)

    async def request(name: str, the_gate: BacklogGate, both_in: asyncio.Event) -> None:
        async with the_gate.admitted(500):
            order.append(f"{name} in")
            if len(order) == 2:
                both_in.set()
            # Inside until the other is in too (0.05 s was shorter than b's reading under load);
            # a gate that let one in at a time would time out here.
            await asyncio.wait_for(both_in.wait(), 20)
            order.append(f"{name} out")

    async def both() -> None:
        the_gate, both_in = BacklogGate(Moving(0), roomy), asyncio.Event()
        await asyncio.gather(request("a", the_gate, both_in), request("b", the_gate, both_in))

    asyncio.run(both())
    assert order[:2] == ["a in", "b in"] and sorted(order[2:]) == ["a out", "b out"]


def test_a_request_that_fails_inside_gives_its_place_back() -> None:
    async def failing(the_gate: BacklogGate) -> None:
        with pytest.raises(RuntimeError):
            async with the_gate.admitted(500):
                raise RuntimeError("the publish failed")
        assert the_gate.in_flight == 0
        await enter(the_gate, 500)  # let in at once: nothing behind, nothing in flight

    asyncio.run(failing(BacklogGate(Moving(0), SETTINGS)))


def test_a_request_behind_other_bulk_requests_for_the_longest_wait_gets_a_429(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quick = IngestSettings(backlog_limit=100, backlog_bulk_events=20, backlog_max_wait_s=0.2)
    monkeypatch.setattr(backlog, "READ_TIMEOUT_S", 60.0)
    reading, answer = threading.Event(), threading.Event()

    def slow() -> Reading:  # a reading that takes its time (under the read timeout)
        reading.set()
        answer.wait(60)  # until the second was answered (a 0.4 s sleep could end before it)
        return filing(0, 0)

    the_gate = BacklogGate(slow, quick)

    async def both() -> list[BaseException | None]:
        first = asyncio.create_task(enter(the_gate, 500))  # reads, holding the turn
        while not reading.is_set():
            await asyncio.sleep(0.01)
        second = asyncio.create_task(enter(the_gate, 500))  # waits for the turn
        await asyncio.gather(second, return_exceptions=True)
        answer.set()
        return await asyncio.gather(first, second, return_exceptions=True)

    first, second = asyncio.run(both())
    assert first is None  # let in: nothing behind
    assert isinstance(second, ApiError) and second.status == 429
    assert "other bulk requests are still waiting" in second.message


def test_the_backlog_is_the_filing_lag_plus_the_projection_furthest_behind() -> None:
    log = MemoryLog(partitions=2)
    log.append(TOUCHPOINTS_TOPIC, records("k0", "k1", "k2", "k3"))
    log.append(FILINGS_TOPIC, records("k0", "k1", "k2"))
    touch_ends = log.end_offsets(TOUCHPOINTS_TOPIC)
    filing_ends = log.end_offsets(FILINGS_TOPIC)
    log.commit(TOUCHPOINTS_TOPIC, FILING_STAGE, {p: end for p, end in touch_ends.items() if end})
    log.commit(FILINGS_TOPIC, "projections", {p: end for p, end in filing_ends.items() if end})
    backlog = LogBacklog(log, ["projections", "satisfaction"])
    # All filed; `satisfaction` committed nothing: the three filings are what it is behind.
    done = {FILING_STAGE: 4, "projections": 3, "satisfaction": 0}
    assert backlog() == Reading(3, done, frozenset({"satisfaction"}))
    log.append(TOUCHPOINTS_TOPIC, records("k4"))
    assert backlog().waiting == 4 and backlog().behind == {FILING_STAGE, "satisfaction"}
    assert LogBacklog(log, [])() == Reading(1, {FILING_STAGE: 4}, frozenset({FILING_STAGE}))


def records(*keys: str) -> list[Record]:
    return [Record(k.encode(), b"{}") for k in keys]
