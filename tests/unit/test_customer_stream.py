"""The live stream's catch-up and hand-off to the hub, over an in-memory twin of the arrivals and
timeline tables: a reconnection far behind reads every page, then live messages, none twice."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from kernel.wakeup import Wakeup
from services.projections import arrivals as arrivals_module
from services.projections.arrivals import (
    Arrival,
    LatestPositions,
    decode_positions,
    encode_positions,
    positions_of,
)
from services.query_api import stream as stream_module
from services.query_api.stream import CustomerStream, StreamHub

TENANT, CUSTOMER = "acme", "cust-1"


class ArrivalsTwin:
    """Answers the four queries the stream makes, from lists (no SQL engine)."""

    version = (26, 1)

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []

    def add(self, partition: int, offset: int, customer: str = CUSTOMER) -> Arrival:
        arrival = Arrival(partition, offset, TENANT, customer, f"e-{partition}-{offset}")
        self.arrivals.append(arrival)
        return arrival

    def select(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        p = dict(params or {})
        if "max(log_offset)" in sql:
            last: dict[int, int] = {}
            for a in self.arrivals:
                last[a.partition] = max(a.offset, last.get(a.partition, -1))
            return [{"log_partition": k, "last": v} for k, v in last.items()]
        if "customer_timeline" in sql:
            wanted = {v for k, v in p.items() if k.startswith("event_")}
            return [self._entry(a) for a in self.arrivals if a.event_id in wanted]
        if "SELECT DISTINCT" in sql:
            return self._earlier(p)
        return self._between(sql, p)

    def _earlier(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        wanted = {v for k, v in p.items() if k.startswith("event_")}
        up_to = {p[f"q_{i}"]: p[f"r_{i}"] for i in range(64) if f"q_{i}" in p}
        return [
            {"tenant_id": a.tenant_id, "customer_id": a.customer_id, "event_id": a.event_id}
            for a in self.arrivals
            if a.event_id in wanted and a.offset <= up_to.get(a.partition, -1)
        ]

    def again(self, partition: int, offset: int, first: Arrival) -> Arrival:
        """A second arrival of an event that arrived before (a redelivered filing)."""
        arrival = Arrival(partition, offset, first.tenant_id, first.customer_id, first.event_id)
        self.arrivals.append(arrival)
        return arrival

    def _between(self, sql: str, p: dict[str, Any]) -> list[dict[str, Any]]:
        after = {p[f"p_{i}"]: p[f"o_{i}"] for i in range(64) if f"p_{i}" in p}
        up_to = {p[f"q_{i}"]: p[f"r_{i}"] for i in range(64) if f"q_{i}" in p}
        members = {v for k, v in p.items() if k.startswith("member_")}
        limit = int(re.findall(r"LIMIT (\d+)\s*$", sql.strip())[0])
        found = sorted(
            (a for a in self.arrivals
             if a.offset > after.get(a.partition, -1)
             and (not up_to or a.offset <= up_to.get(a.partition, -1))
             and (not members or a.customer_id in members)),
            key=lambda a: (a.partition, a.offset),
        )  # fmt: skip
        return [vars(a) | {"log_partition": a.partition, "log_offset": a.offset} for a in found][
            :limit
        ]

    @staticmethod
    def _entry(a: Arrival) -> dict[str, Any]:
        return {
            "event_id": a.event_id, "derived_at": a.offset, "occurred_at": a.offset,
            "received_at": a.offset, "clock_corrected": 0, "channel": "chat",
            "type": "message.received", "touchpoint": "chat", "source_id": "http",
            "correlation_id": "", "summary": "Message received · chat · “Hi”",
            "payload_json": '{"text": "Hi"}',
            "identifiers": [],
        }  # fmt: skip

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None: ...

    def insert(self, table: str, rows: Any) -> None: ...

    def close(self) -> None: ...


async def summaries(messages: Any, count: int) -> list[str]:
    """The summaries of the next `count` touchpoint messages."""
    found: list[str] = []
    while len(found) < count:
        chunk = (await asyncio.wait_for(anext(messages), 20)).decode()
        data = re.search(r"event: touchpoint\ndata: (.*)\n", chunk)
        if data:
            found.append(orjson.loads(data.group(1))["summary"])
    return found


async def take(messages: Any, count: int) -> list[tuple[str, str]]:
    """(id, event_id) of the next `count` touchpoint messages."""
    found: list[tuple[str, str]] = []
    deadline = asyncio.get_running_loop().time() + 30
    while len(found) < count:
        assert asyncio.get_running_loop().time() < deadline, f"only {len(found)} of {count}"
        chunk = (await asyncio.wait_for(anext(messages), 20)).decode()
        match = re.search(r'id: (\S+)\nevent: touchpoint\ndata: .*"event_id":"([^"]+)"', chunk)
        if match:
            found.append((match.group(1), match.group(2)))
    return found


def test_a_reconnection_far_behind_reads_every_page_then_live(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream_module, "MAX_CATCH_UP", 3)  # pages of 3 rows
    monkeypatch.setattr(arrivals_module, "MAX_CATCH_UP", 3)
    twin = ArrivalsTwin()
    missed = [twin.add(p, o) for p in (0, 1) for o in range(4)]
    twin.add(0, 4, customer="someone-else")

    async def scenario() -> list[tuple[str, str]]:
        hub = StreamHub(twin, poll_s=0.01)  # type: ignore[arg-type]
        stream = CustomerStream(hub, TENANT, [CUSTOMER], {0: -1, 1: -1}, keep_alive_s=0.05)
        messages = stream.messages()
        caught_up = await take(messages, len(missed))
        live = twin.add(1, 4)
        later = await take(messages, 1)
        await messages.aclose()
        assert later[0][1] == live.event_id
        assert decode_positions(later[0][0]) == {0: 4, 1: 4}
        return caught_up

    caught_up = asyncio.run(scenario())
    assert sorted(e for _, e in caught_up) == sorted(a.event_id for a in missed)


def test_a_fresh_stream_starts_now_and_repeats_nothing() -> None:
    twin = ArrivalsTwin()
    twin.add(0, 0)

    async def scenario() -> None:
        hub = StreamHub(twin, poll_s=0.01)  # type: ignore[arg-type]
        messages = CustomerStream(hub, TENANT, [CUSTOMER], None, keep_alive_s=0.05).messages()
        first = (await anext(messages)).decode() + (await anext(messages)).decode()
        assert f"id: {encode_positions({0: 0})}" in first  # where it starts, no old event
        new = twin.add(0, 1)
        [(cursor, event_id)] = await take(messages, 1)
        assert (event_id, decode_positions(cursor)) == (new.event_id, {0: 1})
        # A producer writing straight to Kafka may put the same event at a second offset.
        twin.arrivals.append(Arrival(0, 2, TENANT, CUSTOMER, new.event_id))
        idle = (await asyncio.wait_for(anext(messages), 5)).decode()
        assert "keep-alive" in idle and "touchpoint" not in idle
        await messages.aclose()

    asyncio.run(scenario())


def test_a_redelivered_filing_is_not_shown_again_after_a_reconnection() -> None:
    """The filing stage appended a batch's filings, died before committing, and filed the batch
    again: each event arrives a second time, after a client that saw the first went away."""
    twin = ArrivalsTwin()
    twin.add(0, 0)

    async def scenario() -> None:
        hub = StreamHub(twin, poll_s=0.01)  # type: ignore[arg-type]
        first_visit = CustomerStream(hub, TENANT, [CUSTOMER], None, keep_alive_s=0.05).messages()
        await anext(first_visit)
        shown = [twin.add(0, 1), twin.add(1, 0)]
        seen = await take(first_visit, 2)
        await first_visit.aclose()
        cursor = decode_positions(seen[-1][0])
        # While the client is away: the batch filed again, then a new event.
        twin.again(0, 2, shown[0])
        twin.again(1, 1, shown[1])
        new = twin.add(0, 3)
        back = CustomerStream(hub, TENANT, [CUSTOMER], cursor, keep_alive_s=0.05).messages()
        assert [e for _, e in await take(back, 1)] == [new.event_id]
        # Filed a third time while the client is connected: the hub drops it too.
        twin.again(1, 2, shown[1])
        live = twin.add(1, 3)
        assert [e for _, e in await take(back, 1)] == [live.event_id]
        await back.aclose()

    asyncio.run(scenario())


def test_an_event_that_arrived_under_another_member_is_not_shown_again() -> None:
    """After a merge the customer's stream follows every member: an event filed under the absorbed
    id before the merge and again under the survivor after it is one event."""
    twin = ArrivalsTwin()
    first = twin.add(0, 0, customer="absorbed")

    async def scenario() -> None:
        hub = StreamHub(twin, poll_s=0.01)  # type: ignore[arg-type]
        stream = CustomerStream(hub, TENANT, [CUSTOMER, "absorbed"], {0: 0}, keep_alive_s=0.05)
        messages = stream.messages()
        twin.arrivals.append(Arrival(0, 1, TENANT, CUSTOMER, first.event_id))  # the survivor
        new = twin.add(0, 2)
        assert [e for _, e in await take(messages, 1)] == [new.event_id]
        await messages.aclose()

    asyncio.run(scenario())


def test_a_hub_woken_by_the_writer_delivers_without_waiting_for_its_poll() -> None:
    """Embedded, the projection runner (a thread) tells the hub it stored arrivals: with a poll
    interval of an hour, only that wake-up can bring the new event to the stream."""
    twin = ArrivalsTwin()
    twin.add(0, 0)
    wakeup = Wakeup()

    async def scenario() -> None:
        hub = StreamHub(twin, poll_s=3600, wakeup=wakeup)  # type: ignore[arg-type]
        messages = CustomerStream(hub, TENANT, [CUSTOMER], None, keep_alive_s=3600).messages()
        await anext(messages)  # retry:
        await anext(messages)  # where it starts
        await asyncio.sleep(0.05)  # the hub's first poll found nothing and waits for an hour
        new = twin.add(0, 1)
        writer = threading.Thread(target=wakeup.notify)
        writer.start()
        writer.join()
        assert [e for _, e in await take(messages, 1)] == [new.event_id]
        await messages.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("lang", "summary"),
    [("es", "Mensaje recibido · chat · “Hi”"), ("en", "Message received · chat · “Hi”")],
)
def test_catch_up_and_live_messages_word_the_summary_in_the_language_asked(
    lang: str, summary: str
) -> None:
    twin = ArrivalsTwin()
    twin.add(0, 0)  # missed while away: sent by the catch-up

    async def scenario() -> list[str]:
        hub = StreamHub(twin, poll_s=0.01)  # type: ignore[arg-type]
        stream = CustomerStream(hub, TENANT, [CUSTOMER], {0: -1}, keep_alive_s=0.05, lang=lang)
        messages = stream.messages()
        caught_up = await summaries(messages, 1)
        twin.add(0, 1)  # live
        live = await summaries(messages, 1)
        await messages.aclose()
        return caught_up + live

    assert asyncio.run(scenario()) == [summary, summary]


def test_a_stopped_hub_polls_no_more() -> None:
    """At shutdown the app stops its hub before closing the warehouse the hub polls."""
    twin = ArrivalsTwin()
    polls = 0
    select = twin.select

    def counting(sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        nonlocal polls
        polls += 1
        return select(sql, params)

    twin.select = counting  # type: ignore[method-assign]

    async def scenario() -> tuple[bool, int, int]:
        hub = StreamHub(twin, poll_s=0.01)  # type: ignore[arg-type]
        await hub.subscribe(TENANT, [CUSTOMER])  # an open stream: the hub polls
        task = hub.task
        while polls < 3:
            await asyncio.sleep(0.01)
        await hub.stop()
        after_stop = polls
        await asyncio.sleep(0.1)  # ten poll intervals
        return task is not None and task.done(), after_stop, polls

    done, after_stop, later = asyncio.run(scenario())
    assert done and later == after_stop


def test_a_polling_hubs_watermark_is_recent_and_a_stopped_hubs_is_not() -> None:
    """What a first timeline page may take as its stream cursor instead of a read: the watermark
    of a hub that polls, every arrival up to which was visible when its last read began."""
    twin = ArrivalsTwin()
    twin.add(0, 0)

    async def scenario() -> list[dict[int, int] | None]:
        hub = StreamHub(twin, poll_s=0.01)  # type: ignore[arg-type]
        before = hub.recent(60.0)  # no stream yet: the hub has read nothing
        await hub.subscribe(TENANT, [CUSTOMER])
        twin.add(1, 7)
        await until(lambda: hub.watermark == {0: 0, 1: 7})  # polled (0.1 s was not, under load)
        polling = hub.recent(60.0)
        await hub.stop()
        return [before, polling, hub.recent(60.0)]

    assert asyncio.run(scenario()) == [None, {0: 0, 1: 7}, None]


def test_told_latest_positions_read_once_then_answer_from_memory() -> None:
    """Embedded, the projections tell the app each arrival they store: after one read for what
    was stored before, a first timeline page's stream cursor costs no query."""
    twin = ArrivalsTwin()
    twin.add(0, 3)
    reads = 0
    select = twin.select

    def counting(sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        nonlocal reads
        reads += 1
        return select(sql, params)

    twin.select = counting  # type: ignore[method-assign]
    latest = LatestPositions(twin, told=True)  # type: ignore[arg-type]
    latest.stored({1: 2})  # told before the first read: kept
    assert (latest(), reads) == ({0: 3, 1: 2}, 1)
    twin.add(0, 4)
    latest.stored(positions_of([{"log_partition": 0, "log_offset": 4}]))
    assert (latest(), reads) == ({0: 4, 1: 2}, 1)
    untold = LatestPositions(twin)  # type: ignore[arg-type]
    assert (untold(), untold(), reads) == ({0: 4}, {0: 4}, 3)


class Reader:
    """Reads a stream's messages as they come, in a task of their own (cancelling a pending
    `anext` would close the stream), keeping each named message's name."""

    def __init__(self, messages: Any) -> None:
        self.messages, self.names = messages, []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for chunk in self.messages:
            named = re.search(r"^event: (\w+)$", chunk.decode(), re.M)
            if named:
                self.names.append(named.group(1))

    async def until(self, names: list[str], timeout_s: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.names != names:
            assert asyncio.get_running_loop().time() < deadline, self.names
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.messages.aclose()


class HeaderReads:
    """The hub's header reads, from a dict: (tenant, member) -> {kind: count}."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], dict[str, int]] = {}
        self.calls: list[set[tuple[str, str]]] = []
        self.failing = False

    def __call__(self, warehouse: object, keys: Any) -> dict[tuple[str, str], dict[str, int]]:
        self.calls.append(set(keys))
        if self.failing:
            raise RuntimeError("warehouse down")
        return {k: dict(v) for k, v in self.counts.items() if k in keys}


async def until(condition: Any, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)


def test_a_later_stage_storing_what_the_header_reads_tells_the_page_once() -> None:
    # A survey answer's timeline entry goes out; its alert lands a moment later (satisfaction):
    # the page's one refresh after the entry could read the header before it (a browser review:
    # the churn risk stayed stale). The hub watches what the header reads and the stream says
    # `header`.
    twin, reads = ArrivalsTwin(), HeaderReads()

    async def scenario() -> None:
        hub = StreamHub(twin, poll_s=0.01, header_check_s=0.05, header_reads=reads)  # type: ignore[arg-type]
        stream = CustomerStream(hub, TENANT, [CUSTOMER], None, keep_alive_s=0.05,
                                watch_header=True)  # fmt: skip
        reader = Reader(stream.messages())
        # Subscribed (its value read when it opened, then registered): what is stored from now
        # on reaches it live.
        await until(lambda: reads.calls and hub.by_customer)
        twin.add(0, 0)
        await reader.until(["touchpoint"])
        reads.counts[(TENANT, CUSTOMER)] = {"alerts": 1}  # the answer's alert, stored after
        await reader.until(["touchpoint", "header"])
        calls = len(reads.calls)
        await until(lambda: len(reads.calls) >= calls + 5)  # nothing more changed
        assert reader.names == ["touchpoint", "header"]
        await reader.close()

    asyncio.run(scenario())


def test_one_read_serves_every_watching_stream_and_a_failed_read_is_no_change() -> None:
    twin, reads = ArrivalsTwin(), HeaderReads()
    merged = ("cust-2", "cust-3")  # a merged customer: either member's rows change its header

    async def scenario() -> None:
        hub = StreamHub(twin, poll_s=0.01, header_check_s=0.02, header_reads=reads)  # type: ignore[arg-type]
        one = Reader(CustomerStream(hub, TENANT, [CUSTOMER], None, keep_alive_s=0.05,
                                    watch_header=True).messages())  # fmt: skip
        two = Reader(CustomerStream(hub, TENANT, list(merged), None, keep_alive_s=0.05,
                                    watch_header=True).messages())  # fmt: skip
        plain = Reader(CustomerStream(hub, TENANT, ["cust-4"], None,
                                      keep_alive_s=0.05).messages())  # fmt: skip
        both = {(TENANT, CUSTOMER), (TENANT, merged[0]), (TENANT, merged[1])}
        await until(lambda: both in reads.calls)  # one read for both streams, not the plain one
        assert all(keys <= both for keys in reads.calls)
        reads.failing = True  # reads that fail say nothing changed, and the hub reads on
        calls = len(reads.calls)
        await until(lambda: len(reads.calls) >= calls + 3)
        reads.counts[("other-tenant", merged[1])] = {"alerts": 3}  # another tenant's customer
        reads.failing = False
        calls = len(reads.calls)
        await until(lambda: len(reads.calls) >= calls + 3)
        assert one.names == two.names == plain.names == []
        reads.counts[(TENANT, merged[1])] = {"texts": 1}  # the absorbed member's text
        await two.until(["header"])
        calls = len(reads.calls)
        await until(lambda: len(reads.calls) >= calls + 3)
        assert (one.names, two.names, plain.names) == ([], ["header"], [])
        for reader in (one, two):
            await reader.close()
        # No stream watches: the hub stops reading.
        await until(lambda: hub.header_task is not None and hub.header_task.done())
        calls = len(reads.calls)
        await asyncio.sleep(0.2)
        assert len(reads.calls) == calls
        await plain.close()
        await hub.stop()

    asyncio.run(scenario())
