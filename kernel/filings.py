"""The filing stage: identity resolves each touchpoint once, and the decision goes on the log.

One consumer group (`FILING_STAGE`) reads `touchpoints`, decodes and admits each batch, asks the
`Filer` which customer every event belongs to, and appends one *filing* per event to the
`filings` topic: the event's stored bytes, unchanged, keyed by the customer (so one customer's
filings share a partition and an order), with headers naming the customer and the touchpoint's
position. Only then does it commit its `touchpoints` offsets (at least once).

Every projection reads `filings`: it decodes the same bytes it used to read from `touchpoints` and
takes the customer from the header, so it stays a pure function of (event, customer id) and no
consumer touches the identity store. A replay reads the same filings, so it needs no identity store
either. A redelivered batch is filed again (the same customer, or one of the same group after a
merge): the second filing of an event carries the same event id, and every table is deduplicated
by event id (ReplacingMergeTree, read with FINAL or LIMIT 1 BY event_id), so it counts once.

A platform event about the tenant (a drift alert's action, `schemas.families.is_tenant_level`) is
filed under its reserved subject without asking identity, and one naming the customer it is about
(an at-risk alert's action, `schemas.families.filed_customer`) under that customer as it is, also
without identity (`kernel.processing.file_events`). Without a filer (identity off) an event
is filed under `customer_key(event.customer)`, exactly as
projections filed it before there was a filing stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kernel.partitioning import partition_key
from kernel.ports import Consumed, Record
from kernel.processing import (
    INPUT_ERRORS_OWNER,
    Admission,
    BatchResult,
    DeadLetter,
    Decode,
    Decoded,
    Eraser,
    Filer,
    NotErased,
    Project,
    Unadmitted,
    Unfiled,
    admit_batch,
    dead_letter,
    decode_batch,
    decode_value,
    file_events,
    project_batch,
)
from schemas.envelope import Event
from schemas.families import ERASURE_TYPE
from schemas.validate import encode

# The filing stage's consumer group and its dead letters' stage: it owns the input errors.
FILING_STAGE = INPUT_ERRORS_OWNER
# An erasure that failed on an error other than an outage: a dead letter, not filed, so that
# `cem dead-letters` carries it out again once the cause is fixed.
ERASURE_FAILED = "erasure_failed"
CUSTOMER_HEADER = "cem-customer-id"  # the customer (home id) the event is filed under
SOURCE_PARTITION_HEADER = "cem-source-partition"  # where the touchpoint sits in `touchpoints`
SOURCE_OFFSET_HEADER = "cem-source-offset"
# Where the positions of `filings` start among the positions a projection stamps on its rows (the
# live stream's arrivals): a release before the filing stage stamped those of `touchpoints`, from
# partition 0, so after an upgrade the two never compare (services/projections/arrivals.py). Above
# any partition count a topic is given, within what a stream cursor holds (65,535).
FILING_POSITIONS = 1 << 15


@dataclass
class FiledBatch:
    """What the filing stage does with one batch: filings to append, dead letters to write, and
    the `touchpoints` offsets to commit once both are durable."""

    filings: list[Record] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    next_offsets: dict[int, int] = field(default_factory=dict)


def filing_record(rec: Consumed, event: Event, home_id: str, *, direct: bool = False) -> Record:
    """The filing of one touchpoint. An ingest record's bytes are kept as they are; a producer's
    own record (`direct`, admitted here) is stored in the ingest's form, so downstream decodes
    one form."""
    value = encode(event) if direct else rec.value
    headers = (
        (CUSTOMER_HEADER, home_id.encode()),
        (SOURCE_PARTITION_HEADER, str(rec.partition).encode()),
        (SOURCE_OFFSET_HEADER, str(rec.offset).encode()),
    )
    return Record(partition_key(event.tenant_id, home_id), value, headers)


def file_batch(
    records: Sequence[Consumed],
    filer: Filer | None,
    decode_record: Decode = decode_value,
    admission: Admission | None = None,
    eraser: Eraser | None = None,
) -> FiledBatch:
    """Decode, admit and file a batch; what cannot be decoded, admitted or filed becomes a dead
    letter (this stage owns the input errors). The admission, the filer and the eraser are the
    only parts that read or write; when they raise (a store is unavailable), nothing is appended
    or committed and the batch is retried whole. The batch's erasures (`customer.erased`) are
    carried out before its filings are appended, so the erasure's own filing follows them; one
    that fails otherwise than by an outage (`NotErased`) is a dead letter, not filed. Each
    erasure is carried out before the events after it in the batch are filed, so they are filed
    as in a later batch (an erased identifier names nobody): where the batch ends does not
    change whose they are."""
    decoded = decode_batch(FILING_STAGE, records, decode_record)
    direct = {id(rec) for rec, item in decoded.events if isinstance(item, Unadmitted)}
    admit_batch(decoded, admission)
    events = [_event_of(item) for _, item in decoded.events]
    homes: list[str | Unfiled] = []
    failed: dict[int, NotErased] = {}
    for segment in _up_to_each_erasure(events):
        homes += file_events(segment, filer)
        last, home = segment[-1], homes[-1]
        if eraser is not None and last.type == ERASURE_TYPE and isinstance(home, str):
            [outcome] = eraser.erase([(last, home)])
            if outcome is not None:
                failed[id(last)] = outcome
    batch = FiledBatch(next_offsets=decoded.result.next_offsets)
    batch.dead_letters = decoded.result.dead_letters
    for (rec, item), home in zip(decoded.events, homes, strict=True):
        if isinstance(home, Unfiled):
            batch.dead_letters.append(dead_letter(FILING_STAGE, rec, "unfiled", home))
        elif (not_erased := failed.get(id(_event_of(item)))) is not None:
            batch.dead_letters.append(dead_letter(FILING_STAGE, rec, ERASURE_FAILED, not_erased))
        else:
            record = filing_record(rec, _event_of(item), home, direct=id(rec) in direct)
            batch.filings.append(record)
    return batch


def _up_to_each_erasure(events: list[Event]) -> list[list[Event]]:
    """The batch cut after each erasure: the events up to it, then the next ones."""
    segments: list[list[Event]] = [[]]
    for event in events:
        segments[-1].append(event)
        if event.type == ERASURE_TYPE:
            segments.append([])
    return [s for s in segments if s]


def _event_of(item: Event | Unadmitted) -> Event:
    return item.event if isinstance(item, Unadmitted) else item


def filed_home(rec: Consumed) -> str | Unfiled:
    """The customer a filing names; a record without one was not written by the filing stage."""
    for name, value in rec.headers:
        if name == CUSTOMER_HEADER:
            return value.decode()
    return Unfiled(f"a filing needs a {CUSTOMER_HEADER} header")


def source_position(rec: Consumed) -> tuple[int, int] | None:
    """Where a filing's touchpoint sits in `touchpoints` (partition, offset); None if not said."""
    found = dict(rec.headers)
    partition, offset = found.get(SOURCE_PARTITION_HEADER), found.get(SOURCE_OFFSET_HEADER)
    return None if partition is None or offset is None else (int(partition), int(offset))


def through_touchpoints(decode_record: Decode, touchpoints: str) -> Decode:
    """Decode a filing as its touchpoint (same bytes) at the touchpoint's position, so a decoder
    that caches by position (`kernel.decoding.SharedDecoder`) hands the projections the event the
    filing stage of the same process already decoded."""

    def decode_filing(rec: Consumed) -> Event | Unadmitted:
        source = source_position(rec)
        if source is None:
            return decode_record(rec)
        return decode_record(Consumed(touchpoints, *source, rec.key, rec.value, rec.headers))

    return decode_filing


def project_filings(
    stage: str, records: Sequence[Consumed], project: Project, decode_record: Decode = decode_value
) -> BatchResult:
    """Decode a batch of filings and project each event under the customer its filing names.
    Pure: a projection never reads the identity store. What fails here is this group's own dead
    letter (the bytes were admitted upstream, so a failure is the projection's, not the input's)."""
    decoded: Decoded = decode_batch(stage, records, decode_record)
    homes = [filed_home(rec) for rec, _ in decoded.events]
    return project_batch(decoded, project, homes, FILING_POSITIONS)
