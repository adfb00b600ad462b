"""The customer search's SQL (`services.projections.search`) on chdb and on a ClickHouse server:
a name typed with accents finds the email that spells it, every word is needed, a phone is found
whatever way it is typed, and one tenant never finds another's customers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cem.runner import ensure_tables
from kernel.ports import Warehouse
from schemas.validate import accept
from services.projections.projection import ProjectionsProjection
from services.projections.search import last_contacts, search_hits
from services.projections.sql import IDENTIFIERS, PROFILE_FACTS, TIMELINE

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ANA = {"customer_id": "cust-ana", "email": "maria.garcia@shop.es", "phone": "+34 600 111 222"}


@pytest.fixture(params=["chdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def wh(request: pytest.FixtureRequest) -> Warehouse:
    fixture = "warehouse" if request.param == "chdb" else "clickhouse_warehouse"
    warehouse: Warehouse = request.getfixturevalue(fixture)
    ensure_tables(warehouse, [ProjectionsProjection()])
    return warehouse


def store(
    warehouse: Warehouse, tenant_id: str, customer: dict[str, Any], at: datetime = T0
) -> None:
    raw = {"event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(), "type": "page.viewed",
           "channel": "web", "customer": customer, "payload": {"url": "https://x.io"}}  # fmt: skip
    event, _ = accept(raw, tenant_id, at + timedelta(seconds=1))
    rows = ProjectionsProjection().rows(event)
    for table in (IDENTIFIERS, TIMELINE, PROFILE_FACTS):  # what the search reads
        warehouse.insert(table, rows[table])


@pytest.mark.parametrize(
    "typed, found",
    [
        ("María García", True),
        ("GARCÍA maria", True),
        ("García, María.", True),  # surnames first, as lists write names (was not found)
        ("600 111 222", True),
        ("0034 600 111 222", True),  # `00` for `+`, as people in Spain write it (was not found)
        ("(+34) 600-111-222", True),
        ("garcia@", True),
        ("María Pérez", False),  # every word is needed
        ("600 999", False),
    ],
)
def test_a_search_finds_what_an_agent_types_in_its_tenant_only(
    wh: Warehouse, typed: str, found: bool
) -> None:
    tenant, other = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    store(wh, tenant, ANA)
    store(wh, other, {**ANA, "customer_id": "cust-other"})
    customers = {hit.customer_id for hit in search_hits(wh, tenant, typed)}
    assert customers == ({"cust-ana"} if found else set())


def test_a_name_is_answered_as_the_touchpoints_wrote_it(wh: Warehouse) -> None:
    # The index keeps names folded (`lucia perez gomez`): results showed them so, without the
    # accents the customer's header shows (found by a review).
    tenant = f"t{uuid.uuid4().hex[:8]}"
    raw = {"event_id": str(uuid.uuid4()), "occurred_at": T0.isoformat(), "type": "order.placed",
           "channel": "web", "customer": {"customer_id": "cust-lucia"},
           "payload": {"order_id": "o-1", "amount": "10", "currency": "EUR",
                       "attributes": {"name": "Lucía Pérez Gómez"}}}  # fmt: skip
    event, _ = accept(raw, tenant, T0 + timedelta(seconds=1))
    rows = ProjectionsProjection().rows(event)
    for table in (IDENTIFIERS, TIMELINE, PROFILE_FACTS):
        wh.insert(table, rows[table])
    names = [h.value for h in search_hits(wh, tenant, "lucia perez") if h.kind == "name"]
    assert names == ["Lucía Pérez Gómez"]


def test_a_customers_last_contact_is_its_latest_members(wh: Warehouse) -> None:
    # A merged customer's last touchpoint may be its absorbed member's; another tenant's and a
    # customer with no touchpoint count for nothing.
    tenant, other = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    store(wh, tenant, {"customer_id": "c-1"}, T0)
    store(wh, tenant, {"customer_id": "c-2"}, T0 + timedelta(days=3))  # absorbed into c-1
    store(wh, tenant, {"customer_id": "c-3"}, T0 + timedelta(days=1))
    store(wh, other, {"customer_id": "c-3"}, T0 + timedelta(days=9))
    groups = {"c-1": ["c-1", "c-2"], "c-3": ["c-3"], "c-9": ["c-9"]}
    assert last_contacts(wh, tenant, groups) == {
        "c-1": T0 + timedelta(days=3),
        "c-3": T0 + timedelta(days=1),
    }
    assert last_contacts(wh, tenant, {}) == {}
