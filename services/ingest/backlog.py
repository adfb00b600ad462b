"""Bulk loads wait for the pipeline, so that live events stay live (issue 8).

The ingest accepts a batch faster than identity files it (README "Benchmarks"): left alone, a bulk
load builds a backlog in the log, and a chat message posted meanwhile waits behind all of it
before an agent's stream shows it (a p99 of 48.7 s under 200,000 batched events). So a request of
`bulk_events` events or more waits, after its body is read and before it is validated, while the
events accepted and not yet projected, plus those of bulk requests let in and not yet published,
are more than `limit`; smaller requests (a message, a call, a provider's webhook) never wait. A
live event then reaches the agent behind about `limit` events and the bulk requests in flight:
one per ingest process that let one in at the limit (with N replicas, up to N).

Bulk requests are let in one at a time (a lock held while a request reads the backlog and waits,
not while it is validated and published), and the ones let in count as in flight until their
publish returned, so several clients cannot all pass on one reading, and validation and publish
still run side by side.

Nothing is lost, and bulk requests are refused only while the pipeline moves and stays behind:
- a group that is behind and committed nothing for `stall_s` (a consumer stopped, crashed, or
  never started) is not waited for: bulk requests pass at once until it moves again, since the log
  is where events wait for consumers that are down (the stall is timed from the first reading
  that saw the group, so after an ingest restart the first bulk request waits it once);
- a request that waited `max_wait_s` in all (the bulk requests ahead of it included) is answered
  429 `pipeline_behind` with Retry-After; the default, 10 s, is under the Segment libraries' 15 s
  request timeout, so they get the answer and retry rather than time out;
- a reading that fails or takes over a second (the log unreachable) lets the request through, and
  none is tried for the next 5 s: the publish then answers as it always did (503 within its
  bounded time when the log cannot acknowledge, RELIABILITY F01).

The readings come from the log's own offsets (`EventLog.end_offsets` and `committed`): the SQLite
log's tables when embedded, Kafka's consumer-group offsets when distributed (the faust workers
commit under their stage's name), so both modes wait the same way.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from fastapi import FastAPI

from kernel.api_errors import ApiError
from kernel.filings import FILING_STAGE
from kernel.ports import FILINGS_TOPIC, TOUCHPOINTS_TOPIC, EventLog
from kernel.settings import IngestSettings
from kernel.telemetry import telemetry_of

logger = logging.getLogger(__name__)

POLL_S = 0.05
READ_TIMEOUT_S = 1.0
UNREADABLE_PAUSE_S = 5.0


@dataclass(frozen=True)
class Reading:
    """`waiting`: events accepted and not yet projected (the filing stage's lag plus the largest
    projection lag); per group, `done`: every offset it has committed, summed (it moves while the
    group works), and `behind`: the groups with something left to process."""

    waiting: int
    done: Mapping[str, int] = field(default_factory=dict)
    behind: frozenset[str] = frozenset()


class LogBacklog:
    """The pipeline's backlog from the log's offsets: the filing stage's lag on `touchpoints`
    plus the largest lag of the projection groups on `filings` (an event is on the agent's
    screen once both passed it)."""

    def __init__(self, log: EventLog, projections: Sequence[str]) -> None:
        self.log, self.projections = log, tuple(projections)

    def __call__(self) -> Reading:
        lags, done = {}, {}
        for topic, groups in (
            (TOUCHPOINTS_TOPIC, (FILING_STAGE,)),
            (FILINGS_TOPIC, self.projections),
        ):
            if not groups:
                continue
            ends = self.log.end_offsets(topic)
            for group in groups:
                committed = self.log.committed(topic, group)
                lags[group] = _lag(ends, committed)
                done[group] = sum(committed.values())
        projected = max((lags[g] for g in self.projections), default=0)
        behind = frozenset(g for g, lag in lags.items() if lag)
        return Reading(lags[FILING_STAGE] + projected, done, behind)


def _lag(ends: dict[int, int], committed: dict[int, int]) -> int:
    return sum(max(0, end - committed.get(part, 0)) for part, end in ends.items())


class BacklogGate:
    """Holds bulk requests while the pipeline is behind (module docstring)."""

    def __init__(
        self,
        read: Callable[[], Reading],
        settings: IngestSettings,
        *,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        poll_s: float = POLL_S,
    ) -> None:
        self.read, self.now, self.sleep, self.poll_s = read, now, sleep, poll_s
        self.limit = settings.backlog_limit
        self.bulk_events = settings.backlog_bulk_events
        self.max_wait_s = settings.backlog_max_wait_s
        self.stall_s = settings.backlog_stall_s
        self.in_flight = 0  # events of bulk requests let in and not yet published
        self._lock: asyncio.Lock | None = None
        self._done: dict[str, int] = {}
        self._moved: dict[str, float] = {}  # when each group's committed offsets last moved
        self._stalled: frozenset[str] = frozenset()
        self._unreadable_until = 0.0  # no reading is tried before this (`_reading`)

    def applies(self, events: int) -> bool:
        return self.limit > 0 and events >= self.bulk_events

    @asynccontextmanager
    async def admitted(self, events: int, app: FastAPI | None = None) -> AsyncIterator[None]:
        """Wait for the pipeline when a request of `events` events is bulk; its events count as
        in flight until the block (its validation and publish) ends."""
        if not self.applies(events):
            yield
            return
        if self._lock is None:  # made on the app's event loop, at first use
            self._lock = asyncio.Lock()
        started = self.now()
        try:  # the bulk requests ahead of this one count in its wait too
            await asyncio.wait_for(self._lock.acquire(), self.max_wait_s)
        except TimeoutError:
            raise self._behind(None) from None
        try:
            waited, reading = await self._wait(started)
            self.in_flight += events
        finally:
            self._lock.release()
        if app is not None:
            telemetry = telemetry_of(app)
            telemetry.observe("cem_ingest_backlog_wait_seconds", waited)
            if reading is None:
                telemetry.inc("cem_ingest_backlog_unread_total")
            else:
                telemetry.set("cem_ingest_backlog_events", reading.waiting)
        try:
            yield
        finally:
            self.in_flight -= events

    async def _wait(self, started: float) -> tuple[float, Reading | None]:
        """Seconds waited since `started` and the reading that let the request in (None: none
        could be taken); ApiError 429 once `max_wait_s` passed with the pipeline still behind."""
        while True:
            reading = await self._reading()
            at = self.now()
            if reading is None:
                return at - started, None
            stalled = self._stalled_groups(reading, at)
            if reading.waiting + self.in_flight <= self.limit or stalled:
                return at - started, reading
            if at - started >= self.max_wait_s:
                raise self._behind(reading.waiting + self.in_flight)
            await self.sleep(self.poll_s)

    def _behind(self, waiting: int | None) -> ApiError:
        """The 429 of a request that waited `max_wait_s` (`waiting`: the backlog it last read;
        None: it was still behind other bulk requests)."""
        retry = max(1, math.ceil((waiting or self.limit) / max(self.limit, 1)))
        what = (
            f"{waiting} accepted events are still being processed"
            if waiting is not None
            else "other bulk requests are still waiting for the events before them"
        )
        return ApiError(
            429,
            "pipeline_behind",
            f"{what} (this platform takes bulk requests while at most {self.limit} events are);"
            f" retry in {retry} s, or send fewer than {self.bulk_events} events per request",
            headers={"Retry-After": str(retry)},
        )

    async def _reading(self) -> Reading | None:
        """The backlog now, or None when it cannot be read in `READ_TIMEOUT_S`; after a failure
        none is tried for `UNREADABLE_PAUSE_S`, so that a log that is down (whose every call waits
        for its own timeout) delays no request by more than one short attempt."""
        if self.now() < self._unreadable_until:
            return None
        try:
            with anyio.fail_after(READ_TIMEOUT_S):
                reading = await anyio.to_thread.run_sync(self.read, abandon_on_cancel=True)
        except Exception as exc:  # the gate never makes the ingest less available than before
            if not self._unreadable_until:
                why = str(exc) or f"no answer within {READ_TIMEOUT_S:g} s"
                logger.warning(
                    "ingest: the pipeline's backlog cannot be read (%s); not waiting", why
                )
            self._unreadable_until = self.now() + UNREADABLE_PAUSE_S
            return None
        self._unreadable_until = 0.0
        return reading

    def _stalled_groups(self, reading: Reading, at: float) -> frozenset[str]:
        """The groups behind that committed nothing for `stall_s` (logged when that changes)."""
        for group, done in reading.done.items():
            if self._done.get(group) != done:
                self._done[group], self._moved[group] = done, at
        stalled = frozenset(
            g for g in reading.behind if at - self._moved.get(g, at) >= self.stall_s
        )
        if stalled != self._stalled:
            if stalled:
                logger.warning(
                    "ingest: %s committed nothing for %.0f s with %d events waiting; bulk"
                    " requests are accepted without waiting until it moves",
                    " and ".join(sorted(stalled)),
                    self.stall_s,
                    reading.waiting,
                )
            else:
                logger.info("ingest: the pipeline moves again; bulk requests wait for it")
            self._stalled = stalled
        return stalled


def gate_of(app: FastAPI) -> BacklogGate | None:
    """The app's gate (`app.state.backlog_gate`), when its composition root set one."""
    return getattr(app.state, "backlog_gate", None)


@asynccontextmanager
async def admitted(app: FastAPI, events: int) -> AsyncIterator[None]:
    """`BacklogGate.admitted` of the app's gate; nothing to wait for without one."""
    gate = gate_of(app)
    if gate is None:
        yield
        return
    async with gate.admitted(events, app):
        yield
