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


def gate(readings: Readings, clock: Clock, settings: IngestSettings = SETTINGS) -> BacklogGate:
    return BacklogGate(readings, settings, now=clock.now, sleep=clock.sleep, poll_s=0.05)


async def enter(gate: BacklogGate, events: int) -> None:
    async with gate.admitted(events):
        pass


def test_a_request_under_the_bulk_size_never_reads_the_backlog() -> None:
    clock, readings = Clock(), Readings([Reading(waiting=10**6, done=0)])
    asyncio.run(enter(gate(readings, clock), 19))
    assert (readings.taken, clock.at) == (0, 0.0)


def test_a_bulk_request_waits_while_the_pipeline_is_behind_and_moving() -> None:
    clock = Clock()
    readings = Readings([Reading(500, 0), Reading(300, 200), Reading(150, 350), Reading(90, 410)])
    asyncio.run(enter(gate(readings, clock), 20))
    assert readings.taken == 4
    assert clock.at == pytest.approx(0.15)  # three polls waited, the fourth reading let it in


def test_a_limit_of_zero_turns_the_gate_off() -> None:
    clock, readings = Clock(), Readings([Reading(10**6, 0)])
    off = IngestSettings(backlog_limit=0)
    asyncio.run(enter(gate(readings, clock, off), 1000))
    assert readings.taken == 0


def test_a_pipeline_that_does_not_move_is_not_waited_for_once_stalled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, readings = Clock(), Readings([Reading(5_000, 7)])
    the_gate = gate(readings, clock)
    with caplog.at_level(logging.WARNING, logger="services.ingest.backlog"):
        asyncio.run(enter(the_gate, 500))
    stalled = clock.at
    assert stalled == pytest.approx(5.0, abs=0.06)  # the stall, once (polled every 0.05 s)
    assert "committed nothing for 5 s with 5000 events waiting" in caplog.text
    asyncio.run(enter(the_gate, 500))  # while it stays stalled, at once
    assert clock.at == stalled
    # It moves again: bulk requests wait for it again.
    readings.left = [Reading(5_000, 8), Reading(5_000, 9), Reading(50, 10)]
    asyncio.run(enter(the_gate, 500))
    assert clock.at - stalled == pytest.approx(0.1)


def test_a_pipeline_that_moves_but_never_catches_up_gets_a_429_with_retry_after() -> None:
    clock = Clock()
    done = iter(range(10**6))

    def moving() -> Reading:
        return Reading(waiting=450, done=next(done))

    with pytest.raises(ApiError) as refused:
        asyncio.run(enter(gate(moving, clock), 500))  # type: ignore[arg-type]
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
    the_gate = gate(unreachable, clock)  # type: ignore[arg-type]
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
        answer.wait(5)
        return Reading(0, 0)

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="services.ingest.backlog"):
        asyncio.run(enter(BacklogGate(silent, SETTINGS), 500))
    answer.set()
    assert time.monotonic() - started < 2
    assert "cannot be read (no answer within 0.05 s); not waiting" in caplog.text


def test_bulk_requests_pass_one_at_a_time_each_on_a_reading_taken_after_the_one_before() -> None:
    """Two bulk requests both let in by one reading would both publish over the limit."""
    order: list[str] = []
    readings = Readings([Reading(0, 0)])

    async def request(name: str, the_gate: BacklogGate) -> None:
        async with the_gate.admitted(500):
            order.append(f"{name} in after reading {readings.taken}")
            await asyncio.sleep(0.01)  # its validation and publish
            order.append(f"{name} out")

    async def both() -> None:
        the_gate = BacklogGate(readings, SETTINGS)
        await asyncio.gather(request("a", the_gate), request("b", the_gate), enter(the_gate, 1))

    asyncio.run(both())
    assert order == ["a in after reading 1", "a out", "b in after reading 2", "b out"]


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
    assert backlog() == Reading(waiting=3, done=4 + 3)
    log.append(TOUCHPOINTS_TOPIC, records("k4"))
    assert backlog().waiting == 4
    assert LogBacklog(log, [])() == Reading(waiting=1, done=4)


def records(*keys: str) -> list[Record]:
    return [Record(k.encode(), b"{}") for k in keys]


def test_a_request_behind_other_bulk_requests_for_the_longest_wait_gets_a_429() -> None:
    quick = IngestSettings(backlog_limit=100, backlog_bulk_events=20, backlog_max_wait_s=0.05)
    the_gate = BacklogGate(Readings([Reading(0, 0)]), quick)

    async def slow_first() -> None:
        async with the_gate.admitted(500):
            await asyncio.sleep(0.3)  # a publish that takes its time

    async def both() -> BaseException | None:
        first = asyncio.create_task(slow_first())
        await asyncio.sleep(0.01)
        try:
            await enter(the_gate, 500)
        except ApiError as refused:
            return refused
        finally:
            await first
        return None

    refused = asyncio.run(both())
    assert isinstance(refused, ApiError) and refused.status == 429
    assert "other bulk requests are still waiting" in refused.message
    asyncio.run(enter(the_gate, 500))  # the turn was given back
