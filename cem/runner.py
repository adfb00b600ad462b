"""The embedded stream runner: a few lines per batch — read, file, project, write, commit."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from cem import dead_letters
from kernel.ports import DEAD_LETTER_TOPIC, TOUCHPOINTS_TOPIC, EventLog, Record, Warehouse
from kernel.processing import Decode, Filer, Projection, decode_value, process_batch

log = logging.getLogger(__name__)


def ensure_tables(warehouse: Warehouse, projections: Sequence[Projection]) -> None:
    dead_letters.ensure(warehouse)
    for projection in projections:
        for statement in projection.ddl(warehouse.version):
            warehouse.command(statement)


def run_once(
    event_log: EventLog,
    warehouse: Warehouse,
    projection: Projection,
    *,
    max_records: int = 5000,
    timeout_s: float = 0.2,
    topic: str = TOUCHPOINTS_TOPIC,
    filer: Filer | None = None,
    decode_record: Decode = decode_value,
) -> int:
    """Process one batch; returns how many records it consumed. With a filer, each event is filed
    under the customer identity resolves it to; without, under its customer key. `decode_record`
    (default: decode the bytes) lets the runners of one process share decoded events."""
    records = event_log.poll(topic, projection.name, max_records, timeout_s)
    if not records:
        return 0
    result = process_batch(projection.name, records, projection.rows, decode_record, filer=filer)
    for table, rows in result.rows.items():
        if rows:
            warehouse.insert(table, rows)
    if result.dead_letters:
        # The dead letter is durable before the offset moves past the record (F06).
        now = datetime.now(UTC)
        warehouse.insert(dead_letters.TABLE, [d.to_row(now) for d in result.dead_letters])
        event_log.append(
            DEAD_LETTER_TOPIC, [Record(d.key, d.to_json()) for d in result.dead_letters]
        )
    event_log.commit(topic, projection.name, result.next_offsets)
    return len(records)


class Runner(threading.Thread):
    """Runs one projection in a loop until stopped; retries a failed batch with backoff."""

    def __init__(
        self,
        event_log: EventLog,
        warehouse: Warehouse,
        projection: Projection,
        filer: Filer | None = None,
        decode_record: Decode = decode_value,
    ) -> None:
        super().__init__(name=f"runner-{projection.name}", daemon=True)
        self.event_log, self.warehouse, self.projection = event_log, warehouse, projection
        self.filer, self.decode_record = filer, decode_record
        self.stopping = threading.Event()
        self.processed = 0

    def run(self) -> None:
        backoff = 0.1
        while not self.stopping.is_set():
            try:
                self.processed += run_once(
                    self.event_log,
                    self.warehouse,
                    self.projection,
                    filer=self.filer,
                    decode_record=self.decode_record,
                )
                backoff = 0.1
            except Exception:
                # The batch is not committed, so it is read again after the pause.
                log.exception("runner %s failed a batch; retrying", self.projection.name)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stopping.set()
        self.join(timeout_s)
