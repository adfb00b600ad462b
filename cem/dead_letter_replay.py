"""`cem dead-letters`: list and re-run dead letters of both kinds, in either mode.

- Webhook dead letters (the channel store): re-mapped and published idempotently
  (`services.ingest.channels.replay`).
- Consumer dead letters (the warehouse's `dead_letters` table: records on the log that a consumer
  could not decode, file or project): each one that decodes now is appended to the topic again
  with its original bytes, so both consumers process it; every read deduplicates by event_id, so
  a record that was in fact stored the first time costs nothing. A record a producer wrote
  straight to Kafka needs its `tenant_id` header, which the table does not keep: such a record
  still fails and must be produced again.

In the embedded mode the warehouse (chdb) opens in one process only: the consumer dead letters
are replayed while `cem up` is stopped; the webhook ones at any time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson

from cem import dead_letters
from cem.direct_ingest import decode_stored, is_stored_form
from kernel.ports import TOUCHPOINTS_TOPIC, EventLog, Publisher, Record, Warehouse
from kernel.processing import to_micros
from kernel.settings import IngestSettings
from services.ingest.channels.replay import ReplayReport

SELECT_SINCE = f"""SELECT stage, topic, partition, offset, key, value_hex, reason, error, failed_at
    FROM {dead_letters.TABLE} WHERE failed_at >= {{since:Int64}}
    ORDER BY failed_at LIMIT 1 BY stage, topic, partition, offset"""


def consumer_letters(warehouse: Warehouse, since: datetime | None) -> list[dict[str, Any]]:
    for statement in dead_letters.ddl(warehouse.version):  # a platform that never ran has none
        warehouse.command(statement)
    return warehouse.select(SELECT_SINCE, {"since": 0 if since is None else to_micros(since)})


def _record(row: dict[str, Any], tenant_id: str | None) -> Record | None:
    """The row's original record, when it decodes now as an event of the tenant asked for."""
    try:
        raw = orjson.loads(bytes.fromhex(row["value_hex"]))
        if not is_stored_form(raw):
            return None  # a producer's record: its tenant header was not kept
        event = decode_stored(raw, {})
    except ValueError:
        return None
    if tenant_id is not None and event.tenant_id != tenant_id:
        return None
    headers = (("tenant_id", event.tenant_id.encode()), ("source_id", event.source_id.encode()))
    return Record(str(row["key"]).encode(), bytes.fromhex(row["value_hex"]), headers)


def replay_consumer_letters(
    rows: Sequence[dict[str, Any]], log: EventLog, tenant_id: str | None = None
) -> ReplayReport:
    report = ReplayReport()
    records = [_record(row, tenant_id) for row in rows]
    ready = [r for r in records if r is not None]
    if ready:
        log.append(TOUCHPOINTS_TOPIC, ready)
    report.restored, report.still_failing = len(ready), len(records) - len(ready)
    return report


@contextmanager
def mode_publisher(settings: IngestSettings) -> Iterator[tuple[Publisher, EventLog]]:
    """The publisher and log of the configured mode, closed afterwards."""
    if settings.mode == "distributed":
        from cem.adapters.postgres_idempotency import PostgresIdempotencyIndex
        from cem.distributed import kafka_log, postgres_dsn
        from cem.publishing import IdempotentPublisher

        log = kafka_log(settings, settings.publish_timeout_s)
        index = PostgresIdempotencyIndex(postgres_dsn(settings))
        try:
            # Sealed like the ingest's records: the workers trust the stored form only with it.
            yield IdempotentPublisher(log, index, TOUCHPOINTS_TOPIC, seal_key=index.seal_key()), log
        finally:
            log.close()
            index.close()
        return
    from cem.adapters.sqlite_log import SqliteLog, SqlitePublisher

    sqlite_log = SqliteLog(settings.data_dir / "log.sqlite", partitions=settings.partitions)
    try:
        yield SqlitePublisher(sqlite_log), sqlite_log
    finally:
        sqlite_log.close()


def mode_warehouse(settings: IngestSettings) -> Warehouse:
    """The warehouse holding the consumer dead letters (chdb fails if `cem up` holds it)."""
    if settings.mode == "distributed":
        from cem.adapters.clickhouse_warehouse import ClickHouseWarehouse
        from cem.distributed import warehouse_database

        url = settings.clickhouse_url
        return ClickHouseWarehouse(url, database=warehouse_database(url))
    from cem.adapters.chdb_warehouse import ChdbWarehouse

    return ChdbWarehouse(settings.data_dir / "warehouse", database="cem")
