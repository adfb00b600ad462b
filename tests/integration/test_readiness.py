"""Readiness and outages as a client sees them: `/ready` reports each dependency (200 when all
answer, else 503 naming the one that does not), and a read during a warehouse outage is a 503 in
the one JSON error shape with Retry-After, never a text/plain 500.

Distributed: the real query API on ClickHouse and the real ingest on Kafka and PostgreSQL, with the
engine SIGKILLed and restarted (engines this session started; under CI the test fails otherwise).
Embedded: the `cem up` app on SQLite and chdb; chdb runs inside the process and cannot be stopped
alone, so its outage is a warehouse twin raising what the adapters raise (WarehouseUnavailable).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.adapters.clickhouse_warehouse import ClickHouseWarehouse
from cem.adapters.memory_access_audit import MemoryAccessAudit
from cem.adapters.memory_calendars import MemoryCalendarStore
from cem.adapters.memory_keys import MemoryKeyStore
from cem.adapters.memory_log import MemoryLog, MemoryPublisher
from cem.adapters.memory_users import MemoryUserStore
from cem.bootstrap import build
from cem.distributed import build_ingest, build_query_api
from cem.runner import ensure_tables
from kernel.ports import WarehouseUnavailable
from kernel.settings import IngestSettings, QuerySettings
from services.projections.projection import ProjectionsProjection
from tests.engines import Engines
from tests.events import BUCKET_KEY, event

TIMELINE = "/v1/customers/cust-1/timeline"


def eventually(check: Callable[[], bool], what: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s}s: {what}")
        time.sleep(0.5)


def assert_unavailable(response: httpx.Response, code: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"]["code"] == code


def assert_ready(client: TestClient, checks: set[str]) -> None:
    answer = client.get("/ready")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "ready", "checks": dict.fromkeys(checks, "ok")}


def not_ready(client: TestClient, failing: str) -> bool:
    answer = client.get("/ready")
    body = answer.json()
    return answer.status_code == 503 and body["checks"][failing].startswith("unavailable")


# --- distributed ------------------------------------------------------------------------------
@pytest.mark.clickhouse
@pytest.mark.slow
def test_the_query_api_answers_503_json_and_is_not_ready_while_clickhouse_is_down(
    engines: Engines, clickhouse_warehouse: ClickHouseWarehouse
) -> None:
    engines.restart("clickhouse")  # fails under CI unless this session started it
    ensure_tables(clickhouse_warehouse, [ProjectionsProjection()])
    keys = MemoryKeyStore()
    secret = keys.create("acme", "agent")[1]
    service = build_query_api(
        QuerySettings(mode="distributed", identity="rule"),
        warehouse=clickhouse_warehouse,
        keys=keys,
        users=MemoryUserStore(),  # this test is about ClickHouse: no PostgreSQL behind it
        access_audit=MemoryAccessAudit(),
        publisher=MemoryPublisher(MemoryLog()),
        bucket_key=BUCKET_KEY,
        calendars=MemoryCalendarStore(),
    )
    auth = {"Authorization": f"Bearer {secret}"}
    try:
        with TestClient(service.app) as client:
            assert_ready(client, {"warehouse", "access_audit"})
            assert client.get(TIMELINE, headers=auth).status_code == 404
            engines.kill("clickhouse")
            try:
                assert_unavailable(client.get(TIMELINE, headers=auth), "warehouse_unavailable")
                assert not_ready(client, "warehouse")
                assert client.get("/health").status_code == 200  # alive all the same
            finally:
                engines.restart("clickhouse")
            eventually(lambda: client.get("/ready").status_code == 200, "ready again")
            assert client.get(TIMELINE, headers=auth).status_code == 404
    finally:
        service.close()


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.slow
def test_the_ingest_is_not_ready_while_kafka_is_down(
    engines: Engines, kafka_bootstrap: str, postgres_dsn: str
) -> None:
    engines.restart("kafka")  # fails under CI unless this session started it
    settings = IngestSettings(
        mode="distributed",
        kafka_bootstrap=kafka_bootstrap,
        postgres_dsn=SecretStr(postgres_dsn),
        publish_timeout_s=1.5,
    )
    service = build_ingest(settings, keys=MemoryKeyStore())
    try:
        with TestClient(service.app) as client:
            eventually(lambda: client.get("/ready").status_code == 200, "ready", 60)
            assert_ready(client, {"kafka", "postgres", "writes"})
            engines.kill("kafka")
            try:
                assert not_ready(client, "kafka")
                assert client.get("/ready").json()["checks"]["postgres"] == "ok"
            finally:
                engines.restart("kafka")
            eventually(lambda: client.get("/ready").status_code == 200, "ready again")
    finally:
        service.close()


# --- embedded ---------------------------------------------------------------------------------
class WarehouseDown:
    """The embedded warehouse, until `down` is set: then every call raises like an outage."""

    def __init__(self, warehouse: ChdbWarehouse) -> None:
        self.inner, self.down = warehouse, False
        self.version = warehouse.version

    def _up(self) -> ChdbWarehouse:
        if self.down:
            raise WarehouseUnavailable("the warehouse is down (test)")
        return self.inner

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._up().command(sql, params)

    def insert(self, table: str, rows: Any) -> None:
        self._up().insert(table, rows)

    def select(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self._up().select(sql, params)

    def select_columns(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, list[Any]]:
        return self._up().select_columns(sql, params)

    def close(self) -> None:
        pass


@pytest.fixture
def embedded(tmp_path: Path, warehouse: ChdbWarehouse) -> Iterator[tuple[TestClient, Any, str]]:
    ensure_tables(warehouse, [ProjectionsProjection()])
    flaky, keys = WarehouseDown(warehouse), MemoryKeyStore()
    settings = IngestSettings(data_dir=tmp_path / "data", identity="rule")
    platform = build(settings, warehouse=flaky, keys=keys)
    secret = keys.create("acme", "agent")[1]
    with TestClient(platform.app) as client:
        yield client, flaky, secret
    platform.log.close()


def test_the_embedded_app_reports_its_log_and_warehouse_and_answers_503_json_in_an_outage(
    embedded: tuple[TestClient, Any, str],
) -> None:
    client, flaky, secret = embedded
    auth = {"Authorization": f"Bearer {secret}"}
    assert_ready(client, {"event_log", "warehouse", "access_audit"})
    flaky.down = True
    assert_unavailable(client.get(TIMELINE, headers=auth), "warehouse_unavailable")
    assert not_ready(client, "warehouse")
    assert client.get("/ready").json()["checks"]["event_log"] == "ok"
    flaky.down = False
    assert_ready(client, {"event_log", "warehouse", "access_audit"})


def chat() -> dict[str, Any]:
    return event("message.received", "chat", {"customer_id": "cust-1"}, datetime.now(UTC),
                 {"text": "hola"})  # fmt: skip


def test_the_embedded_app_is_not_ready_while_its_log_refuses_writes(
    tmp_path: Path, warehouse: ChdbWarehouse
) -> None:
    # Another process holds the SQLite log's write lock: every POST answered 503 while /ready
    # said `event_log: ok`, since the log still answered a read (found by a review).
    keys = MemoryKeyStore()
    settings = IngestSettings(data_dir=tmp_path / "data", identity="rule", publish_timeout_s=1.0)
    platform = build(settings, keys=keys, warehouse=warehouse)  # chdb: one per process
    auth = {"Authorization": f"Bearer {keys.create('acme', 'ingest')[1]}"}
    holder = sqlite3.connect(settings.data_dir / "log.sqlite", timeout=0.1)
    try:
        with TestClient(platform.app) as client:
            first = client.post("/v1/events", json={"events": [chat()]}, headers=auth)
            assert first.status_code == 200, first.text
            assert client.get("/ready").json()["checks"]["event_log"] == "ok"
            holder.execute("BEGIN EXCLUSIVE")
            assert_unavailable(
                client.post("/v1/events", json={"events": [chat()]}, headers=auth),
                "log_unavailable",
            )
            assert not_ready(client, "event_log")
            holder.rollback()
            eventually(
                lambda: (
                    client.post("/v1/events", json={"events": [chat()]}, headers=auth).status_code
                    == 200
                ),
                "a write through again",
                30,
            )
            eventually(lambda: client.get("/ready").status_code == 200, "ready again", 30)
    finally:
        holder.close()
        platform.log.close()
