"""Turn a batch of log records into warehouse rows: pure, shared by every runner.

A runner (the embedded loop or a faust agent) reads a batch, calls `process_batch`, writes the rows,
appends the dead letters, and only then commits the offsets it returns.
"""

from __future__ import annotations

import traceback
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from cem.ports import Consumed
from schemas.envelope import Event
from schemas.validate import decode

Rows = dict[str, list[dict[str, Any]]]


class Projection(Protocol):
    """A pure function from events to warehouse rows, with the DDL of the tables it writes."""

    name: str

    def ddl(self, version: tuple[int, ...]) -> list[str]:
        """CREATE TABLE IF NOT EXISTS statements for the given server version."""
        ...

    def rows(self, event: Event) -> Rows:
        """The rows one event contributes, by table. No I/O, clock or randomness."""
        ...


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
        }

    def to_json(self) -> bytes:
        return orjson.dumps(
            {**self.to_row(datetime.now(UTC)), "headers": [h[0] for h in self.headers]}
        )


@dataclass
class BatchResult:
    rows: Rows = field(default_factory=lambda: defaultdict(list))
    dead_letters: list[DeadLetter] = field(default_factory=list)
    next_offsets: dict[int, int] = field(default_factory=dict)
    events: int = 0


def to_micros(ts: datetime) -> int:
    """Timestamps are stored as epoch microseconds (Int64): exact, sortable, on every server."""
    return int(ts.timestamp()) * 1_000_000 + ts.microsecond


def _dead(stage: str, rec: Consumed, reason: str, exc: BaseException) -> DeadLetter:
    error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return DeadLetter(
        stage, rec.topic, rec.partition, rec.offset, rec.key, rec.value, reason, error, rec.headers
    )


def process_batch(
    stage: str,
    records: Sequence[Consumed],
    project: Callable[[Event], Rows],
    decode_record: Callable[[Consumed], Event] = lambda r: decode(r.value),
) -> BatchResult:
    """Decode and project every record; failures become dead letters and processing continues."""
    result = BatchResult()
    for rec in records:
        result.next_offsets[rec.partition] = rec.offset + 1
        try:
            event = decode_record(rec)
        except Exception as exc:  # undecodable bytes or an unknown schema version (F07)
            result.dead_letters.append(_dead(stage, rec, "undecodable", exc))
            continue
        try:
            produced = project(event)
        except Exception as exc:  # a poison event: valid bytes, processing raises (F06)
            result.dead_letters.append(_dead(stage, rec, "processing_failed", exc))
            continue
        result.events += 1
        for table, rows in produced.items():
            result.rows[table].extend(rows)
    return result
