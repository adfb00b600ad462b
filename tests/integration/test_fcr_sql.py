"""fcr@1 read from the timeline table on chdb and on a ClickHouse server equals the pure rule over
the same events: the reads reach 7 days either side of the range, once per event, one tenant, a
merged customer's members as one customer, a case reopened as not FCR, nothing received after
as_of."""

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
from services.satisfaction.fcr_sql import RangeTooBusy, known_at, read_fcr, read_fcr_rows

T0 = datetime(2026, 3, 2, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def wh(any_warehouse: Warehouse) -> Warehouse:
    for statement in sql.ddl(any_warehouse.version):
        any_warehouse.command(statement)
    return any_warehouse


def timeline_row(tenant: str, customer: str, at: datetime, type_: str, channel: str,
                 received: datetime | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    raw = {"event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(), "type": type_,
           "channel": channel, "customer": {"customer_id": customer}, **extra}  # fmt: skip
    event, _ = accept(raw, tenant, received or at + timedelta(seconds=1))
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
                if rng.random() < 0.4:
                    rows.append(timeline_row(tenant, customer, at + 3 * DAY, "case.reopened",
                                             "other", payload=case))  # fmt: skip
    return rows


# Customers merged after their rows were filed: absorbed id -> survivor (the identity map's).
MERGED = {f"c{i}": f"c{i + 20}" for i in range(0, 20, 2)}


@pytest.mark.parametrize("bucket", ["day", "week", "total"])
def test_sql_cells_equal_the_pure_rule(wh: Warehouse, bucket: str) -> None:
    tenant, other = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    rows = population(tenant, seed=11)
    wh.insert(TIMELINE, rows + population(other, seed=12))
    wh.insert(TIMELINE, rows[:40])  # a reprocessed batch
    since, until = to_micros(T0 + 10 * DAY), to_micros(T0 + 25 * DAY)
    as_of = to_micros(T0 + 30 * DAY)  # the range's last week still provisional in part
    contacts = fcr_contacts((r for r in rows if known_at(r, as_of)), MERGED)
    expected = to_cells(contacts, outcomes(contacts, as_of), since, until, bucket)
    found = read_fcr(wh, tenant, since, until, bucket, as_of, MERGED, timeline=True)
    assert found == expected
    unmerged = read_fcr(wh, tenant, since, until, bucket, as_of, timeline=True)
    assert found != unmerged  # the merges count
    assert sum(c.resolved_first_contacts for c in found) > 10
    assert (
        any(c.fcr_final for c in found)
        and any(c.fcr_provisional for c in found)
        and any(c.repeated for c in found)
    )


def resolved_call(tenant: str, customer: str) -> dict[str, Any]:
    """A call of T0 that its agent marked resolved: a first contact on the first day."""
    return timeline_row(tenant, customer, T0, "call.ended", "phone",
                        payload={"resolved": True, "topic": "billing"})  # fmt: skip


def first_day_cell(wh: Warehouse, tenant: str, as_of: datetime) -> tuple[int, int, int]:
    """(provisional, final, repeated) of the first day's one cell, as of `as_of`."""
    since, until = to_micros(T0), to_micros(T0 + DAY)
    [c] = read_fcr(wh, tenant, since, until, "total", to_micros(as_of), timeline=True)
    return c.fcr_provisional, c.fcr_final, c.repeated


def test_fcr_moves_from_provisional_to_final_when_the_window_closes(wh: Warehouse) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    call = resolved_call(tenant, "ana")
    wh.insert(TIMELINE, [call])
    assert first_day_cell(wh, tenant, T0 + 7 * DAY) == (1, 0, 0)
    assert first_day_cell(wh, tenant, T0 + 7 * DAY + timedelta(microseconds=1)) == (0, 1, 0)
    again = timeline_row(tenant, "ana", T0 + 7 * DAY, "message.received", "chat",
                         received=T0 + 7 * DAY, payload={"text": "still wrong"})  # fmt: skip
    wh.insert(TIMELINE, [again])
    assert first_day_cell(wh, tenant, T0 + 7 * DAY + timedelta(microseconds=1)) == (0, 0, 1)
    # As of a moment before the chat was stored, it is not known: the call was FCR so far.
    assert first_day_cell(wh, tenant, T0 + 7 * DAY - timedelta(microseconds=1)) == (1, 0, 0)


def test_a_merged_customer_is_one_and_a_reopened_case_is_not_fcr(wh: Warehouse) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    # Ana's call, filed under her phone's customer; her email two days later, filed under her
    # email's customer; the two merged afterwards. Leo's emailed case, resolved, then reopened.
    call = resolved_call(tenant, "ana-phone")
    mail = timeline_row(tenant, "ana-mail", T0 + 2 * DAY, "email.replied", "email",
                        payload={"message_id": "m1"})  # fmt: skip
    case = {"case_id": "K1", "topic": "refund"}
    leo = [timeline_row(tenant, "leo", T0 + timedelta(hours=1), "case.opened", "email",
                        payload=case),
           timeline_row(tenant, "leo", T0 + DAY, "case.resolved", "other", payload=case),
           timeline_row(tenant, "leo", T0 + 2 * DAY, "case.reopened", "other", payload=case)]  # fmt: skip
    wh.insert(TIMELINE, [call, mail, *leo])
    since, until, as_of = to_micros(T0), to_micros(T0 + DAY), to_micros(T0 + 30 * DAY)
    [cell] = [
        c
        for c in read_fcr(
            wh, tenant, since, until, "total", as_of, {"ana-phone": "ana-mail"}, timeline=True
        )
        if c.channel == "phone"
    ]
    assert (cell.resolved_first_contacts, cell.fcr_final, cell.repeated) == (1, 0, 1)
    [mailed] = [c for c in read_fcr(wh, tenant, since, until, "total", as_of, timeline=True)
                if c.channel == "email"]  # fmt: skip
    assert (mailed.resolved_first_contacts, mailed.fcr_final, mailed.repeated) == (1, 0, 1)


def test_an_event_received_after_as_of_is_not_read(wh: Warehouse) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    call = resolved_call(tenant, "ana")
    # A chat of day 2, received on day 9 (a late event): as of day 8 it was not known.
    late = timeline_row(tenant, "ana", T0 + 2 * DAY, "message.received", "chat",
                        received=T0 + 9 * DAY, payload={"text": "still wrong"})  # fmt: skip
    wh.insert(TIMELINE, [call, late])
    assert first_day_cell(wh, tenant, T0 + 8 * DAY) == (0, 1, 0)
    assert first_day_cell(wh, tenant, T0 + 9 * DAY + timedelta(seconds=1)) == (0, 0, 1)


def test_a_busy_range_is_refused_rather_than_cut(wh: Warehouse) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    wh.insert(TIMELINE, [timeline_row(tenant, "ana", T0 + i * DAY, "call.ended", "phone",
                                      payload={}) for i in range(3)])  # fmt: skip
    assert len(read_fcr_rows(wh, tenant, to_micros(T0), to_micros(T0 + 3 * DAY), 3)) == 3
    with pytest.raises(RangeTooBusy):
        read_fcr_rows(wh, tenant, to_micros(T0), to_micros(T0 + 3 * DAY), 2)
