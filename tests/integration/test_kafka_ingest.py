"""The distributed ingest on real Kafka and PostgreSQL: the app `cem serve ingest` runs, built by
`cem.distributed.build_ingest` (claims and keys in PostgreSQL), over HTTP (TestClient).

Shows: an acked event is on the topic exactly once, keyed by a bucket of its customer key, with tenant and
source headers (the ack is the broker's, acks=all); B05–B07 duplicates and conflicts; F01 with a
broker that does not answer (503 + Retry-After within the bound, nothing claimed as published,
the client's retry stored once). Broker restarts are the fault suite's (F02), not this file's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from cem.adapters.kafka_log import KafkaLog
from cem.adapters.postgres_idempotency import PostgresIdempotencyIndex
from cem.adapters.postgres_keys import PostgresKeyStore
from cem.adapters.sqlite_keys import SqliteKeyStore
from cem.distributed import (
    IngestService,
    build_ingest,
    build_query_api,
    keystore_from_settings,
    warehouse_database,
)
from cem.platform_keys import shared_bucket_key
from cem.sealing import opener_for, unwrapped
from cem.serving import free_port, wait_until_serving
from kernel.partitioning import partition_for, touchpoint_key
from kernel.ports import TOUCHPOINTS_TOPIC, Consumed
from kernel.sealing import EventOpener, decode_opened
from kernel.settings import CoreSettings, IngestSettings, QuerySettings
from schemas.envelope import Event
from tests.events import survey_answer as event

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
PUBLISH_TIMEOUT_S = 1.5


@dataclass
class Ingest:
    """One ingest service, a client for it, and a reader of its topic."""

    service: IngestService
    client: TestClient
    reader: KafkaLog
    tenant: str
    secret: str
    opener: EventOpener  # the keys of what the ingest sealed (sealing is the default)

    def stored(self, record: Consumed) -> Event:
        """The event as the ingest stored it, opened."""
        return decode_opened(record.value, self.opener)

    def post(self, body: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.secret}"}
        return self.client.post("/v1/events", json=body, headers=headers)

    def on_topic(self, *event_ids: str) -> list[Consumed]:
        """The records of these events on the topic (a fresh group reads it from the start)."""
        records = self.reader.poll(TOUCHPOINTS_TOPIC, uuid.uuid4().hex, 100_000, 0.2)
        # Matched by id before decoding: the topic is the session's, and other suites' records
        # on it may be sealed (the e2e deployments seal personal data).
        return [r for r in records if orjson.loads(r.value).get("event_id") in event_ids]

    @property
    def index(self) -> PostgresIdempotencyIndex:
        assert isinstance(self.service.index, PostgresIdempotencyIndex)
        return self.service.index


@pytest.fixture
def settings(kafka_bootstrap: str, postgres_dsn: str) -> IngestSettings:
    return IngestSettings(
        mode="distributed",
        kafka_bootstrap=kafka_bootstrap,
        postgres_dsn=SecretStr(postgres_dsn),
        partitions=4,
        publish_timeout_s=PUBLISH_TIMEOUT_S,
    )


@pytest.fixture
def namespace() -> str:
    """A topic namespace of this test's own on the session's broker."""
    return f"test-{uuid.uuid4().hex[:8]}."


def start_ingest(settings: IngestSettings, bootstrap: str, namespace: str) -> Ingest:
    """The composition root's ingest (index and keys from settings) on a namespaced topic."""
    log = KafkaLog(
        bootstrap,
        partitions=settings.partitions,
        timeout_s=settings.publish_timeout_s,
        topic_prefix=namespace,
    )
    service = build_ingest(settings, log=log)
    tenant = f"acme-{uuid.uuid4().hex[:8]}"
    _, secret = service.keys.create(tenant, "ingest", "test")
    reader = KafkaLog(settings.kafka_bootstrap, topic_prefix=namespace)
    opener = opener_for(settings)
    return Ingest(service, TestClient(service.app), reader, tenant, secret, opener)


@pytest.fixture
def ingest(settings: IngestSettings, namespace: str) -> Iterator[Ingest]:
    ingest = start_ingest(settings, settings.kafka_bootstrap, namespace)
    yield ingest
    ingest.reader.close()
    ingest.opener.close()
    ingest.service.close()


