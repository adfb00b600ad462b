"""In-memory twins of the event log and the idempotent publisher, for unit tests.

They keep the embedded log's semantics exactly (partitioning, read-from-committed polls, fairness,
duplicate/conflict rules) and lose everything on exit. `classify` is the idempotency rule that
the SQLite publisher shares.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kernel.partitioning import fair_quotas, partition_for
from kernel.ports import (
    TOUCHPOINTS_TOPIC,
    Consumed,
    LogUnavailable,
    Outgoing,
    PublishStatus,
    Record,
)


@dataclass(frozen=True)
class Decision:
    """What to do with one outgoing event; `original` is the fingerprint it was first seen with."""

    status: PublishStatus
    original: str | None = None


_ACCEPTED = Decision(PublishStatus.accepted)  # immutable, so one for every accepted event


def classify(
    events: Sequence[Outgoing], claimed: Callable[[str, str], str | None]
) -> list[Decision]:
    """Accept the first sighting of each (tenant_id, event_id). Later sightings, in this batch or
    known to `claimed` (which returns the stored fingerprint), are duplicates when the fingerprint
    matches and conflicts when it differs."""
    seen: dict[tuple[str, str], str] = {}
    decisions = []
    for event in events:
        identity = (event.tenant_id, event.event_id)
        original = seen[identity] if identity in seen else claimed(*identity)
        if original is None:
            seen[identity] = event.fingerprint
            decisions.append(_ACCEPTED)
        elif original == event.fingerprint:
            decisions.append(Decision(PublishStatus.duplicate, original))
        else:
            decisions.append(Decision(PublishStatus.conflict, original))
    return decisions


def accepted_events(events: Sequence[Outgoing], decisions: Sequence[Decision]) -> list[Outgoing]:
    return [e for e, d in zip(events, decisions, strict=True) if d.status is PublishStatus.accepted]


def check_offsets(offsets: Mapping[int, int], partitions: int) -> None:
    """A commit names existing partitions and non-negative offsets, else it is a caller bug."""
    for partition, offset in offsets.items():
        if not 0 <= partition < partitions:
            raise ValueError(f"partition {partition} does not exist (topic has {partitions})")
        if offset < 0:
            raise ValueError(f"offset {offset} for partition {partition} is negative")


class MemoryLog:
    """An EventLog in memory. Thread-safe; `poll` blocks until an append or the timeout."""

    def __init__(self, partitions: int = 12) -> None:
        if partitions < 1:
            raise ValueError(f"a topic needs at least one partition, got {partitions}")
        self.partitions = partitions
        self._topics: dict[str, list[list[Consumed]]] = {}
        self._groups: dict[tuple[str, str], dict[int, int]] = {}
        self._turns: dict[tuple[str, str], int] = {}
        self._changed = threading.Condition()
        self._closed = False

    def _topic(self, topic: str) -> list[list[Consumed]]:
        if self._closed:
            raise LogUnavailable("the event log is closed")
        return self._topics.setdefault(topic, [[] for _ in range(self.partitions)])

    def append(self, topic: str, records: Sequence[Record]) -> list[tuple[int, int]]:
        with self._changed:
            positions = self._append_locked(topic, records)
            self._changed.notify_all()
        return positions

    def _append_locked(self, topic: str, records: Sequence[Record]) -> list[tuple[int, int]]:
        partitions = self._topic(topic)
        positions = []
        for record in records:
            p = partition_for(record.key, len(partitions))
            offset = len(partitions[p])
            partitions[p].append(
                Consumed(topic, p, offset, record.key, record.value, tuple(record.headers))
            )
            positions.append((p, offset))
        return positions

    def poll(self, topic: str, group: str, max_records: int, timeout_s: float) -> list[Consumed]:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                found = self._read_locked(topic, group, max_records)
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found
                self._changed.wait(remaining)
                if self._closed:
                    return []

    def _read_locked(self, topic: str, group: str, max_records: int) -> list[Consumed]:
        partitions = self._topic(topic)
        position = self._groups.get((topic, group), {})
        backlog = {p: len(rows) - position.get(p, 0) for p, rows in enumerate(partitions)}
        turn = self._turns.get((topic, group), 0)
        self._turns[(topic, group)] = turn + 1
        found: list[Consumed] = []
        for p, quota in fair_quotas(backlog, max_records, turn).items():
            start = position.get(p, 0)
            found += partitions[p][start : start + quota]
        return found

    def commit(self, topic: str, group: str, offsets: Mapping[int, int]) -> None:
        with self._changed:
            check_offsets(offsets, len(self._topic(topic)))
            self._groups.setdefault((topic, group), {}).update(offsets)

    def committed(self, topic: str, group: str) -> dict[int, int]:
        with self._changed:
            self._topic(topic)
            return dict(self._groups.get((topic, group), {}))

    def end_offsets(self, topic: str) -> dict[int, int]:
        with self._changed:
            return {p: len(rows) for p, rows in enumerate(self._topic(topic))}

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()


class MemoryPublisher:
    """A Publisher on a MemoryLog: claim and append happen under one lock, so they are atomic."""

    def __init__(self, log: MemoryLog, topic: str = TOUCHPOINTS_TOPIC) -> None:
        self.log, self.topic = log, topic
        self._claims: dict[tuple[str, str], str] = {}
        self._conflicts: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def publish(self, events: Sequence[Outgoing]) -> list[PublishStatus]:
        with self._lock:
            decisions = classify(events, lambda tenant, event: self._claims.get((tenant, event)))
            accepted = accepted_events(events, decisions)
            self.log.append(self.topic, [e.record for e in accepted])
            for event in accepted:
                self._claims[(event.tenant_id, event.event_id)] = event.fingerprint
            self._record_conflicts(events, decisions)
        return [d.status for d in decisions]

    def _record_conflicts(self, events: Sequence[Outgoing], decisions: list[Decision]) -> None:
        now = datetime.now(UTC)
        for event, decision in zip(events, decisions, strict=True):
            if decision.status is PublishStatus.conflict:
                self._conflicts.append(conflict_row(event, decision, now))

    def conflicts(self, tenant_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The tenant's recorded conflicts, newest first."""
        with self._lock:
            mine = [c for c in reversed(self._conflicts) if c["tenant_id"] == tenant_id]
        return mine[:limit]


def conflict_row(event: Outgoing, decision: Decision, recorded_at: datetime) -> dict[str, Any]:
    """The shape `conflicts()` returns, shared by every publisher."""
    return {
        "tenant_id": event.tenant_id,
        "event_id": event.event_id,
        "original_fingerprint": decision.original,
        "fingerprint": event.fingerprint,
        "value": event.record.value,
        "recorded_at": recorded_at,
    }
