"""What the stream hub watches for the console's header (`services/query_api/header_watch.py`),
on chdb and on a ClickHouse server (18.16): it changes when a later stage stores an alert, a
text's sentiment or a service fact for any member of the customer, and for no other customer;
one read gives every open stream's customers their own counts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cem.projection_set import default_projections
from cem.runner import ensure_tables
from kernel.ports import Warehouse
from services.query_api import header_watch
from services.query_api.header_watch import derived_by_member, derived_of, derived_of_customer
from services.satisfaction.sql import ALERTS_TABLE
from services.satisfaction.texts import TEXT_SENTIMENT_TABLE
from services.service_metrics.facts import SERVICE_EVENTS_TABLE


@pytest.fixture
def wh(any_warehouse: Warehouse) -> Warehouse:
    ensure_tables(any_warehouse, default_projections())
    return any_warehouse


def common(tenant: str, customer: str) -> dict[str, Any]:
    return {"tenant_id": tenant, "customer_id": customer, "event_id": str(uuid.uuid4()),
            "touchpoint": "line", "channel": "phone", "correlation_id": ""}  # fmt: skip


def alert(tenant: str, customer: str) -> dict[str, Any]:
    return {**common(tenant, customer), "alert_id": str(uuid.uuid4()), "rule": "at_risk.csat",
            "severity": "high", "metric": "csat", "score": 1, "scale": "1-5",
            "raised_at": 1, "message": "CSAT 1 (1-5): customer at risk"}  # fmt: skip


def sentiment(tenant: str, customer: str) -> dict[str, Any]:
    return {**common(tenant, customer), "type": "message.received", "field": "text",
            "written_at": 1, "language": "es", "label": "negative", "score": -0.9,
            "model": "m", "model_version": "1"}  # fmt: skip


def service(tenant: str, customer: str) -> dict[str, Any]:
    return {**common(tenant, customer), "type": "call.ended", "derived_at": 1, "agent": "ana",
            "queue": "", "sender": "", "direction": "", "queue_wait_s": 0.0, "handle_s": 60.0,
            "abandoned": 0, "survey_id": ""}  # fmt: skip


def test_it_changes_with_each_later_stages_rows_of_the_customers_members(wh: Warehouse) -> None:
    tenant, other = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    members = ["c-1", "c-2"]  # a merged customer: the absorbed member's rows count too
    seen = [derived_of(wh, tenant, members)]
    assert seen[0] == (("alerts", 0), ("service", 0), ("texts", 0))
    for table, row in (
        (ALERTS_TABLE, alert(tenant, "c-2")),
        (TEXT_SENTIMENT_TABLE, sentiment(tenant, "c-1")),
        (SERVICE_EVENTS_TABLE, service(tenant, "c-1")),
    ):
        wh.insert(table, [row])
        seen.append(derived_of(wh, tenant, members))
        assert seen[-1] != seen[-2], table
        wh.insert(table, [row])  # the same row stored again (a redelivery): no change
        assert derived_of(wh, tenant, members) == seen[-1], table
    assert seen[-1] == (("alerts", 1), ("service", 1), ("texts", 1))
    # Another customer's and another tenant's rows change nothing.
    wh.insert(ALERTS_TABLE, [alert(tenant, "c-3"), alert(other, "c-1")])
    wh.insert(TEXT_SENTIMENT_TABLE, [sentiment(other, "c-2")])
    assert derived_of(wh, tenant, members) == seen[-1]


def test_one_read_gives_each_tenants_members_their_own_counts_in_any_chunking(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stream hub reads every open stream's customers at once (stream.StreamHub).
    tenant, other = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    wh.insert(ALERTS_TABLE, [alert(tenant, "c-1"), alert(tenant, "c-1"), alert(other, "c-1")])
    wh.insert(TEXT_SENTIMENT_TABLE, [sentiment(tenant, "c-2")])
    wh.insert(SERVICE_EVENTS_TABLE, [service(other, "c-3")])
    keys = {(tenant, "c-1"), (tenant, "c-2"), (tenant, "c-3"), (other, "c-1"), (other, "c-3")}
    expected = {
        (tenant, "c-1"): {"alerts": 2},
        (tenant, "c-2"): {"texts": 1},
        (other, "c-1"): {"alerts": 1},
        (other, "c-3"): {"service": 1},
    }
    assert derived_by_member(wh, keys) == expected
    monkeypatch.setattr(header_watch, "MEMBERS_PER_QUERY", 2)  # c-1, c-2 | c-3
    assert derived_by_member(wh, keys) == expected
    # A customer's value sums its members' counts; a member without rows counts nothing.
    assert derived_of_customer(expected, tenant, ["c-1", "c-2", "c-3"]) == (
        ("alerts", 2), ("service", 0), ("texts", 1),
    )  # fmt: skip
