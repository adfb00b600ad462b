"""The live stream over the arrivals the real runners write (filing stage, projections), on chdb
and on a ClickHouse server: a filing batch filed twice, and an upgrade from a release before the
filing stage (whose arrivals hold `touchpoints` positions), neither lose nor repeat an event."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from cem.adapters.memory_log import MemoryLog
from cem.runner import ensure_tables, file_once, run_once
from kernel.filings import FILING_STAGE, file_batch
from kernel.ports import FILINGS_TOPIC, TOUCHPOINTS_TOPIC, Record, Warehouse
from schemas.envelope import Event
from schemas.validate import accept, encode
from services.projections import arrivals
from services.projections.arrivals import ARRIVALS, Positions, latest_positions
from services.projections.projection import ProjectionsProjection
from services.query_api.stream import CustomerStream, StreamHub
from tests.unit.test_customer_stream import take

TENANT = "acme"
PROJECTIONS = ProjectionsProjection()


def chat(customer: str, text: str) -> Event:
    raw = {
        "event_id": str(uuid.uuid4()),
        "channel": "chat",
        "type": "message.received",
        "occurred_at": datetime.now(UTC).isoformat(),
        "customer": {"customer_id": customer},
        "payload": {"text": text},
    }
    return accept(raw, TENANT, datetime.now(UTC))[0]


def publish(log: MemoryLog, *events: Event) -> None:
    log.append(TOUCHPOINTS_TOPIC, [Record(b"k", encode(e)) for e in events])


def project(log: MemoryLog, warehouse: Warehouse) -> None:
    while run_once(log, warehouse, PROJECTIONS, timeout_s=0):
        pass


def process(log: MemoryLog, warehouse: Warehouse) -> None:
    while file_once(log, warehouse, None, timeout_s=0):
        pass
    project(log, warehouse)


def shown(warehouse: Warehouse, customer: str, cursor: Positions | None, count: int) -> list[str]:
    """The events a stream from `cursor` shows first (`count` of them), then whether it is quiet:
    a stream that shows more than expected fails on the next message it takes."""

    async def scenario() -> list[str]:
        hub = StreamHub(warehouse, poll_s=0.01)
        messages = CustomerStream(hub, TENANT, [customer], cursor, keep_alive_s=0.5).messages()
        try:
            return [event_id for _, event_id in await take(messages, count)]
        finally:
            await messages.aclose()

    return asyncio.run(scenario())


def test_a_redelivered_filing_batch_is_not_shown_again_after_a_reconnection(
    any_warehouse: Warehouse,
) -> None:
    log = MemoryLog(partitions=1)
    ensure_tables(any_warehouse, [PROJECTIONS])
    customer = f"c-{uuid.uuid4().hex[:8]}"
    publish(log, chat(customer, "hello"))
    process(log, any_warehouse)
    cursor = latest_positions(any_warehouse)
    seen = [chat(customer, "first"), chat(customer, "second")]
    publish(log, *seen)
    # The filing stage appends the batch's filings and dies before committing its offsets.
    polled = log.poll(TOUCHPOINTS_TOPIC, FILING_STAGE, 100, 0)
    log.append(FILINGS_TOPIC, file_batch(polled, None).filings)
    project(log, any_warehouse)
    assert sorted(shown(any_warehouse, customer, cursor, 2)) == sorted(
        str(e.event_id) for e in seen
    )
    cursor = latest_positions(any_warehouse)  # where the client's stream left off

    after = chat(customer, "after")
    publish(log, after)
    process(log, any_warehouse)  # files the batch again, then the new event
    assert shown(any_warehouse, customer, cursor, 1) == [str(after.event_id)]
    assert quiet_after(any_warehouse, customer, cursor, 1)


def quiet_after(warehouse: Warehouse, customer: str, cursor: Positions, count: int) -> bool:
    """Whether a stream from `cursor` shows nothing beyond its first `count` events."""
    try:
        shown(warehouse, customer, cursor, count + 1)
    except (AssertionError, TimeoutError):
        return True
    return False


def test_after_an_upgrade_old_cursors_and_new_streams_see_new_events_once(
    any_warehouse: Warehouse,
) -> None:
    """A release before the filing stage stamped arrivals with `touchpoints` positions; the filing
    stage of the new one files the whole history again from offset 0 of `filings`."""
    log = MemoryLog(partitions=1)
    customer = f"c-{uuid.uuid4().hex[:8]}"
    log.append(TOUCHPOINTS_TOPIC, [Record(b"k", b"not an event")] * 5)  # dead letters then
    history = [chat(customer, f"old {i}") for i in range(4)]
    publish(log, *history)
    old_rows = [
        {"log_partition": 0, "log_offset": 5 + i, "tenant_id": TENANT,
         "customer_id": customer, "event_id": str(e.event_id)}
        for i, e in enumerate(history)
    ]  # fmt: skip
    for statement in arrivals.ddl(any_warehouse.version):  # the old release's only arrivals table
        any_warehouse.command(statement)
    any_warehouse.insert(ARRIVALS, old_rows)
    ensure_tables(any_warehouse, [PROJECTIONS])  # the upgrade: its by-event table is filled
    old_cursor = {0: 8}  # a console that had seen the whole history before the upgrade

    async def upgrade_then_new_event() -> tuple[list[str], Event]:
        hub = StreamHub(any_warehouse, poll_s=0.01)
        fresh = CustomerStream(hub, TENANT, [customer], None, keep_alive_s=0.5).messages()
        await anext(fresh)  # open before the upgrade re-files the history
        await asyncio.to_thread(process, log, any_warehouse)
        new = chat(customer, "new")
        publish(log, new)
        await asyncio.to_thread(process, log, any_warehouse)
        try:
            return [event_id for _, event_id in await take(fresh, 1)], new
        finally:
            await fresh.aclose()

    from_fresh, new = asyncio.run(upgrade_then_new_event())
    assert from_fresh == [str(new.event_id)]
    assert shown(any_warehouse, customer, old_cursor, 1) == [str(new.event_id)]
    assert quiet_after(any_warehouse, customer, old_cursor, 1)
