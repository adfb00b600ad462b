"""The real engines answer, and the SQL the projections rely on runs on the ClickHouse server
(locally Debian's 18.16, the oldest supported): a smoke test of tests/engines.py and deploy/."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from cem.adapters.clickhouse_warehouse import ClickHouseWarehouse
from kernel.dialect import OLDEST_SUPPORTED, replacing_engine
from tests.engines import Engines

HOUR = 3_600_000_000  # micros


def _new_topic(bootstrap: str) -> str:
    topic = f"smoke-{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    return topic


def _read_all(bootstrap: str, topic: str, group: str, expected: int) -> list[tuple[bytes, bytes]]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
        enable_auto_commit=False, consumer_timeout_ms=20_000,
    )  # fmt: skip
    try:
        consumer.subscribe([topic])
        seen = []
        for message in consumer:
            seen.append((message.key, message.value))
            if len(seen) == expected:
                break
        consumer.commit()
        return seen
    finally:
        consumer.close()


@pytest.mark.kafka
def test_kafka_acknowledges_a_record_and_a_group_reads_and_commits_it(
    kafka_bootstrap: str,
) -> None:
    topic = _new_topic(kafka_bootstrap)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        sent = producer.send(topic, key=b"tenant/customer", value=b"hello").get(timeout=30)
    finally:
        producer.close()
    assert sent.offset == 0
    assert _read_all(kafka_bootstrap, topic, "smoke", 1) == [(b"tenant/customer", b"hello")]
    admin = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id="smoke")
    try:
        assert admin.committed(TopicPartition(topic, sent.partition)) == 1
    finally:
        admin.close()


@pytest.mark.kafka
@pytest.mark.slow
def test_an_acknowledged_record_survives_a_broker_crash(
    engines: Engines, kafka_bootstrap: str
) -> None:
    topic = _new_topic(kafka_bootstrap)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        producer.send(topic, key=b"k", value=b"acked").get(timeout=30)
    finally:
        producer.close()
    engines.kill("kafka")
    engines.restart("kafka")
    assert _read_all(kafka_bootstrap, topic, "after-crash", 1) == [(b"k", b"acked")]


@pytest.mark.clickhouse
def test_clickhouse_reports_a_supported_version(clickhouse_warehouse: ClickHouseWarehouse) -> None:
    assert clickhouse_warehouse.version[:2] >= OLDEST_SUPPORTED


@pytest.fixture
def events(clickhouse_warehouse: ClickHouseWarehouse) -> ClickHouseWarehouse:
    """A ReplacingMergeTree of events, holding one batch inserted twice (a reprocessed batch)."""
    wh = clickhouse_warehouse
    engine = replacing_engine(("tenant_id", "customer_id", "at", "event_id"), wh.version)
    wh.command(
        f"CREATE TABLE events (tenant_id String, customer_id String, at Int64, event_id String,"
        f" score Int64) {engine}"
    )
    rows = [
        {"tenant_id": "t1", "customer_id": "c1", "at": 1 * HOUR + 5, "event_id": "e1", "score": 3},
        {"tenant_id": "t1", "customer_id": "c1", "at": 1 * HOUR + 9, "event_id": "e2", "score": 5},
        {"tenant_id": "t1", "customer_id": "c1", "at": 2 * HOUR, "event_id": "e3", "score": 1},
        {"tenant_id": "t1", "customer_id": "c2", "at": 1 * HOUR, "event_id": "e4", "score": 4},
    ]
    wh.insert("events", rows)
    wh.insert("events", rows)
    return wh


DEDUPED = "(SELECT * FROM events ORDER BY at, event_id LIMIT 1 BY event_id)"


@pytest.mark.clickhouse
def test_limit_1_by_deduplicates_a_reprocessed_batch(events: ClickHouseWarehouse) -> None:
    assert events.select("SELECT count() AS n FROM events") == [{"n": 8}]
    assert events.select(f"SELECT count() AS n FROM {DEDUPED}") == [{"n": 4}]


@pytest.mark.clickhouse
def test_replacing_merge_tree_collapses_duplicates_on_merge(events: ClickHouseWarehouse) -> None:
    events.command("OPTIMIZE TABLE events FINAL")
    assert events.select("SELECT count() AS n FROM events") == [{"n": 4}]


@pytest.mark.clickhouse
def test_arg_max_picks_the_latest_value_per_customer(events: ClickHouseWarehouse) -> None:
    rows = events.select(
        f"""SELECT customer_id, argMax(score, (at, event_id)) AS latest,
                   argMax(event_id, at) AS last FROM {DEDUPED} WHERE tenant_id = {{tenant:String}} GROUP BY customer_id
            ORDER BY customer_id""",
        {"tenant": "t1"},
    )
    assert rows == [
        {"customer_id": "c1", "latest": 1, "last": "e3"},
        {"customer_id": "c2", "latest": 4, "last": "e4"},
    ]


@pytest.mark.clickhouse
def test_hour_buckets_from_epoch_micros(events: ClickHouseWarehouse) -> None:
    rows = events.select(
        f"""SELECT toUInt32(toStartOfHour(toDateTime(intDiv(at, 1000000), 'UTC'))) AS bucket,
                   toStartOfHour(toDateTime(intDiv(at, 1000000), 'UTC')) AS shown,
                   count() AS n, sum(score) AS total
            FROM {DEDUPED} GROUP BY bucket, shown ORDER BY bucket"""
    )
    assert rows == [
        {"bucket": 3600, "shown": "1970-01-01 01:00:00", "n": 3, "total": 12},
        {"bucket": 7200, "shown": "1970-01-01 02:00:00", "n": 1, "total": 1},
    ]


@pytest.mark.clickhouse
def test_any_left_join_on_a_subquery_using_two_columns(events: ClickHouseWarehouse) -> None:
    events.command(
        "CREATE TABLE agents (tenant_id String, customer_id String, agent String)"
        " ENGINE = MergeTree() ORDER BY (tenant_id, customer_id)"
    )
    events.insert("agents", [{"tenant_id": "t1", "customer_id": "c1", "agent": "ann"}])
    rows = events.select(
        f"""SELECT event_id, agent FROM {DEDUPED}
            ANY LEFT JOIN (SELECT tenant_id, customer_id, agent FROM agents)
            USING (tenant_id, customer_id) ORDER BY event_id"""
    )
    # Unmatched rows get the column's default ('' for String) on every version.
    assert rows == [
        {"event_id": "e1", "agent": "ann"},
        {"event_id": "e2", "agent": "ann"},
        {"event_id": "e3", "agent": "ann"},
        {"event_id": "e4", "agent": ""},
    ]


@pytest.mark.clickhouse
def test_literal_braces_and_percent_signs_survive_next_to_parameters(
    clickhouse_warehouse: ClickHouseWarehouse,
) -> None:
    rows = clickhouse_warehouse.select(
        """SELECT '{"a": {n:Int64}}' AS text, '100%' AS pct, {n:Int64} - {n:Int64} AS zero,
                  1-{m:Int64} AS neg""",
        {"n": 7, "m": -2},
    )
    assert rows == [{"text": '{"a": {n:Int64}}', "pct": "100%", "zero": 0, "neg": 3}]


@pytest.mark.postgres
def test_postgres_accepts_a_connection_and_a_table(postgres_dsn: str) -> None:
    table = f"smoke_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, n int)")
        conn.execute(f"INSERT INTO {table} VALUES (%s, %s)", ("a", 1))
        assert conn.execute(f"SELECT id, n FROM {table}").fetchall() == [("a", 1)]
        assert conn.info.server_version >= 120000
        conn.execute(f"DROP TABLE {table}")
