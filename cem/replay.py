"""Rebuild warehouse tables from the event log (F13): the tables are projections, the log is the truth.

A replay reads the `filings` topic: each touchpoint's bytes with the customer the filing stage
filed it under. So it needs nothing but the log (no identity store), and every event lands under
the customer it was filed under live, at the same log position: the rebuilt tables equal the live
ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from cem.runner import ensure_tables, run_once
from kernel.ports import FILINGS_TOPIC, EventLog, Warehouse
from kernel.processing import Decode, Projection, Rows, decode_value
from schemas.envelope import Event

if TYPE_CHECKING:
    from cem.faust_worker import WorkerSettings


class _Renamed:
    """A projection under a fresh consumer-group name, so a replay starts from offset 0."""

    def __init__(self, inner: Projection, name: str) -> None:
        self.inner, self.name = inner, name

    def ddl(self, version: tuple[int, ...]) -> list[str]:
        return self.inner.ddl(version)

    def migrate(self, warehouse: Warehouse) -> None:
        self.inner.migrate(warehouse)

    def rows(self, event: Event, customer_id: str | None = None) -> Rows:
        return self.inner.rows(event, customer_id)


def caught_up(log: EventLog, topic: str, group: str, target: dict[int, int]) -> bool:
    committed = log.committed(topic, group)
    return all(committed.get(p, 0) >= end for p, end in target.items())


def replay(
    log: EventLog,
    warehouse: Warehouse,
    projections: Sequence[Projection],
    *,
    topic: str = FILINGS_TOPIC,
    batch: int = 20_000,
    decode_record: Decode = decode_value,
    on_progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> int:
    """Process the whole log of filings, as it is now, into `warehouse`; returns the records read.
    `on_progress` hears the records read so far, across every projection, after each batch;
    `on_total`, once, how many that will be."""
    ensure_tables(warehouse, projections)
    target = log.end_offsets(topic)
    if on_total is not None:
        on_total(sum(target.values()) * len(projections))
    run_id = uuid.uuid4().hex[:8]
    total = 0
    for projection in projections:
        renamed = _Renamed(projection, f"replay-{run_id}-{projection.name}")
        while not caught_up(log, topic, renamed.name, target):
            total += run_once(
                log,
                warehouse,
                renamed,
                max_records=batch,
                timeout_s=0.05,
                topic=topic,
                decode_record=decode_record,
            )
            if on_progress is not None:
                on_progress(total)
    return total


def replay_distributed(
    settings: WorkerSettings,
    into: str,
    projections: Sequence[Projection],
    on_progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> int:
    """`cem replay` in the distributed mode: the Kafka filings topic into database `into` of the
    ClickHouse server (dropped first). Only sealed filings are taken, as the workers take them."""
    from cem.adapters.clickhouse_warehouse import ClickHouseWarehouse
    from cem.adapters.postgres_idempotency import PostgresIdempotencyIndex
    from cem.direct_ingest import RecordDecoder
    from cem.distributed import kafka_log
    from cem.faust_worker import decode_sealed_filing
    from cem.sealing import opener_for

    claims = PostgresIdempotencyIndex(settings.postgres_dsn.get_secret_value(), pool_size=1)
    try:
        seal_key = claims.seal_key()
    finally:
        claims.close()
    ClickHouseWarehouse(settings.clickhouse_url, into).drop_database()
    warehouse = ClickHouseWarehouse(settings.clickhouse_url, into)
    log = kafka_log(settings)
    opener = opener_for(settings.model_copy(update={"mode": "distributed"}))
    try:
        decode = partial(decode_sealed_filing, RecordDecoder(seal_key, opener))
        return replay(
            log,
            warehouse,
            projections,
            topic=settings.filings_topic,
            batch=5000,
            decode_record=decode,
            on_progress=on_progress,
            on_total=on_total,
        )
    finally:
        opener.close()
        log.close()
        warehouse.close()
