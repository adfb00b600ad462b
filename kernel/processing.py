"""Turn a batch of log records into warehouse rows, shared by every runner.

An event goes through three stages: decode, file, project. Decoding and projecting are pure.
Filing decides which customer each event belongs to; that is identity resolution, which reads and
records (a `Filer`, passed in by the composition root). The runners split the stages across the
log (`kernel.filings`): the filing stage reads `touchpoints`, files each event once and appends
the decision to `filings`; every projection reads `filings` and projects each event under the
customer its filing names, so a projection stays a pure function of (event, customer id) and
never touches the identity store. Without a filer an event is filed under
`customer_key(event.customer)`. `process_batch` runs all three in one call (tests, tools).

A runner reads a batch, processes it, writes what it produced, appends the dead letters, and only
then commits the offsets it read up to.
"""

from __future__ import annotations

import traceback
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from kernel.customer_key import customer_key
from kernel.ports import Consumed, LogUnavailable, PublishStatus, Warehouse
from schemas.envelope import Event
from schemas.families import TENANT_SUBJECT, filed_customer, is_tenant_level
from schemas.validate import decode

Rows = dict[str, list[dict[str, Any]]]


class Projection(Protocol):
    """A pure function from events to warehouse rows, with the DDL of the tables it writes."""

    name: str

    def ddl(self, version: tuple[int, ...]) -> list[str]:
        """CREATE TABLE IF NOT EXISTS statements for the given server version."""
        ...

    def migrate(self, warehouse: Warehouse) -> None:
        """Bring tables an earlier release created up to date, after `ddl` ran (idempotent;
        every process runs it at start, before writing)."""
        ...

    def rows(self, event: Event, customer_id: str | None = None) -> Rows:
        """The rows one event contributes, by table, filed under `customer_id` (the filer's answer;
        None: `customer_key(event.customer)`). No I/O, clock or randomness."""
        ...


class Project(Protocol):
    """What `process_batch` calls per event: a projection's `rows`."""

    def __call__(self, event: Event, customer_id: str | None = None, /) -> Rows: ...


class Unfiled(Exception):
    """Why one event could not be filed under any customer; it becomes a dead letter."""


class Filer(Protocol):
    """Decides which customer each event is filed under (identity resolution: reads and writes).

    The same event always gets the same answer, from any consumer and on any replay. Returns one
    answer per event, in order: a customer id, or `Unfiled` for an event that can never be filed
    (a dead letter). Raises when the store cannot answer now; the batch is then retried whole."""

    def file(self, events: Sequence[Event]) -> list[str | Unfiled]: ...


class NotErased(Exception):
    """Why one erasure could not be carried out, an outage aside (a bug, a table the deletions
    do not fit): its record becomes a dead letter and is not filed, so the stage goes on."""


class Eraser(Protocol):
    """Carries out the erasures a batch holds (`customer.erased` events, each with the customer
    it was filed under): the filing stage owns the identity store and the key vault, so it runs
    them when it files them (`cem.erasure`). Idempotent: a redelivered batch erases again and
    changes nothing more. Returns one answer per erasure, in order: None when carried out, or
    `NotErased` (a dead letter). Raises when a store cannot answer now; the batch is then
    retried."""

    def erase(self, erasures: Sequence[tuple[Event, str]]) -> list[NotErased | None]: ...


def file_events(events: Sequence[Event], filer: Filer | None) -> list[str | Unfiled]:
    """The customer each event is filed under: the filer's answer (without one,
    `customer_key`), except for a platform event that names where it goes, filed there without
    asking identity: a tenant-level one (a manager's action on a drift alert) under
    `TENANT_SUBJECT`, so no customer is made of it, and one about a customer (an action on an
    at-risk alert) under exactly the customer it names (`schemas.families.filed_customer`), so
    it lands on the alert's customer whoever holds the customer's identifiers now."""
    named = [_named_home(e) for e in events]
    if filer is None:
        return [home or customer_key(e.customer) for e, home in zip(events, named, strict=True)]
    people = [e for e, home in zip(events, named, strict=True) if home is None]
    found = iter(filer.file(people) if people else [])
    return [home or next(found) for home in named]


