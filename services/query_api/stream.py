"""Live customer streams: one poll of the warehouse's arrivals serves every open stream.

A `StreamHub` per app polls `stream_arrivals` after its watermark (every tenant, every customer:
one query per tick however many streams are open) and hands each arrival to the streams whose
customer filed it. Each stream then reads the timeline entries of what it was handed, so the
timeline table is read only for customers that have something new. Works the same on chdb and on
a ClickHouse server: the arrivals table is plain SQL, positions are the log's (arrivals.py).

Threading: everything here runs on the app's event loop; warehouse calls go to worker threads.
A poll (read, repeat check, dispatch, watermark moved) and a registration hold the hub's lock, so a
stream registered at watermark W catches up to W from the warehouse and receives everything after
W from the hub: no gap, no repeat.

An event arrives twice when its filing is redelivered (arrivals.py). Within one connection a
stream shows it once (`shown`); across a reconnection the client's cursor has passed the first
arrival, so the second is a repeat: the catch-up drops what arrived at or before the cursor, and
the hub what arrived at or before its watermark (which every stream it feeds has passed).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from kernel.ports import Warehouse
from kernel.wakeup import Wakeup
from services.projections.arrivals import (
    MAX_CATCH_UP,
    MAX_POLL,
    Arrival,
    Positions,
    advance,
    arrivals_between,
    earlier_arrivals,
    encode_positions,
    latest_positions,
    poll_arrivals,
)
from services.projections.repeat_contact_sql import flag_repeats
from services.projections.sql import read_entries
from services.projections.timeline import Language, TimelineEntry, worded
from services.query_api.header_watch import Derived, Key, derived_by_member, derived_of_customer

logger = logging.getLogger(__name__)

POLL_S = 0.2
WOKEN_GAP_S = 0.02
KEEP_ALIVE_S = 15.0
# How often an open stream asks whether its customer was erased meanwhile (one identity read).
ERASURE_CHECK_S = 3.0
# A browser's EventSource waits this long before reconnecting after a dropped connection.
RETRY_MS = 1000
# How often the hub reads what the headers of the open streams' customers read from the later
# stages (header_watch.py: one query for every stream), and tells a stream whose value changed.
HEADER_CHECK_S = 2.0
# How long `StreamHub.stop` waits for the reads still running in worker threads.
STOP_WAIT_S = 10.0

T = TypeVar("T")


Earlier = set[tuple[str, str, str]]  # (tenant, customer, event) that had already arrived


def is_repeat(arrival: Arrival, members: Sequence[str], earlier: Earlier) -> bool:
    """Whether the arrival's event had already arrived under one of the customer's members."""
    return any((arrival.tenant_id, m, arrival.event_id) in earlier for m in members)


class HeaderChanged:
    """Queued for a stream whose customer's header value changed (`StreamHub.check_headers`)."""


HEADER_CHANGED = HeaderChanged()

# How the hub reads the header values of (tenant, member) keys (header_watch.derived_by_member).
HeaderReads = Callable[[Warehouse, Collection[Key]], Mapping[Key, Mapping[str, int]]]


@dataclass(eq=False)
class Subscription:
    """One open stream: a customer (every member id) of one tenant, and what it was handed."""

    tenant_id: str
    members: tuple[str, ...]
    queue: asyncio.Queue[list[Arrival] | HeaderChanged] = field(default_factory=asyncio.Queue)
    # Whether the hub watches the customer's header value, and the value it read last (None:
    # not read yet, or the read failed; the next read is the one compared with).
    watch_header: bool = False
    header: Derived | None = None


