"""The embedded stream runners: a few lines per batch.

The filing stage reads `touchpoints`, files, appends the filings, writes its dead letters, commits.
Each projection reads `filings`, projects, writes its rows and dead letters, commits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import cast

from cem import dead_letters
from kernel.filings import FILING_STAGE, file_batch, project_filings
from kernel.ports import (
    DEAD_LETTER_TOPIC,
    FILINGS_TOPIC,
    TOUCHPOINTS_TOPIC,
    Consumed,
    EventLog,
    Record,
    Warehouse,
)
from kernel.processing import (
    Admission,
    DeadLetter,
    Decode,
    Eraser,
    Filer,
    Projection,
    Rows,
    decode_value,
)

log = logging.getLogger(__name__)
# The consumer group that copies the filing process's dead letters into the table.
DEAD_LETTER_SINK = "dead-letter-table"


def ensure_tables(warehouse: Warehouse, projections: Sequence[Projection]) -> None:
    """Every projection's tables, created, then brought up to date by the projections that carry
    a `migrate(warehouse)` (tables of an earlier release: a one-off backfill, say)."""
    dead_letters.ensure(warehouse)
    for projection in projections:
        for statement in projection.ddl(warehouse.version):
            warehouse.command(statement)
        projection.migrate(warehouse)


def group_lag(event_log: EventLog, topic: str, group: str) -> int:
    """Records of `topic` the group has not committed yet."""
    committed = event_log.committed(topic, group)
    return sum(end - committed.get(p, 0) for p, end in event_log.end_offsets(topic).items())


def write_dead_letters(
    event_log: EventLog, warehouse: Warehouse | None, letters: Sequence[DeadLetter]
) -> None:
    """The dead letters, durable before the offset moves past their records (F06); one path
    for both modes (the faust workers' `Sink` writes through it too). Without a warehouse (the
    embedded filing stage's own process: chdb belongs to the main one) they go on the log only,
    and the main process's `sink_dead_letters` writes them to the table."""
    if letters and warehouse is not None:
        letters = dead_letters.not_recorded_before(warehouse, letters)
    if not letters:
        return
    if warehouse is not None:
        now = datetime.now(UTC)
        warehouse.insert(dead_letters.TABLE, [d.to_row(now) for d in letters])
    event_log.append(DEAD_LETTER_TOPIC, [Record(d.key, d.to_json()) for d in letters])


def sink_dead_letters(
    event_log: EventLog, warehouse: Warehouse, *, max_records: int = 1000, timeout_s: float = 0.2
) -> int:
    """Write to the table the dead letters the filing stage's own process put on the log
    (the other stages' letters, written by this process, are in the table already); returns how
    many records it consumed."""
    records = event_log.poll(DEAD_LETTER_TOPIC, DEAD_LETTER_SINK, max_records, timeout_s)
    if not records:
        return 0
    found = [dead_letters.from_topic(r.value) for r in records]
    filed = [f for f in found if f is not None and f[0].stage == FILING_STAGE]
    kept = {id(d) for d in dead_letters.not_recorded_before(warehouse, [d for d, _ in filed])}
    rows = [row for letter, row in filed if id(letter) in kept]
    if rows:
        warehouse.insert(dead_letters.TABLE, rows)
    event_log.commit(DEAD_LETTER_TOPIC, DEAD_LETTER_SINK, next_offsets(records))
    return len(records)


def next_offsets(records: Sequence[Consumed]) -> dict[int, int]:
    """The offsets to commit once `records` (a poll's, in offset order per partition) are done."""
    return {r.partition: r.offset + 1 for r in records}


def file_once(
    event_log: EventLog,
    warehouse: Warehouse | None,
    filer: Filer | None,
    *,
    max_records: int = 5000,
    timeout_s: float = 0.2,
    decode_record: Decode = decode_value,
    admission: Admission | None = None,
    eraser: Eraser | None = None,
) -> int:
    """File one batch of touchpoints; returns how many records it consumed. The filings are
    appended before the offsets are committed (at least once: a crash between the two files the
    batch again, which the tables absorb by event id). Without a warehouse, dead letters go on
    the log only (`write_dead_letters`). `eraser` carries out the batch's erasures."""
    records = event_log.poll(TOUCHPOINTS_TOPIC, FILING_STAGE, max_records, timeout_s)
    if not records:
        return 0
    batch = file_batch(records, filer, decode_record, admission, eraser)
    if batch.filings:
        event_log.append(FILINGS_TOPIC, batch.filings)
    write_dead_letters(event_log, warehouse, batch.dead_letters)
    event_log.commit(TOUCHPOINTS_TOPIC, FILING_STAGE, batch.next_offsets)
    return len(records)


def run_once(
    event_log: EventLog,
    warehouse: Warehouse,
    projection: Projection,
    *,
    max_records: int = 5000,
    timeout_s: float = 0.2,
    topic: str = FILINGS_TOPIC,
    decode_record: Decode = decode_value,
    on_stored: Callable[[Rows], None] | None = None,
    before_batch: Callable[[], None] | None = None,
) -> int:
    """Project one batch of filings; returns how many records it consumed. `decode_record`
    (default: decode the bytes) lets the runners of one process share decoded events;
    `on_stored` hears the rows of each table that received some, once they are inserted;
    `before_batch` runs once a batch is read, before it is decoded (`EventOpener.follow`)."""
    records = event_log.poll(topic, projection.name, max_records, timeout_s)
    if not records:
        return 0
    if before_batch is not None:
        before_batch()
    result = project_filings(projection.name, records, projection.rows, decode_record)
    stored: Rows = {table: rows for table, rows in result.rows.items() if rows}
    for table, rows in stored.items():
        warehouse.insert(table, rows)
    if on_stored is not None and stored:
        on_stored(stored)
    write_dead_letters(event_log, warehouse, result.dead_letters)
    event_log.commit(topic, projection.name, result.next_offsets)
    return len(records)


class Failures:
    """What keeps failing, by name (a stage's batch, a worker's write): since when (wall clock),
    how many attempts, the latest error, for /health and /ready; cleared by a success. The
    runners of `cem up` and the distributed workers (`cem.faust_worker.FAILING`) keep one each."""

    def __init__(self) -> None:
        self.now: dict[str, dict[str, object]] = {}

    def failed(self, name: str, exc: BaseException) -> bool:
        """Records an attempt that failed; True for the first of a run of them."""
        first = name not in self.now
        was = self.now.get(name, {"since": datetime.now(UTC).isoformat(), "attempts": 0})
        error = f"{type(exc).__name__}: {exc}"[:300]
        self.now[name] = {"since": was["since"], "attempts": cast(int, was["attempts"]) + 1,
                          "error": error}  # fmt: skip
        return first

    def succeeded(self, name: str) -> dict[str, object] | None:
        """Clears a run of failures; what it was, if there was one."""
        return self.now.pop(name, None)


class Runner(threading.Thread):
    """Runs one stage (`step`: one batch, returns the records it read) in a loop until stopped;
    retries a failed batch with backoff."""

    def __init__(
        self,
        name: str,
        step: Callable[[], int],
        on_failing: Callable[[dict[str, object] | None], None] | None = None,
    ) -> None:
        """`on_failing` hears `failing()` each time it changes (the filing process tells its
        parent so)."""
        super().__init__(name=f"runner-{name}", daemon=True)
        self.stage, self.step, self.on_failing = name, step, on_failing
        self.stopping = threading.Event()
        self.processed = 0
        self.failures = Failures()  # while its batch keeps failing

    def run(self) -> None:
        backoff = 0.1
        while not self.stopping.is_set():
            try:
                self.processed += self.step()
            except Exception as exc:
                # The batch is not committed, so it is read again after the pause. The first
                # failure with its traceback; the retries in one line each, not 60 lines every
                # few seconds while a store is down.
                if self.failures.failed(self.stage, exc):
                    log.exception("runner %s failed a batch; retrying", self.stage)
                else:
                    log.warning("runner %s failed its batch again: %s; retrying",
                                self.stage, self.failing())  # fmt: skip
                self._tell()
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            else:
                if (was := self.failures.succeeded(self.stage)) is not None:
                    log.warning("runner %s recovered after %s failed attempts",
                                self.stage, was["attempts"])  # fmt: skip
                    self._tell()
                backoff = 0.1

    def _tell(self) -> None:
        if self.on_failing is not None:
            try:
                self.on_failing(self.failing())
            except Exception:  # noqa: BLE001 - telling is best effort; the stage goes on
                log.warning("runner %s could not tell its state", self.stage, exc_info=True)

    def failing(self) -> dict[str, object] | None:
        """What /health says of a stage whose batch keeps failing; None while it goes on."""
        return self.failures.now.get(self.stage)

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stopping.set()
        self.join(timeout_s)
        if self.is_alive():  # its batch waits on a store: it is abandoned (nothing committed)
            log.warning("runner %s did not finish its batch within %.0f s; not waiting longer",
                        self.stage, timeout_s)  # fmt: skip


def filing_runner(
    event_log: EventLog,
    warehouse: Warehouse,
    filer: Filer | None,
    decode_record: Decode = decode_value,
    eraser: Eraser | None = None,
) -> Runner:
    """The filing stage in a thread."""
    return Runner(
        FILING_STAGE,
        lambda: file_once(event_log, warehouse, filer, decode_record=decode_record, eraser=eraser),
    )


def projection_runner(
    event_log: EventLog,
    warehouse: Warehouse,
    projection: Projection,
    decode_record: Decode = decode_value,
    on_stored: Callable[[Rows], None] | None = None,
    before_batch: Callable[[], None] | None = None,
) -> Runner:
    """One projection over `filings` in a thread."""
    return Runner(
        projection.name,
        lambda: run_once(
            event_log,
            warehouse,
            projection,
            decode_record=decode_record,
            on_stored=on_stored,
            before_batch=before_batch,
        ),
    )


def dead_letter_sink(event_log: EventLog, warehouse: Warehouse) -> Runner:
    """`sink_dead_letters` in a thread (beside a filing stage that runs in another process)."""
    return Runner(DEAD_LETTER_SINK, lambda: sink_dead_letters(event_log, warehouse))


def skip_to_end(event_log: EventLog, topic: str, group: str) -> None:
    """Start a group that has never committed at the topic's end: what came before was
    handled without it (dead letters written to the table by the process that had them)."""
    if not event_log.committed(topic, group):
        event_log.commit(topic, group, event_log.end_offsets(topic))
