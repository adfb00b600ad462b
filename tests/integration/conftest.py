"""The integration tests use the real engines' fixtures registered by tests/conftest.py
(`kafka_bootstrap`, `clickhouse_url`, `postgres_dsn` (session) and `clickhouse_warehouse`): locally a
test skips without the engine, under CI it fails."""

from __future__ import annotations

import pytest

from kernel.ports import Warehouse


@pytest.fixture(params=["chdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def any_warehouse(request: pytest.FixtureRequest) -> Warehouse:
    """A fresh database on chdb, then on a ClickHouse server (18.16 where the CI provisions it):
    the same test runs on both."""
    fixture = "warehouse" if request.param == "chdb" else "clickhouse_warehouse"
    warehouse: Warehouse = request.getfixturevalue(fixture)
    return warehouse