def _named_home(event: Event) -> str | None:
    return TENANT_SUBJECT if is_tenant_level(event) else filed_customer(event)


@dataclass(frozen=True)
class Unadmitted:
    """A producer's own event read straight off the topic. Unlike the ingest's records, nothing
    has applied the idempotency rule to it yet (ARCHITECTURE invariants; RELIABILITY S08)."""

    event: Event
    fingerprint: str


class Admission(Protocol):
    """Applies the HTTP ingest's idempotency rule to events read straight off the topic.

    Per item: `accepted` (the first record of its (tenant_id, event_id)), `duplicate` (the same
    event again: kept out, nothing to report) or `conflict` (another body under an accepted id:
    recorded, kept out). Every consumer group and every replay gets the same answer for the same
    record. Raises when its store cannot answer now; the batch is then retried whole."""

    def admit(self, items: Sequence[tuple[Consumed, Unadmitted]]) -> list[PublishStatus]: ...


# Which stage reports what is wrong with the input itself (undecodable bytes, conflicts): only the
# filing stage reads `touchpoints` (`kernel.filings.FILING_STAGE`); one dead letter per record.
INPUT_ERRORS_OWNER = "filing"


@dataclass
class DeadLetter:
    """A record that could not be processed, kept with its original bytes and the reason."""

    stage: str
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    reason: str
    error: str
    headers: tuple[tuple[str, bytes], ...] = ()

    def to_row(self, failed_at: datetime) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key.decode("utf-8", "replace"),
            "value_hex": self.value.hex(),
            "reason": self.reason,
            "error": self.error[:4000],
            "failed_at": to_micros(failed_at),
            # JSON text of the list `to_json` carries: a replay needs the record's headers too
            # (a producer's tenant_id, the ingest's seal).
            "headers": orjson.dumps(self._headers()).decode(),
        }

    def _headers(self) -> list[dict[str, str]]:
        return [{"name": name, "value_hex": value.hex()} for name, value in self.headers]

    def to_json(self) -> bytes:
        """The dead-letter topic's form: the row plus the record's headers, values included
        (hex, like the value: a header need not be text), so a replay has the whole record."""
        return orjson.dumps({**self.to_row(datetime.now(UTC)), "headers": self._headers()})


@dataclass
class BatchResult:
    rows: Rows = field(default_factory=lambda: defaultdict(list))
    dead_letters: list[DeadLetter] = field(default_factory=list)
    next_offsets: dict[int, int] = field(default_factory=dict)
    events: int = 0


def to_micros(ts: datetime) -> int:
    """Timestamps are stored as epoch microseconds (Int64): exact, sortable, on every server."""
    return int(ts.timestamp()) * 1_000_000 + ts.microsecond


def dead_letter(stage: str, rec: Consumed, reason: str, exc: BaseException) -> DeadLetter:
    error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return DeadLetter(
        stage, rec.topic, rec.partition, rec.offset, rec.key, rec.value, reason, error, rec.headers
    )


@dataclass
class Decoded:
    """A batch after decoding: the events with their records, and what could not be decoded."""

    stage: str
    events: list[tuple[Consumed, Event | Unadmitted]] = field(default_factory=list)
    result: BatchResult = field(default_factory=BatchResult)
    reports_input_errors: bool = True

    def reject(self, rec: Consumed, reason: str, exc: BaseException) -> None:
        """A record that is wrong in itself: dead-lettered by one consumer group only."""
        if self.reports_input_errors:
            self.result.dead_letters.append(dead_letter(self.stage, rec, reason, exc))


Decode = Callable[[Consumed], Event | Unadmitted]


def decode_value(record: Consumed) -> Event:
    """The default `Decode`: parse the record's bytes (raises on bad bytes)."""
    return decode(record.value)