class StreamHub:
    """Polls arrivals for every open stream of one app (see the module docstring)."""

    def __init__(
        self,
        warehouse: Warehouse,
        poll_s: float = POLL_S,
        wakeup: Wakeup | None = None,
        header_check_s: float = HEADER_CHECK_S,
        header_reads: HeaderReads = derived_by_member,
    ) -> None:
        # `wakeup`: told by the writer of arrivals in this process (embedded) that some were
        # stored, so the hub polls at once instead of at its next tick (kernel/wakeup.py).
        self.warehouse, self.poll_s, self.wakeup = warehouse, poll_s, wakeup
        self.header_check_s, self.header_reads = header_check_s, header_reads
        self.header_task: asyncio.Task[None] | None = None
        # The blocking reads of the hub and its streams (`read`): a cancelled await leaves its
        # thread running, so `stop` waits for these before the app closes what they read.
        self.executor: concurrent.futures.ThreadPoolExecutor | None = None  # made on a read
        self.reads: set[concurrent.futures.Future[Any]] = set()
        self.watermark: Positions | None = None
        # When the read that moved the watermark last began (time.monotonic()).
        self.read_at: float | None = None
        self.by_customer: dict[tuple[str, str], set[Subscription]] = {}
        self.task: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()

    async def subscribe(
        self, tenant_id: str, members: Sequence[str], watch_header: bool = False
    ) -> tuple[Subscription, Positions]:
        """Register a stream; returns it with the watermark from which the hub feeds it. With
        `watch_header`, the hub tells it (`HEADER_CHANGED`) when its customer's header value
        changes from the one read now."""
        subscription = Subscription(tenant_id, tuple(members), watch_header=watch_header)
        if watch_header:
            subscription.header = (await self._header_values([subscription])).get(subscription)
        async with self.lock:
            if self.task is None or self.task.done():
                # Idle until now: the old watermark is stale, and no open stream depends on it.
                # The old watermark is a floor: positions only grow (latest_positions).
                floor, began = self.watermark or {}, time.monotonic()
                self.watermark = await self.read(latest_positions, self.warehouse, floor)
                self.read_at = began
            assert self.watermark is not None
            for member in subscription.members:
                self.by_customer.setdefault((tenant_id, member), set()).add(subscription)
            if self.task is None or self.task.done():
                self.task = asyncio.create_task(self._run(), name="stream-hub")
            if watch_header and (self.header_task is None or self.header_task.done()):
                self.header_task = asyncio.create_task(self._watch_headers(), name="headers")
            return subscription, dict(self.watermark)

    async def stop(self) -> None:
        """Stop polling (the app is shutting down and will close the warehouse next), and wait
        for the reads still running in threads (up to `STOP_WAIT_S`)."""
        tasks = (self.task, self.header_task)
        self.task = self.header_task = None
        for task in tasks:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        running = [f for f in self.reads.copy() if not f.done()]
        if running:
            await asyncio.to_thread(concurrent.futures.wait, running, STOP_WAIT_S)
        # Its idle threads end now, not when the hub is collected (a hub per app, per test).
        executor, self.executor = self.executor, None
        if executor is not None:
            executor.shutdown(wait=False)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker thread (a warehouse or identity read), off the event loop."""
        if self.executor is None:
            self.executor = concurrent.futures.ThreadPoolExecutor(
                min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="stream-read"
            )
        future = self.executor.submit(fn, *args)
        self.reads.add(future)
        future.add_done_callback(self.reads.discard)
        return await asyncio.wrap_future(future)

    def recent(self, max_age_s: float) -> Positions | None:
        """The watermark while the hub polls, if the read that moved it last began at most
        `max_age_s` ago (every arrival up to it was visible then); else None. Any thread."""
        read_at, watermark = self.read_at, self.watermark
        running = self.task is not None and not self.task.done()
        if not running or read_at is None or watermark is None:
            return None
        return dict(watermark) if time.monotonic() - read_at <= max_age_s else None

    def unsubscribe(self, subscription: Subscription) -> None:
        for member in subscription.members:
            key = (subscription.tenant_id, member)
            streams = self.by_customer.get(key, set())
            streams.discard(subscription)
            if not streams:
                self.by_customer.pop(key, None)

    async def _run(self) -> None:
        # Stops when the last stream closes; the next subscription starts it again.
        while self.by_customer:
            # Read before the poll: what is stored after this point wakes the wait below.
            seen = self.wakeup.seen() if self.wakeup is not None else 0
            try:
                await self._poll_once()
            except Exception:  # the warehouse is briefly unavailable: streams wait, then resume
                logger.exception("stream hub poll failed; retrying")
                await asyncio.sleep(self.poll_s)  # a full interval, woken or not
                continue
            if self.wakeup is None:
                await asyncio.sleep(self.poll_s)
            elif await self.wakeup.wait(seen, self.poll_s):
                # Woken: poll now, but not more often than every WOKEN_GAP_S (at full load the
                # projections store a batch every few ms; one poll covers several).
                await asyncio.sleep(WOKEN_GAP_S)

    async def _poll_once(self) -> None:
        async with self.lock:
            assert self.watermark is not None
            began = time.monotonic()
            arrivals = await self.read(poll_arrivals, self.warehouse, self.watermark)
            followed = [a for a in arrivals if (a.tenant_id, a.customer_id) in self.by_customer]
            earlier: Earlier = set()
            if followed:  # only what some stream is about to show is checked for repeats
                earlier = await self.read(
                    earlier_arrivals, self.warehouse, followed, self.watermark
                )
            self.dispatch(arrivals, earlier)
            if len(arrivals) < MAX_POLL:  # else more had arrived than one poll reads
                self.read_at = began

    def subscriptions(self) -> set[Subscription]:
        return {s for streams in self.by_customer.values() for s in streams}

    async def _watch_headers(self) -> None:
        # Stops when no open stream watches its header; the next one that does starts it again.
        while any(s.watch_header for s in self.subscriptions()):
            await asyncio.sleep(self.header_check_s)
            await self.check_headers()

    async def check_headers(self) -> None:
        """Read the header value of every watching stream's customer (one read for all), and
        queue `HEADER_CHANGED` for each stream whose value changed since the last read."""
        watching = [s for s in self.subscriptions() if s.watch_header]
        values = await self._header_values(watching)
        for subscription in watching:
            value = values.get(subscription)
            if value is None:  # not read: compared at the next read
                continue
            if subscription.header is not None and value != subscription.header:
                subscription.queue.put_nowait(HEADER_CHANGED)
            subscription.header = value

    async def _header_values(
        self, subscriptions: Sequence[Subscription]
    ) -> dict[Subscription, Derived]:
        """Each subscription's header value; {} when the warehouse could not be read."""
        if not subscriptions:
            return {}
        keys = {(s.tenant_id, m) for s in subscriptions for m in s.members}
        try:
            counts = await self.read(self.header_reads, self.warehouse, keys)
        except Exception:  # noqa: BLE001 — the warehouse briefly unavailable: read again later
            logger.warning("stream hub: could not read what the customers' headers derive from")
            return {}
        return {s: derived_of_customer(counts, s.tenant_id, s.members) for s in subscriptions}

    def dispatch(self, arrivals: Sequence[Arrival], earlier: Earlier | None = None) -> None:
        """Hand each arrival to its customer's streams, except repeats of what arrived at or
        before the watermark (`earlier`), and move the watermark past them."""
        handed: dict[Subscription, list[Arrival]] = {}
        for arrival in arrivals:
            for stream in self.by_customer.get((arrival.tenant_id, arrival.customer_id), ()):
                if not is_repeat(arrival, stream.members, earlier or set()):
                    handed.setdefault(stream, []).append(arrival)
        for stream, batch in handed.items():
            stream.queue.put_nowait(batch)
        reached = {a.partition: a.offset for a in arrivals}
        self.watermark = advance(self.watermark or {}, reached)


