"""Retention on the warehouse, on chdb and on a ClickHouse 18.16 server: the tenant's rows older
than the cutoff go from every listed table, newer rows and other tenants' rows stay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cem.projection_set import default_projections
from cem.retention import WAREHOUSE_TABLES, Policy, RetainedTable, to_micros
from cem.retention_apply import apply_policy
from cem.runner import ensure_tables
from kernel.ports import Warehouse

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
OLD, RECENT = NOW - timedelta(days=40), NOW - timedelta(days=5)


@pytest.fixture(params=["chdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def wh(request: pytest.FixtureRequest) -> Warehouse:
    fixture = "warehouse" if request.param == "chdb" else "clickhouse_warehouse"
    warehouse: Warehouse = request.getfixturevalue(fixture)
    ensure_tables(warehouse, default_projections())
    return warehouse


def _blank(type_: str) -> Any:
    if type_.startswith("Array"):
        return []
    return "" if type_.startswith(("String", "FixedString")) else 0


def row(wh: Warehouse, table: RetainedTable, tenant: str, at: datetime) -> dict[str, Any]:
    columns = wh.select(
        "SELECT name, type FROM system.columns "
        "WHERE database = currentDatabase() AND table = {table:String}",
        {"table": table.name},
    )
    values = {c["name"]: _blank(c["type"]) for c in columns}
    values[table.time_column] = to_micros(at)
    if "tenant_id" in values:
        values["tenant_id"] = tenant
    if "event_id" in values:
        values["event_id"] = str(uuid.uuid4())
    if table.name == "dead_letters":
        values.update(key=f"{tenant}/cust-1", offset=hash(uuid.uuid4()) % 10**9)
    return values


def ages(wh: Warehouse, table: RetainedTable, tenant: str, prefix: str) -> list[int]:
    match = "tenant_id = {t:String}" if table.name != "dead_letters" else "key LIKE {p:String}"
    rows = wh.select(
        f"SELECT {table.time_column} AS at FROM {table.name} WHERE {match} ORDER BY at",
        {"t": tenant, "p": f"{prefix}/%"},
    )
    return [int(r["at"]) for r in rows]


def test_deletes_the_tenants_old_rows_from_every_table_only(wh: Warehouse) -> None:
    tenant, other = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    for table in WAREHOUSE_TABLES:
        wh.insert(
            table.name, [row(wh, table, t, at) for t in (tenant, other) for at in (OLD, RECENT)]
        )
    policy = Policy(tenant, events_days=30, projections_days=30)

    dry = apply_policy(policy, wh, None, now=NOW, where="test", dry_run=True)
    assert dry.counts == {t.name: 1 for t in WAREHOUSE_TABLES}
    assert all(
        ages(wh, t, tenant, tenant) == [to_micros(OLD), to_micros(RECENT)] for t in WAREHOUSE_TABLES
    )

    run = apply_policy(policy, wh, None, now=NOW, where="test")
    assert run.counts == dry.counts
    assert run.projections_cutoff == run.events_cutoff == NOW - timedelta(days=30)
    for table in WAREHOUSE_TABLES:
        assert ages(wh, table, tenant, tenant) == [to_micros(RECENT)], table.name
        assert ages(wh, table, other, other) == [to_micros(OLD), to_micros(RECENT)], table.name


def test_each_kind_follows_its_own_days_and_none_keeps_everything(wh: Warehouse) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    for table in WAREHOUSE_TABLES:
        wh.insert(table.name, [row(wh, table, tenant, OLD)])
    run = apply_policy(Policy(tenant, events_days=30), wh, None, now=NOW, where="test")
    assert run.counts == {"dead_letters": 1}
    for table in WAREHOUSE_TABLES:
        assert len(ages(wh, table, tenant, tenant)) == (0 if table.kind == "events" else 1)
    nothing = apply_policy(Policy(tenant), wh, None, now=NOW, where="test")
    assert nothing.counts == {} and nothing.events_cutoff is None


def test_a_tenant_whose_id_prefixes_another_keeps_its_dead_letters(wh: Warehouse) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    longer = f"{tenant}x"
    [dead] = [t for t in WAREHOUSE_TABLES if t.name == "dead_letters"]
    wh.insert(dead.name, [row(wh, dead, tenant, OLD), row(wh, dead, longer, OLD)])
    apply_policy(Policy(tenant, events_days=1), wh, None, now=NOW, where="test")
    assert ages(wh, dead, longer, longer) == [to_micros(OLD)]
    assert ages(wh, dead, tenant, tenant) == []