def decode_batch(
    stage: str,
    records: Sequence[Consumed],
    decode_record: Decode = decode_value,
    *,
    reports_input_errors: bool = True,
) -> Decoded:
    """Decode every record; undecodable ones become dead letters (when this group reports input
    errors). A store the decoding reads being down (the key vault that opens sealed records) is
    no fault of the record: LogUnavailable goes up, and the batch is retried, not dead-lettered.
    Pure."""
    decoded = Decoded(stage, reports_input_errors=reports_input_errors)
    for rec in records:
        decoded.result.next_offsets[rec.partition] = rec.offset + 1
        try:
            decoded.events.append((rec, decode_record(rec)))
        except LogUnavailable:
            raise
        except Exception as exc:  # undecodable bytes or an unknown schema version (F07)
            decoded.reject(rec, "undecodable", exc)
    return decoded


class Conflicting(ValueError):
    """A record reusing an accepted event_id with another body; the original stays."""


def admit_batch(decoded: Decoded, admission: Admission | None) -> None:
    """Keep only the admitted events: duplicates leave silently, conflicts as dead letters.
    Without an admission (the embedded log, written by the ingest alone) every event stays."""
    unadmitted = [(rec, item) for rec, item in decoded.events if isinstance(item, Unadmitted)]
    verdicts = iter(admission.admit(unadmitted) if admission and unadmitted else [])
    kept: list[tuple[Consumed, Event | Unadmitted]] = []
    for rec, item in decoded.events:
        verdict = next(verdicts, PublishStatus.accepted) if isinstance(item, Unadmitted) else None
        if verdict is PublishStatus.conflict:
            message = "event_id already accepted with another body; the original is kept"
            decoded.reject(rec, "conflict", Conflicting(message))
        elif verdict is not PublishStatus.duplicate:
            kept.append((rec, _event(item)))
    decoded.events = kept


def _event(item: Event | Unadmitted) -> Event:
    return item.event if isinstance(item, Unadmitted) else item


def stamp_position(produced: Rows, rec: Consumed, partition_base: int = 0) -> None:
    """Fill in the log position a projection asked for by leaving `log_partition` and
    `log_offset` in a row: only the batch knows where its record sits in the log (the console's
    live stream follows arrival into the warehouse by that position). `partition_base` tells the
    positions of one topic apart from another's (`kernel.filings.FILING_POSITIONS`)."""
    for rows in produced.values():
        for row in rows:
            if "log_offset" in row:
                row["log_partition"] = partition_base + rec.partition
                row["log_offset"] = rec.offset


def project_batch(
    decoded: Decoded,
    project: Project,
    homes: Sequence[str | Unfiled] | None = None,
    partition_base: int = 0,
) -> BatchResult:
    """Project every decoded event under its customer (`homes`, in order; None: its customer
    key); failures become dead letters and processing continues. Pure."""
    result = decoded.result
    for i, (rec, item) in enumerate(decoded.events):
        event = _event(item)
        home = homes[i] if homes is not None else None
        if isinstance(home, Unfiled):
            result.dead_letters.append(dead_letter(decoded.stage, rec, "unfiled", home))
            continue
        try:
            produced = project(event) if home is None else project(event, home)
        except Exception as exc:  # a poison event: valid bytes, processing raises (F06)
            result.dead_letters.append(dead_letter(decoded.stage, rec, "processing_failed", exc))
            continue
        result.events += 1
        stamp_position(produced, rec, partition_base)
        for table, rows in produced.items():
            result.rows[table].extend(rows)
    return result


def process_batch(
    stage: str,
    records: Sequence[Consumed],
    project: Project,
    decode_record: Decode = decode_value,
    *,
    filer: Filer | None = None,
    admission: Admission | None = None,
) -> BatchResult:
    """Decode, admit, file and project a batch in one call (the runners split it in two, see
    `kernel.filings`); failures become dead letters and processing continues. The admission and
    the filer, when given, are the only stages that read or write anything; an exception from
    them (a store is unavailable) propagates, so the caller retries the batch."""
    decoded = decode_batch(stage, records, decode_record)
    admit_batch(decoded, admission)
    events = [_event(item) for _, item in decoded.events]
    homes = file_events(events, filer)
    return project_batch(decoded, project, homes)