def test_an_acked_event_is_on_the_topic_once_keyed_by_tenant_and_customer(ingest: Ingest) -> None:
    sent = event()
    response = ingest.post(sent)
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "event_id": sent["event_id"]}
    [record] = ingest.on_topic(sent["event_id"])
    key = touchpoint_key(
        ingest.service.app.state.bucket_key, ingest.tenant, "cust-1"
    )  # a bucket of the customer key, not the key
    assert record.key == key
    assert record.partition == partition_for(key, 4)
    headers = dict(record.headers)
    assert headers["tenant_id"] == ingest.tenant.encode()
    assert headers["source_id"] == b"genesys"
    stored = ingest.stored(record)
    assert stored.tenant_id == ingest.tenant and stored.payload["score"] == 4
    assert ingest.index.statuses(ingest.tenant, [sent["event_id"]]) == {
        sent["event_id"]: "published"
    }


def test_every_replica_and_the_query_api_bucket_one_customer_alike(
    ingest: Ingest, settings: IngestSettings, namespace: str, tmp_path: Path
) -> None:
    # The bucket key derives from the platform key every replica shares (CEM_SECRET_KEY, else
    # the one kept in PostgreSQL), so one customer keeps one partition whichever replica it hits.
    # The other replica and the query API run on hosts of their own (data directories): a key
    # taken from a host's own file would bucket differently there.
    def host(name: str) -> dict[str, Any]:
        return {**settings.model_dump(), "data_dir": tmp_path / name}

    other = start_ingest(IngestSettings(**host("b")), settings.kafka_bootstrap, namespace)
    try:
        first, second = event(), event()
        assert ingest.post(first).status_code == 202
        other.secret = ingest.secret  # the keys are in PostgreSQL: either replica takes it
        other.tenant = ingest.tenant
        assert other.post(second).status_code == 202
        records = ingest.on_topic(first["event_id"], second["event_id"])
        expected = touchpoint_key(shared_bucket_key(settings), ingest.tenant, "cust-1")
        assert [r.key for r in records] == [expected, expected]
    finally:
        other.reader.close()
        other.service.close()

    class NoWarehouse:
        version = (0,)

        def close(self) -> None:
            pass

    query = build_query_api(QuerySettings(**host("c")), warehouse=NoWarehouse())  # type: ignore[arg-type]
    try:  # alert actions: keyed under the same key, read when the query API starts
        assert query.app.state.bucket_key == shared_bucket_key(settings)
    finally:
        query.close()


def test_a_repeat_is_a_duplicate_and_another_payload_a_recorded_conflict(ingest: Ingest) -> None:
    sent = event()
    assert ingest.post(sent).status_code == 202
    again = ingest.post(sent)
    assert again.status_code == 202 and again.json()["status"] == "duplicate"
    changed = ingest.post({**sent, "payload": {"kind": "csat", "score": 1}})
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "conflict"
    [record] = ingest.on_topic(sent["event_id"])
    assert ingest.stored(record).payload["score"] == 4  # the original stays
    [conflict] = unwrapped(ingest.service.publisher).conflicts(ingest.tenant)  # type: ignore[union-attr]
    assert conflict["event_id"] == sent["event_id"]


def test_a_batch_with_repeats_stores_each_event_once(ingest: Ingest) -> None:
    first, second = event(), event(customer={"email": "Bob@Example.com"})
    changed = {**first, "payload": {"kind": "csat", "score": 2}}
    response = ingest.post({"events": [first, first, changed, second]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["status"] for r in body["results"]] == [
        "accepted",
        "duplicate",
        "conflict",
        "accepted",
    ]
    stored = ingest.on_topic(first["event_id"], second["event_id"])
    assert sorted(str(ingest.stored(r).event_id) for r in stored) == sorted(
        [first["event_id"], second["event_id"]]
    )
    assert {r.key for r in stored} == {
        touchpoint_key(ingest.service.app.state.bucket_key, ingest.tenant, "cust-1"),
        touchpoint_key(ingest.service.app.state.bucket_key, ingest.tenant, "email:bob@example.com"),
    }


def test_f01_kafka_down_is_503_in_bounded_time_and_the_retry_is_stored_once(
    ingest: Ingest, settings: IngestSettings, namespace: str
) -> None:
    # The same PostgreSQL (claims, keys) behind a replica whose broker does not answer.
    down = start_ingest(settings, f"127.0.0.1:{free_port()}", namespace)
    down.secret = ingest.secret  # one key, valid on every replica
    sent = event()
    try:
        started = time.monotonic()
        response = down.post(sent)
        elapsed = time.monotonic() - started
    finally:
        down.reader.close()
        down.service.close()
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert elapsed < PUBLISH_TIMEOUT_S + 2.0  # the bound, with slack for a busy machine
    # Claimed (so a different payload would be a conflict) but not published, not on the topic.
    assert ingest.index.statuses(ingest.tenant, [sent["event_id"]]) == {sent["event_id"]: "pending"}
    assert ingest.on_topic(sent["event_id"]) == []
    # The client retries against a replica that reaches Kafka: accepted, stored once.
    retried = ingest.post(sent)
    assert retried.status_code == 202 and retried.json()["status"] == "accepted"
    assert ingest.post(sent).json()["status"] == "duplicate"
    assert len(ingest.on_topic(sent["event_id"])) == 1


def test_health_is_served_without_a_key(ingest: Ingest) -> None:
    response = ingest.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "ingest", "mode": "distributed"}


