"""`cem dead-letters`: list and re-run dead letters of both kinds, in either mode.

- Webhook dead letters (the channel store): re-mapped and published idempotently
  (`services.ingest.channels.replay`).
- Consumer dead letters (the warehouse's `dead_letters` table: records on the log that a consumer
  could not decode, file or project): each one that decodes now is appended to the topic again
  with its original bytes, so both consumers process it; every read deduplicates by event_id, so
  a record that was in fact stored the first time costs nothing. A touchpoint goes back keyed as
  the ingest keys one now (`kernel.partitioning.touchpoint_key`, under the deployment's bucket
  key), not with the key it had (an older release's unkeyed bucket, or a producer's own key,
  perhaps `tenant/email:…`); a filing keeps its key (its opaque customer id). The record goes
  back with the headers it had (the table keeps them): a producer's `tenant_id` and `source_id`, the ingest's
  seal. A letter kept by an earlier release has none; a stored record then gets its tenant and
  source back from its body, and a producer's record, whose tenant only its header named, still
  fails and must be produced again.

In the embedded mode the warehouse (chdb) opens in one process only: the consumer dead letters
are replayed while `cem up` is stopped; the webhook ones at any time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson

from cem import dead_letters
from cem.direct_ingest import (
    TENANT_HEADER,
    accept_direct,
    decode_stored,
    headers_of,
    is_stored_form,
)
from cem.sealing import close_sealing, default_rules, sealing_publisher
from kernel.customer_key import customer_key
from kernel.filings import CUSTOMER_HEADER
from kernel.partitioning import touchpoint_key
from kernel.ports import TOUCHPOINTS_TOPIC, Consumed, EventLog, Publisher, Record, Warehouse
from kernel.processing import to_micros
from kernel.sealing import EventOpener, readable
from kernel.settings import IngestSettings
from services.ingest.channels.replay import ReplayReport

SELECT_SINCE = f"""SELECT stage, topic, partition, offset, key, value_hex, reason, error, failed_at,
    headers FROM {dead_letters.TABLE} WHERE failed_at >= {{since:Int64}}
    ORDER BY failed_at LIMIT 1 BY stage, topic, partition, offset"""


def consumer_letters(warehouse: Warehouse, since: datetime | None) -> list[dict[str, Any]]:
    dead_letters.ensure(warehouse)  # a platform that never ran has none
    return warehouse.select(SELECT_SINCE, {"since": 0 if since is None else to_micros(since)})


def kept_headers(row: dict[str, Any]) -> tuple[tuple[str, bytes], ...]:
    """The record's headers as the table kept them (none for a letter of an earlier release)."""
    text = row.get("headers") or ""
    if not text:
        return ()
    return tuple((h["name"], bytes.fromhex(h["value_hex"])) for h in orjson.loads(text))


def _record(
    row: dict[str, Any], tenant_id: str | None, bucket_key: bytes, opener: EventOpener | None
) -> tuple[str, Record] | None:
    """Where the row's record goes back, and the record, when it decodes now as an event of the
    tenant asked for. A filing (it names its customer) goes to the filings topic it came from
    with its customer's key, so only the projections see it again; anything else goes to
    `touchpoints`, to be filed, keyed with `bucket_key`."""
    value = bytes.fromhex(row["value_hex"])
    try:
        headers = kept_headers(row)
        raw = orjson.loads(value)
        texts = headers_of(Consumed(str(row["topic"]), 0, 0, b"", value, headers))
        if is_stored_form(raw):
            # A sealed record is opened to be checked; it goes back sealed, as it was.
            event = decode_stored(readable(opener.open_event(raw)) if opener else raw, texts)
            if not headers:  # kept by an earlier release: tenant and source from the body
                source = str(raw.get("source_id", "")).encode()
                headers = (("tenant_id", event.tenant_id.encode()), ("source_id", source))
        elif texts.get(TENANT_HEADER):
            event = accept_direct(raw, texts, datetime.now(UTC)).event
        else:
            return None  # a producer's record whose tenant header was not kept
    except ValueError:
        return None
    if tenant_id is not None and event.tenant_id != tenant_id:
        return None
    if any(name == CUSTOMER_HEADER for name, _ in headers):
        return str(row["topic"]), Record(str(row["key"]).encode(), value, headers)
    key = touchpoint_key(bucket_key, event.tenant_id, customer_key(event.customer))
    return TOUCHPOINTS_TOPIC, Record(key, value, headers)


def replay_consumer_letters(
    rows: Sequence[dict[str, Any]],
    log: EventLog,
    tenant_id: str | None = None,
    *,
    bucket_key: bytes,
    opener: EventOpener | None = None,
) -> ReplayReport:
    report = ReplayReport()
    by_topic: dict[str, list[Record]] = {}
    for row in rows:
        restored = _record(row, tenant_id, bucket_key, opener)
        if restored is None:
            report.still_failing += 1
            continue
        topic, record = restored
        by_topic.setdefault(topic, []).append(record)
        report.restored += 1
    for topic, records in by_topic.items():
        log.append(topic, records)
    return report


@contextmanager
def mode_publisher(settings: IngestSettings) -> Iterator[tuple[Publisher, EventLog]]:
    """The publisher and log of the configured mode, closed afterwards."""
    publisher: Publisher | None = None  # stays None when the key vault does not open
    if settings.mode == "distributed":
        from cem.adapters.postgres_idempotency import PostgresIdempotencyIndex
        from cem.distributed import kafka_log, postgres_dsn
        from cem.publishing import IdempotentPublisher

        log = kafka_log(settings, settings.publish_timeout_s)
        index = PostgresIdempotencyIndex(postgres_dsn(settings))
        try:
            # Sealed like the ingest's records: the workers trust the stored form only with it.
            inner = IdempotentPublisher(log, index, TOUCHPOINTS_TOPIC, seal_key=index.seal_key())
            publisher = sealing_publisher(inner, settings, default_rules)
            yield publisher, log
        finally:
            close_sealing(publisher)
            log.close()
            index.close()
        return
    from cem.adapters.sqlite_log import SqliteLog, SqlitePublisher

    sqlite_log = SqliteLog(settings.data_dir / "log.sqlite", partitions=settings.partitions)
    try:
        publisher = sealing_publisher(SqlitePublisher(sqlite_log), settings, default_rules)
        yield publisher, sqlite_log
    finally:
        close_sealing(publisher)
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
