"""fcr@1 read from the contact events table, on chdb and on a ClickHouse server, equals the read from
the timeline (the reference) on a seeded population: merged customers, a reprocessed batch, late
events, every bucket, as of several moments. Contact events come from the projection beside the
timeline rows, or from the one-off backfill of a warehouse an earlier release filled, and the route
reads the timeline until that backfill is recorded (asking no more once it is)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import kernel.api_errors
from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.adapters.memory_access_audit import MemoryAccessAudit
from cem.adapters.memory_keys import MemoryKeyStore
from cem.runner import ensure_tables
from kernel.ports import Warehouse
from kernel.processing import to_micros
from services.projections import contact_events
from services.projections.contact_events import (
    CONTACT_EVENTS,
    Backfilled,
    backfilled,
    to_contact_event_rows,
)
from services.projections.projection import ProjectionsProjection
from services.projections.sql import TIMELINE
from services.query_api.routers.fcr import router as fcr_router
from services.satisfaction.fcr_sql import RangeTooBusy, read_contact_events, read_fcr
from tests.integration.test_fcr_sql import DAY, MERGED, T0, population, timeline_row


def late_events(tenant: str) -> list[dict[str, Any]]:
    """Chats and a reopen received days after their time: some after the moments read."""
    rows = []
    for i in range(0, 40, 3):
        at = T0 + timedelta(days=8 + i // 3, hours=i)
        rows.append(timeline_row(tenant, f"c{i}", at, "message.received", "chat",
                                 received=at + timedelta(days=6), payload={"text": "again"}))  # fmt: skip
    rows.append(timeline_row(tenant, "c5", T0 + 12 * DAY, "case.reopened", "other",
                             received=T0 + 26 * DAY, payload={"case_id": "K7"}))  # fmt: skip
    return rows


def projected(wh: Warehouse, rows: list[dict[str, Any]]) -> None:
    """What the projections consumer writes for these events: timeline and contact events."""
    wh.insert(TIMELINE, rows)
    wh.insert(CONTACT_EVENTS, to_contact_event_rows(rows))


def stored_rows(wh: Warehouse, tenant: str) -> list[dict[str, Any]]:
    """Every contact event of the tenant, as rows, by event id."""
    columns = read_contact_events(wh, tenant, to_micros(T0 - 30 * DAY), to_micros(T0 + 90 * DAY))
    rows = [dict(zip(columns, v, strict=True)) for v in zip(*columns.values(), strict=True)]
    return sorted(rows, key=lambda r: r["event_id"])


@pytest.fixture
def wh(any_warehouse: Warehouse) -> Warehouse:
    ensure_tables(any_warehouse, [ProjectionsProjection()])
    return any_warehouse


AS_OF_DAYS = (14, 20, 26, 33)  # the range's last days provisional, late events known or not


@pytest.mark.parametrize("bucket", ["hour", "day", "week", "month", "total"])
def test_contact_events_read_equals_the_timeline_read(wh: Warehouse, bucket: str) -> None:
    tenant, other = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    rows = population(tenant, seed=11) + late_events(tenant)
    projected(wh, rows + population(other, seed=12))
    projected(wh, rows[:40])  # a reprocessed batch
    since, until = to_micros(T0 + 10 * DAY), to_micros(T0 + 25 * DAY)
    seen = []
    for days in AS_OF_DAYS:
        as_of = to_micros(T0 + days * DAY)
        for merged in (MERGED, None):
            found = read_fcr(wh, tenant, since, until, bucket, as_of, merged)
            assert found == read_fcr(wh, tenant, since, until, bucket, as_of, merged, timeline=True)
            seen.append(found)
    assert len({repr(cells) for cells in seen}) > len(AS_OF_DAYS)  # moments and merges count
    assert any(c.fcr_final for c in seen[-1]) and any(c.repeated for c in seen[-1])
    assert any(c.fcr_provisional for c in seen[0])


def test_the_projection_writes_each_contact_or_case_event_beside_its_timeline_row() -> None:
    from schemas.validate import accept

    raw = {"event_id": str(uuid.uuid4()), "occurred_at": T0.isoformat(), "type": "call.ended",
           "channel": "phone", "customer": {"customer_id": "ana"},
           "payload": {"resolved": True, "topic": "billing", "agent": "bob"}}  # fmt: skip
    event, _ = accept(raw, "t1", T0 + timedelta(seconds=1))
    rows = ProjectionsProjection().rows(event, "ana")
    assert rows[CONTACT_EVENTS] == to_contact_event_rows(rows[TIMELINE])
    assert (
        rows[CONTACT_EVENTS][0] | {"agent": "bob", "topic": "billing", "contact": 1}
        == (rows[CONTACT_EVENTS][0])
    )
    viewed = accept({**raw, "event_id": str(uuid.uuid4()), "type": "page.viewed", "channel": "web",
                     "payload": {"url": "https://x.io"}}, "t1", T0)[0]  # fmt: skip
    assert ProjectionsProjection().rows(viewed, "ana")[CONTACT_EVENTS] == []


def test_an_earlier_releases_timeline_is_backfilled_once_and_read_meanwhile(
    any_warehouse: Warehouse,
) -> None:
    wh = any_warehouse
    tenant = f"t{uuid.uuid4().hex[:8]}"
    for statement in ProjectionsProjection().ddl(wh.version):
        wh.command(statement)
    rows = population(tenant, seed=5) + late_events(tenant)
    wh.insert(TIMELINE, rows)  # as an earlier release wrote them: no contact events
    since, until, as_of = (
        to_micros(T0 + 5 * DAY),
        to_micros(T0 + 30 * DAY),
        to_micros(T0 + 40 * DAY),
    )
    ready = Backfilled(wh)
    before = read_fcr(wh, tenant, since, until, "day", as_of, MERGED, timeline=True)
    assert not ready() and before  # no contact events table yet: the route reads the timeline
    assert contact_events.backfill(wh, page=37) == len(rows)  # pages end inside a customer's rows
    assert ready() and backfilled(wh) and contact_events.backfill(wh) == 0  # once
    stored = stored_rows(wh, tenant)
    assert stored == sorted(
        ({k: v for k, v in r.items() if k != "tenant_id"} for r in to_contact_event_rows(rows)),
        key=lambda r: r["event_id"],
    )
    assert read_fcr(wh, tenant, since, until, "day", as_of, MERGED) == before
    ensure_tables(wh, [ProjectionsProjection()])  # a later start copies nothing again
    assert len(stored_rows(wh, tenant)) == len(rows)


def test_a_busy_range_of_contact_events_is_refused_rather_than_cut(wh: Warehouse) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    projected(wh, [timeline_row(tenant, "ana", T0 + i * DAY, "call.ended", "phone",
                                payload={}) for i in range(3)])  # fmt: skip
    since, until = to_micros(T0), to_micros(T0 + 3 * DAY)
    assert len(read_contact_events(wh, tenant, since, until, 3)["event_id"]) == 3
    with pytest.raises(RangeTooBusy):
        read_contact_events(wh, tenant, since, until, 2)


class CountingSelects:
    """A warehouse that counts the queries asked of it."""

    def __init__(self, inner: Warehouse) -> None:
        self.inner, self.selects = inner, 0

    def select(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.selects += 1
        return self.inner.select(sql, params)


def test_a_reader_asks_whether_the_backfill_is_done_until_it_is(any_warehouse: Warehouse) -> None:
    for statement in ProjectionsProjection().ddl(any_warehouse.version):
        any_warehouse.command(statement)
    counting = CountingSelects(any_warehouse)
    ready = Backfilled(counting)  # type: ignore[arg-type]  # only `select` is asked of it
    assert not ready() and not ready()
    asked = counting.selects
    assert asked >= 2  # each call asked while not done
    contact_events.backfill(any_warehouse)
    assert ready()
    asked = counting.selects
    assert ready() and ready() and counting.selects == asked  # done: not asked again


def test_the_route_reads_an_earlier_releases_timeline_until_its_contact_events_are_made(
    warehouse: ChdbWarehouse,
) -> None:
    app = FastAPI()
    kernel.api_errors.install(app)
    app.include_router(fcr_router)
    app.state.warehouse = warehouse
    app.state.keys = MemoryKeyStore()
    app.state.access_audit = MemoryAccessAudit()
    for statement in ProjectionsProjection().ddl(warehouse.version):
        warehouse.command(statement)
    warehouse.insert(TIMELINE, population("acme", seed=5))  # as an earlier release wrote them
    key = app.state.keys.create("acme", "manager")[1]
    params = {"since": (T0 + 5 * DAY).isoformat(), "until": (T0 + 30 * DAY).isoformat()}
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as manager:
        before = manager.get("/v1/service/fcr", params={**params, "bucket": "day"})
        assert before.status_code == 200 and before.json()["buckets"]
        assert not backfilled(warehouse)
        contact_events.backfill(warehouse)
        after = manager.get("/v1/service/fcr", params={**params, "bucket": "day"})
    assert after.status_code == 200
    assert after.json()["buckets"] == before.json()["buckets"]
    assert app.state.contact_events_backfilled.done  # from now on, read without asking


def test_a_call_in_steps_is_its_answering_agents_on_both_reads(wh: Warehouse) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    # Twilio's callbacks: offered to q3, answered by eve in q4, ended naming neither.
    steps = [
        ("call.offered", T0, {"queue": "q3"}),
        ("call.answered", T0 + timedelta(minutes=1),
         {"agent": "eve", "queue": "q4", "queue_wait_s": 60}),
        ("call.ended", T0 + timedelta(minutes=9), {"resolved": True, "talk_s": 480}),
    ]  # fmt: skip
    projected(wh, [timeline_row(tenant, "ana", at, type_, "phone", correlation_id="call-1",
                                payload=payload) for type_, at, payload in steps])  # fmt: skip
    since, until, as_of = to_micros(T0), to_micros(T0 + DAY), to_micros(T0 + 30 * DAY)
    for timeline in (False, True):
        [cell] = read_fcr(wh, tenant, since, until, "total", as_of, timeline=timeline)
        assert (cell.queue, cell.agent, cell.contacts, cell.fcr_final) == ("q4", "eve", 1, 1)