def test_the_composition_root_alone_publishes_to_the_touchpoints_topic(
    settings: IngestSettings,
) -> None:
    service = build_ingest(settings)
    reader, opener = KafkaLog(settings.kafka_bootstrap), opener_for(settings)
    try:
        service.start()  # creates the topic
        tenant = f"acme-{uuid.uuid4().hex[:8]}"
        ingest = Ingest(service, TestClient(service.app), reader, tenant, "", opener)
        ingest.secret = service.keys.create(ingest.tenant, "ingest")[1]
        sent = event()
        assert ingest.post(sent).status_code == 202
        assert len(ingest.on_topic(sent["event_id"])) == 1
    finally:
        opener.close()
        reader.close()
        service.close()


def test_the_query_api_authenticates_against_postgres(settings: IngestSettings) -> None:
    class NoWarehouse:  # /health and authentication never reach the warehouse
        version = (0,)

        def close(self) -> None:
            pass

    query = QuerySettings(**settings.model_dump())
    service = build_query_api(query, warehouse=NoWarehouse())  # type: ignore[arg-type]
    try:
        client = TestClient(service.app)
        assert client.get("/health").json()["service"] == "query-api"
        assert client.get("/v1/customers/x").status_code == 401
    finally:
        service.close()


def test_the_query_api_reads_the_database_the_workers_write() -> None:
    assert warehouse_database("clickhouse://ch:9000/analytics") == "analytics"
    assert warehouse_database("clickhouse://user:pw@ch:9000") == "cem"


def test_keystore_from_settings_follows_the_mode(settings: IngestSettings, tmp_path: Path) -> None:
    distributed = keystore_from_settings(settings)
    embedded = keystore_from_settings(CoreSettings(mode="embedded", data_dir=tmp_path))
    assert isinstance(distributed, PostgresKeyStore)
    assert isinstance(embedded, SqliteKeyStore)
    assert embedded.path == tmp_path / "keys.sqlite"
    distributed.close()
    embedded.close()


@pytest.mark.slow
def test_cem_serve_ingest_runs_from_the_environment(settings: IngestSettings) -> None:
    """`python -m cem.serve ingest` configured only by CEM_* variables, as a deployment runs it."""
    port = free_port()
    env = {
        **os.environ,
        "CEM_MODE": "distributed",
        "CEM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "CEM_POSTGRES_DSN": settings.postgres_dsn.get_secret_value(),
        "CEM_PARTITIONS": "4",
        "CEM_PORT": str(port),
    }
    keys = PostgresKeyStore(settings.postgres_dsn.get_secret_value())
    tenant = f"acme-{uuid.uuid4().hex[:8]}"
    secret = keys.create(tenant, "ingest")[1]
    keys.close()
    server = subprocess.Popen(
        [sys.executable, "-m", "cem.serve", "ingest"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, server)
        sent = event()
        response = httpx.post(
            f"{url}/v1/events",
            json=sent,
            headers={"Authorization": f"Bearer {secret}"},
            timeout=10,
        )
        assert response.status_code == 202, response.text
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the process ends by that signal.
    assert server.returncode in (0, -signal.SIGTERM), stderr.decode()[-2000:]
    assert b"Application shutdown complete" in stderr


def wait_until_healthy(url: str, server: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    def still_starting() -> None:
        if server.poll() is not None:
            raise AssertionError(f"the server exited: {server.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]

    wait_until_serving(url, timeout_s, still_starting)
