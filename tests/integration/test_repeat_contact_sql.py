"""The repeat-contact reads (`repeat_contact_sql`) on chdb and on a ClickHouse server: every member's
contacts, once each, with the conversations that started before the range, nobody else's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kernel.ports import Warehouse
from schemas.validate import accept
from services.projections import sql
from services.projections.repeat_contact_sql import (
    flag_repeats,
    read_contact_rows,
    read_repeat_contact,
)
from services.projections.sql import TIMELINE
from services.projections.timeline import entry_from_row, to_timeline_rows

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MEMBERS = ["email:ana@x.io", "phone:+34600000001"]


@pytest.fixture(params=["chdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def wh(request: pytest.FixtureRequest) -> Warehouse:
    fixture = "warehouse" if request.param == "chdb" else "clickhouse_warehouse"
    warehouse: Warehouse = request.getfixturevalue(fixture)
    for statement in sql.ddl(warehouse.version):
        warehouse.command(statement)
    return warehouse


def timeline_row(
    tenant_id: str, member: str, hours: float, type_: str, channel: str, **extra: Any
) -> dict[str, Any]:
    at = T0 + timedelta(hours=hours)
    raw = {"event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(), "type": type_,
           "channel": channel, "customer": {"customer_id": "c"}, **extra}  # fmt: skip
    event, _ = accept(raw, tenant_id, at + timedelta(seconds=1))
    [row] = to_timeline_rows(event, member)
    return row


def test_members_contacts_are_read_and_flagged_across_pages(wh: Warehouse) -> None:
    tenant, other = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    ana_email, ana_phone = MEMBERS
    chat = {"correlation_id": "chat-1", "payload": {"text": "hello?"}}
    rows = [
        # A chat that began more than a week before the range and goes on inside it.
        timeline_row(tenant, ana_email, 0, "message.received", "chat", **chat),
        timeline_row(tenant, ana_email, 9 * 24, "message.received", "chat", **chat),
        timeline_row(tenant, ana_phone, 9 * 24 + 1, "call.ended", "phone", payload={}),
        timeline_row(
            tenant, ana_email, 9 * 24 + 2, "page.viewed", "web", payload={"url": "https://x.io"}
        ),
        timeline_row(
            tenant, ana_email, 10 * 24, "store.visited", "store", payload={"store_id": "S1"}
        ),
    ]
    strangers = [
        timeline_row(tenant, "email:eva@x.io", 9 * 24 + 3, "call.ended", "phone", payload={}),
        timeline_row(other, ana_email, 9 * 24 + 3, "call.ended", "phone", payload={}),
    ]
    wh.insert(TIMELINE, rows + strangers)
    wh.insert(TIMELINE, rows[:2])  # a reprocessed batch
    ids = [r["event_id"] for r in rows]

    since, until = rows[1]["derived_at"], rows[4]["derived_at"]
    found = read_contact_rows(wh, tenant, MEMBERS, since, until)
    assert sorted(r["event_id"] for r in found) == sorted([ids[0], ids[1], ids[2], ids[4]])

    # The call came an hour after a chat message, but that chat began nine days before.
    entries = [entry_from_row(r) for r in rows[1:]]
    flagged = {e.event_id: e.repeat_of for e in flag_repeats(wh, tenant, MEMBERS, entries)}
    assert flagged == {ids[1]: None, ids[2]: None, ids[3]: None, ids[4]: ids[2]}
    only_newest = flag_repeats(wh, tenant, MEMBERS, entries[-1:])
    assert [e.repeat_of for e in only_newest] == [ids[2]]

    latest = read_repeat_contact(wh, tenant, MEMBERS)
    assert latest is not None
    assert (latest.contact.event_id, latest.earlier.event_id) == (ids[4], ids[2])
    assert read_repeat_contact(wh, tenant, [ana_email]) is None
    assert read_repeat_contact(wh, tenant, ["nobody"]) is None
