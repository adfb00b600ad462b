"""A timeline page and its repeat-contact flags in one query (`timeline_page_sql`), on chdb and on
a ClickHouse server: the same pages and flags as the page read and `flag_repeats` read apart, for
random histories of several members with conversations, copies not merged yet and filters."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from kernel.ports import Warehouse
from services.projections import sql
from services.projections.repeat_contact_sql import flag_repeats
from services.projections.sql import TIMELINE, read_timeline
from services.projections.timeline import TimelineFilter, TimelinePage, decode_cursor, from_micros
from services.projections.timeline_page_sql import read_flagged_page
from tests.integration.test_repeat_contact_sql import MEMBERS, timeline_row

SHAPES: list[tuple[str, str, dict[str, Any]]] = [
    ("message.received", "chat", {"text": "hi"}),
    ("message.sent", "chat", {"text": "hello", "sender": "agent"}),
    ("message.sent", "chat", {"text": "me again", "sender": "customer"}),
    ("call.offered", "phone", {"queue": "q1"}),
    ("call.ended", "phone", {"direction": "outbound"}),
    ("call.ended", "phone", {}),
    ("store.visited", "store", {"store_id": "S1"}),
    ("page.viewed", "web", {"url": "https://x.io"}),
]


@pytest.fixture(params=["chdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def wh(request: pytest.FixtureRequest) -> Warehouse:
    fixture = "warehouse" if request.param == "chdb" else "clickhouse_warehouse"
    warehouse: Warehouse = request.getfixturevalue(fixture)
    for statement in sql.ddl(warehouse.version):
        warehouse.command(statement)
    return warehouse


def history(tenant: str, rng: random.Random, n: int) -> list[dict[str, Any]]:
    """n events of the members over ~60 days, in bursts (repeats within a week and not), some in
    conversations that span days."""
    rows, hours = [], 0.0
    for _ in range(n):
        hours += rng.choice([0.5, 3, 30, 24 * 5, 24 * 9])
        type_, channel, payload = rng.choice(SHAPES)
        extra: dict[str, Any] = {"payload": payload}
        if channel in ("chat", "phone") and rng.random() < 0.7:
            extra["correlation_id"] = f"{channel}-{rng.randrange(6)}"
        rows.append(timeline_row(tenant, rng.choice(MEMBERS), hours, type_, channel, **extra))
    return rows


def two_queries(
    wh: Warehouse, tenant: str, filters: TimelineFilter, cursor: Any, limit: int
) -> TimelinePage | None:
    page = read_timeline(wh, tenant, MEMBERS, filters, cursor, limit)
    if page is None:
        return None
    return page.model_copy(update={"entries": flag_repeats(wh, tenant, MEMBERS, page.entries)})


def every_page(wh: Warehouse, tenant: str, filters: TimelineFilter, limit: int) -> int:
    """Walks the pages of both reads side by side; returns how many entries carried a flag."""
    cursor, flags = None, 0
    while True:
        one = read_flagged_page(wh, tenant, MEMBERS, filters, cursor, limit)
        assert one == two_queries(wh, tenant, filters, cursor, limit)
        assert one is not None
        flags += sum(e.repeat_of is not None for e in one.entries)
        if one.next_cursor is None:
            return flags
        cursor = decode_cursor(one.next_cursor)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_query_pages_and_flags_equal_the_two_reads(wh: Warehouse, seed: int) -> None:
    rng, tenant = random.Random(seed), f"t{uuid.uuid4().hex[:8]}"
    rows = history(tenant, rng, 70)
    wh.insert(TIMELINE, rows)
    wh.insert(TIMELINE, rng.sample(rows, 20))  # a reprocessed batch, not merged yet
    flags = 0
    for limit in (2, 9, 50):
        flags += every_page(wh, tenant, TimelineFilter(), limit)
    assert flags  # the histories do hold repeats
    chats = TimelineFilter.of(["chat"], (), None, None)
    since = TimelineFilter.of((), ["call.*", "store.visited"], from_micros(rows[40]["derived_at"]))
    for filters in (chats, since):
        every_page(wh, tenant, filters, 5)


def test_a_page_without_contacts_and_an_unknown_customer(wh: Warehouse) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    view = timeline_row(tenant, MEMBERS[0], 1, "page.viewed", "web", payload={"url": "https://x"})
    wh.insert(TIMELINE, [view])
    page = read_flagged_page(wh, tenant, MEMBERS)
    assert page is not None and [e.event_id for e in page.entries] == [view["event_id"]]
    assert read_flagged_page(wh, tenant, ["nobody"]) is None
    assert read_flagged_page(wh, f"t{uuid.uuid4().hex[:8]}", MEMBERS) is None