def _flagged_entries(
    warehouse: Warehouse,
    tenant_id: str,
    members: Sequence[str],
    event_ids: Sequence[str],
    lang: Language = "en",
) -> dict[str, TimelineEntry]:
    """The entries of the given events, as a timeline page shows them (repeat contacts flagged,
    the summary in `lang`)."""
    entries = read_entries(warehouse, tenant_id, members, event_ids)
    flagged = flag_repeats(warehouse, tenant_id, members, list(entries.values()))
    return {entry.event_id: worded(entry, lang) for entry in flagged}


def sse_message(cursor: str, event: str | None = None, data: bytes | None = None) -> bytes:
    """One Server-Sent Events message; with only an id, it moves the client's Last-Event-ID
    without firing an event (the SSE processing model ignores a message with no data)."""
    lines = [f"id: {cursor}"]
    if event is not None and data is not None:
        lines += [f"event: {event}", f"data: {data.decode()}"]
    return ("\n".join(lines) + "\n\n").encode()


class _CredentialEnded(Exception):
    """The stream's credential no longer holds (`CustomerStream.authorised`): it ends."""


@dataclass
class CustomerStream:
    """The messages of one open stream, from a cursor: catch-up first, then live."""

    hub: StreamHub
    tenant_id: str
    members: Sequence[str]
    cursor: Positions | None  # None: from now on
    keep_alive_s: float = KEEP_ALIVE_S
    # A producer writing straight to Kafka may put one event id at two offsets: shown once.
    shown: set[str] = field(default_factory=set)
    lang: Language = "en"  # the language of each entry's summary (timeline.worded)
    # Whether the customer was erased since the stream opened (blocking: read in a thread); on
    # True the stream sends `event: erased` and ends. None: nothing to watch.
    erased: Callable[[], bool] | None = None
    erasure_check_s: float = ERASURE_CHECK_S
    # Whether the customer's members changed since the stream opened (blocking: read in a
    # thread, with the erasure check): a merge or a split. The stream feeds the members it opened
    # on, so it sends `event: regrouped` and ends, and the page reads the customer again (a
    # review: a customer merged while her page was open never showed the merged history, nor,
    # on the absorbed one's page, the new events filed under the survivor). None: nothing to watch.
    regrouped: Callable[[], bool] | None = None
    # Whether the credential that opened the stream still holds (blocking, read in a thread):
    # asked with the erasure check and before each delivery; on False the stream ends, so that
    # signing out or revoking a key stops what it was shown (the browser's reconnect then gets
    # the 401). None: nothing to ask.
    authorised: Callable[[], bool] | None = None
    # Whether the hub watches what the header reads from the stages after the timeline
    # (header_watch.py): when it changed, the stream sends `event: header` and the page reads
    # its header again (an alert a survey answer raised lands after the answer's entry).
    watch_header: bool = False

    async def messages(self) -> AsyncIterator[bytes]:
        subscription, watermark = await self.hub.subscribe(
            self.tenant_id, self.members, self.watch_header
        )
        try:
            yield f"retry: {RETRY_MS}\n\n".encode()
            position = dict(watermark) if self.cursor is None else dict(self.cursor)
            if self.cursor is not None:
                async for message in self._catch_up(self.cursor, watermark, position):
                    yield message
            # From here the hub feeds everything after the watermark; a cursor ahead of it
            # (from another replica) is respected by `_deliver` skipping what it has seen.
            position = advance(position, watermark)
            yield sse_message(encode_positions(position))
            async for message in self._live(subscription, position):
                yield message
        except _CredentialEnded:  # during the catch-up: nothing more is sent
            return
        finally:
            self.hub.unsubscribe(subscription)

    async def _catch_up(
        self, after: Positions, up_to: Positions, position: Positions
    ) -> AsyncIterator[bytes]:
        """What arrived between the client's cursor and the hub's watermark, page by page (a
        page is a prefix of every partition it reaches, so the next starts where it ended)."""
        while True:
            missed, earlier = await self.hub.read(self._missed, after, up_to, dict(position))
            unseen = [a for a in missed if not is_repeat(a, self.members, earlier)]
            async for message in self._deliver(unseen, position):
                yield message
            if len(missed) < MAX_CATCH_UP:
                return
            after = advance(after, {a.partition: a.offset for a in missed})

    def _missed(
        self, after: Positions, up_to: Positions, passed: Positions
    ) -> tuple[list[Arrival], Earlier]:
        """A page of the catch-up, and which of its events the client had already passed."""
        warehouse = self.hub.warehouse
        missed = arrivals_between(warehouse, self.tenant_id, self.members, after, up_to)
        return missed, earlier_arrivals(warehouse, missed, passed)

    async def _live(self, subscription: Subscription, position: Positions) -> AsyncIterator[bytes]:
        wait_s = self.keep_alive_s
        if self.erased is not None or self.authorised is not None or self.regrouped is not None:
            wait_s = min(wait_s, self.erasure_check_s)
        kept_alive, checked = time.monotonic(), None
        while True:
            now = time.monotonic()
            if checked is None or now - checked >= wait_s:
                checked = now
                if not await self._still_authorised():
                    return
                if self.erased is not None and await self.hub.read(self.erased):
                    yield sse_message(encode_positions(position), "erased", b"{}")
                    return
                if self.regrouped is not None and await self.hub.read(self.regrouped):
                    yield sse_message(encode_positions(position), "regrouped", b"{}")
                    return
            try:
                batch = await asyncio.wait_for(subscription.queue.get(), wait_s)
            except TimeoutError:
                # A batch the hub queued while the timed-out wait was being cancelled (it awaits)
                # is delivered first: the watermark may have moved past it already.
                if not subscription.queue.empty() or (
                    time.monotonic() - kept_alive < self.keep_alive_s
                ):
                    continue
                kept_alive = time.monotonic()
                # Nothing queued: everything up to the hub's watermark reached this stream, so the
                # client's cursor may move there (a later reconnect then reads less). The hub
                # queues what it dispatches before it moves the watermark past it, and nothing is
                # awaited between the check above and this read.
                position.update(advance(position, self.hub.watermark or {}))
                yield b": keep-alive\n" + sse_message(encode_positions(position))
                continue
            if isinstance(batch, HeaderChanged):
                yield sse_message(encode_positions(position), "header", b"{}")
                continue
            try:
                async for message in self._deliver(batch, position):
                    yield message
            except _CredentialEnded:
                return

    async def _still_authorised(self) -> bool:
        return self.authorised is None or await self.hub.read(self.authorised)

    async def _deliver(
        self, arrivals: Sequence[Arrival], position: Positions
    ) -> AsyncIterator[bytes]:
        fresh = [a for a in arrivals if a.offset > position.get(a.partition, -1)]
        # What the client's cursor has passed (a cursor from another replica, ahead of this
        # hub) it has been shown: a later arrival of the same event is a repeat.
        self.shown.update(a.event_id for a in set(arrivals).difference(fresh))
        if not fresh:
            return
        entries = await self.hub.read(
            _flagged_entries,
            self.hub.warehouse,
            self.tenant_id,
            self.members,
            [a.event_id for a in fresh],
            self.lang,
        )
        # Asked once the entries are read (a sign-out during that read sends nothing more).
        if not await self._still_authorised():
            raise _CredentialEnded
        for arrival in fresh:
            position[arrival.partition] = arrival.offset
            entry = entries.get(arrival.event_id)
            if entry is not None and arrival.event_id not in self.shown:
                self.shown.add(arrival.event_id)
                data = orjson.dumps(entry.model_dump(mode="json"))
                yield sse_message(encode_positions(position), "touchpoint", data)
