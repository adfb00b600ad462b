"""fcr@1 read from the timeline table on chdb and on a ClickHouse server equals the pure rule over
the same events: the reads reach 7 days either side of the range, once per event, one tenant."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kernel.ports import Warehouse
from kernel.processing import to_micros
from schemas.validate import accept
from services.projections import sql
from services.projections.sql import TIMELINE
from services.projections.timeline import to_timeline_rows
from services.satisfaction.fcr import fcr_contacts, outcomes
from services.satisfaction.fcr_cells import to_cells
from services.satisfaction.fcr_sql import RangeTooBusy, read_fcr_cells, read_fcr_rows

T0 = datetime(2026, 3, 2, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def wh(any_warehouse: Warehouse) -> Warehouse:
    for statement in sql.ddl(any_warehouse.version):
        any_warehouse.command(statement)
    return any_warehouse


def timeline_row(tenant: str, customer: str, at: datetime, type_: str, channel: str,
                 **extra: Any) -> dict[str, Any]:  # fmt: skip
    raw = {"event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(), "type": type_,
           "channel": channel, "customer": {"customer_id": customer}, **extra}  # fmt: skip
    event, _ = accept(raw, tenant, at + timedelta(seconds=1))
    [row] = to_timeline_rows(event, customer)
    return row


def population(tenant: str, seed: int) -> list[dict[str, Any]]:
    """Calls, chats and emailed cases of 40 customers over 40 days, some resolved, some repeated."""
    rng = random.Random(seed)
    rows = []
    for i in range(160):
        customer, at = f"c{rng.randrange(40)}", T0 + timedelta(minutes=rng.randrange(40 * 1440))
        topic = rng.choice(["billing", "delivery", None])
        who = {"agent": rng.choice(["ann", "bob"]), "queue": rng.choice(["q1", "q2"])}
        kind = rng.randrange(3)
        if kind == 0:
            payload = {"resolved": rng.random() < 0.7, **who} | ({"topic": topic} if topic else {})
            rows.append(timeline_row(tenant, customer, at, "call.ended", "phone", payload=payload,
                                     touchpoint="support_line"))  # fmt: skip
        elif kind == 1:
            chat = {"correlation_id": f"chat-{i}", "touchpoint": "live_chat"}
            rows.append(timeline_row(tenant, customer, at, "message.received", "chat",
                                     payload={"text": "hi", **who}, **chat))  # fmt: skip
            if rng.random() < 0.6:
                case = {"case_id": f"K{i}"} | ({"topic": topic} if topic else {})
                rows.append(timeline_row(tenant, customer, at + timedelta(minutes=5),
                                         "case.resolved", "chat", payload=case, **chat))  # fmt: skip
        else:
            case = {"case_id": f"K{i}", "topic": topic or "billing"}
            rows.append(timeline_row(tenant, customer, at, "case.opened", "email", payload=case,
                                     touchpoint="support_mail"))  # fmt: skip
            if rng.random() < 0.6:
                rows.append(timeline_row(tenant, customer, at + 2 * DAY, "case.resolved", "other",
                                         payload=case))  # fmt: skip
    return rows


@pytest.mark.parametrize("bucket", ["day", "week", "total"])
def test_sql_cells_equal_the_pure_rule(wh: Warehouse, bucket: str) -> None:
    tenant, other = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    rows = population(tenant, seed=11)
    wh.insert(TIMELINE, rows + population(other, seed=12))
    wh.insert(TIMELINE, rows[:40])  # a reprocessed batch
    since, until = to_micros(T0 + 10 * DAY), to_micros(T0 + 25 * DAY)
    as_of = to_micros(T0 + 30 * DAY)  # the range's last week still provisional in part
    contacts = fcr_contacts(r for r in rows if r["derived_at"] <= as_of)
    expected = to_cells(contacts, outcomes(contacts, as_of), since, until, bucket)
    found = read_fcr_cells(wh, tenant, since, until, bucket, as_of)
    assert found == expected
    assert sum(c.resolved_first_contacts for c in found) > 10
    assert (
        any(c.fcr_final for c in found)
        and any(c.fcr_provisional for c in found)
        and any(c.repeated for c in found)
    )


def test_fcr_moves_from_provisional_to_final_when_the_window_closes(wh: Warehouse) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    call = timeline_row(tenant, "ana", T0, "call.ended", "phone",
                        payload={"resolved": True, "topic": "billing"})  # fmt: skip
    wh.insert(TIMELINE, [call])
    since, until = to_micros(T0), to_micros(T0 + DAY)

    def cell(as_of: datetime) -> tuple[int, int, int]:
        [c] = read_fcr_cells(wh, tenant, since, until, "total", to_micros(as_of))
        return c.fcr_provisional, c.fcr_final, c.repeated

    assert cell(T0 + 7 * DAY) == (1, 0, 0)
    assert cell(T0 + 7 * DAY + timedelta(microseconds=1)) == (0, 1, 0)
    again = timeline_row(tenant, "ana", T0 + 7 * DAY, "message.received", "chat",
                         payload={"text": "still wrong"})  # fmt: skip
    wh.insert(TIMELINE, [again])
    assert cell(T0 + 7 * DAY + timedelta(microseconds=1)) == (0, 0, 1)
    # As of a moment before the chat was stored, it is not known: the call was FCR so far.
    assert cell(T0 + 7 * DAY - timedelta(microseconds=1)) == (1, 0, 0)


def test_a_busy_range_is_refused_rather_than_cut(wh: Warehouse) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    wh.insert(TIMELINE, [timeline_row(tenant, "ana", T0 + i * DAY, "call.ended", "phone",
                                      payload={}) for i in range(3)])  # fmt: skip
    assert len(read_fcr_rows(wh, tenant, to_micros(T0), to_micros(T0 + 3 * DAY), 3)) == 3
    with pytest.raises(RangeTooBusy):
        read_fcr_rows(wh, tenant, to_micros(T0), to_micros(T0 + 3 * DAY), 2)
