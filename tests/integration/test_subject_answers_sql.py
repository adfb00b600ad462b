"""A customer's stored survey answers and text sentiment (`subject_sql`), on chdb and on a
ClickHouse server: every member's rows once, newest first, page after page, nobody else's."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from kernel.ports import Warehouse
from services.satisfaction import sentiment_sql, sql
from services.satisfaction.sql import RESPONSES_TABLE
from services.satisfaction.subject_sql import (
    NEWEST,
    SENTIMENT,
    customer_pages,
    read_customer_answers,
)
from services.satisfaction.texts import TEXT_SENTIMENT_TABLE


@pytest.fixture(params=["chdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def wh(request: pytest.FixtureRequest) -> Warehouse:
    fixture = "warehouse" if request.param == "chdb" else "clickhouse_warehouse"
    warehouse: Warehouse = request.getfixturevalue(fixture)
    for statement in [*sql.ddl(warehouse.version), *sentiment_sql.ddl(warehouse.version)]:
        warehouse.command(statement)
    return warehouse


def answer(tenant_id: str, customer_id: str, answered_at: int) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "event_id": str(uuid.uuid4()),
        "customer_id": customer_id,
        "survey_id": "",
        "kind": random.choice(["csat", "nps", "ces"]),
        "score": random.randint(1, 5),
        "scale": "1-5",
        "touchpoint": "support_line",
        "channel": "phone",
        "correlation_id": "",
        "answered_at": answered_at,
        "comment": "",
    }


def test_pages_hold_each_members_answer_once_newest_first(wh: Warehouse) -> None:
    tenant, other = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    members = ["email:ana@x.io", "phone:+34600000001"]
    # Several answers at the same instant, so a page boundary falls between equal times.
    times = [1_700_000_000_000_000 + (i // 3) * 1_000_000 for i in range(11)]
    theirs = [answer(tenant, random.choice(members), at) for at in times]
    others = [answer(tenant, "email:eva@x.io", times[0]), answer(other, members[0], times[0])]
    wh.insert(RESPONSES_TABLE, theirs + others)
    wh.insert(RESPONSES_TABLE, theirs[:4])  # a reprocessed batch

    found, before = [], NEWEST
    while page := read_customer_answers(wh, tenant, members, before, limit=4):
        found += page
        before = (int(page[-1]["answered_at"]), page[-1]["event_id"])
    expected = sorted(theirs, key=lambda r: (r["answered_at"], r["event_id"]), reverse=True)
    assert [r["event_id"] for r in found] == [r["event_id"] for r in expected]
    assert {k: found[0][k] for k in expected[0] if k != "tenant_id"} == {
        k: v for k, v in expected[0].items() if k != "tenant_id"
    }


def scored(tenant_id: str, customer_id: str, written_at: int) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "event_id": str(uuid.uuid4()),
        "customer_id": customer_id,
        "type": "message.received",
        "field": "text",
        "touchpoint": "chat",
        "channel": "chat",
        "correlation_id": "",
        "written_at": written_at,
        "language": "en",
        "label": random.choice(["negative", "neutral", "positive"]),
        "score": 0.25,
        "model": "vaderSentiment",
        "model_version": "3.3.2",
    }


def test_the_sentiment_of_a_customers_texts_pages_like_the_answers(wh: Warehouse) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    members = ["email:ana@x.io", "phone:+34600000001"]
    times = [1_700_000_000_000_000 + (i // 3) * 1_000_000 for i in range(11)]
    theirs = [scored(tenant, random.choice(members), at) for at in times]
    wh.insert(TEXT_SENTIMENT_TABLE, [*theirs, scored(tenant, "email:eva@x.io", times[0])])
    wh.insert(TEXT_SENTIMENT_TABLE, theirs[:4])  # a reprocessed batch
    pages = list(customer_pages(wh, SENTIMENT, tenant, members, 4))
    assert [len(p) for p in pages] == [4, 4, 3]
    expected = sorted(theirs, key=lambda r: (r["written_at"], r["event_id"]), reverse=True)
    assert [r["event_id"] for p in pages for r in p] == [r["event_id"] for r in expected]
