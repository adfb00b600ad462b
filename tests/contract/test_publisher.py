"""The Publisher contract: idempotent by (tenant_id, event_id), run on every adapter.

Another adapter joins by subclassing `PublisherContract` (or `DurablePublisherContract`) and
implementing `make` (and `reopen`).
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest

from cem.adapters.memory_log import MemoryLog, MemoryPublisher
from cem.adapters.sqlite_log import SqliteLog, SqlitePublisher
from kernel.partitioning import partition_for, partition_key
from kernel.ports import (
    TOUCHPOINTS_TOPIC,
    Consumed,
    EventLog,
    Outgoing,
    PublishStatus,
    Record,
    StorageFull,
)

ACCEPTED, DUPLICATE, CONFLICT = (
    PublishStatus.accepted,
    PublishStatus.duplicate,
    PublishStatus.conflict,
)
PARTITIONS = 4


class RecordingPublisher(Protocol):
    """A Publisher that also lists the conflicts it recorded."""

    def publish(self, events: Sequence[Outgoing]) -> list[PublishStatus]: ...

    def conflicts(self, tenant_id: str, limit: int = 100) -> list[dict[str, Any]]: ...


def outgoing(tenant: str, event_id: str, body: bytes, customer: str = "cust-1") -> Outgoing:
    """An event as the ingest hands it over: the fingerprint is a hash of what was sent."""
    value = b'{"event_id":"%s","body":"%s"}' % (event_id.encode(), body)
    key = partition_key(tenant, customer)
    return Outgoing(tenant, event_id, hashlib.sha256(body).hexdigest(), Record(key, value))


def stored(log: EventLog) -> list[Consumed]:
    group = f"check-{uuid.uuid4().hex[:8]}"
    return log.poll(TOUCHPOINTS_TOPIC, group, 100_000, 0.05)


class PublisherContract:
    """Behaviour every Publisher must show. Subclasses provide `make`."""

    def make(self, tmp_path: Path) -> tuple[RecordingPublisher, EventLog]:
        raise NotImplementedError

    @pytest.fixture
    def pair(self, tmp_path: Path) -> Iterator[tuple[RecordingPublisher, EventLog]]:
        publisher, log = self.make(tmp_path)
        yield publisher, log
        log.close()

    @pytest.fixture
    def tenant(self) -> str:
        return f"tenant-{uuid.uuid4().hex[:8]}"

    def test_a_new_event_is_accepted_and_stored_on_its_customers_partition(
        self, pair: tuple[RecordingPublisher, EventLog], tenant: str
    ) -> None:
        publisher, log = pair
        event = outgoing(tenant, str(uuid.uuid4()), b"hello", customer="alice")
        assert publisher.publish([event]) == [ACCEPTED]
        [record] = stored(log)
        assert record.value == event.record.value
        assert record.partition == partition_for(partition_key(tenant, "alice"), PARTITIONS)

    def test_the_same_event_again_is_a_duplicate_and_appends_nothing(
        self, pair: tuple[RecordingPublisher, EventLog], tenant: str
    ) -> None:
        publisher, log = pair
        event = outgoing(tenant, str(uuid.uuid4()), b"hello")
        publisher.publish([event])
        ends = log.end_offsets(TOUCHPOINTS_TOPIC)
        assert publisher.publish([event]) == [DUPLICATE]
        assert log.end_offsets(TOUCHPOINTS_TOPIC) == ends
        assert publisher.conflicts(tenant) == []

    def test_same_id_other_payload_is_a_recorded_conflict_and_the_original_stays(
        self, pair: tuple[RecordingPublisher, EventLog], tenant: str
    ) -> None:
        publisher, log = pair
        event_id = str(uuid.uuid4())
        original, changed = (
            outgoing(tenant, event_id, b"first"),
            outgoing(tenant, event_id, b"second"),
        )
        publisher.publish([original])
        assert publisher.publish([changed]) == [CONFLICT]
        assert [r.value for r in stored(log)] == [original.record.value]
        [conflict] = publisher.conflicts(tenant)
        assert conflict["event_id"] == event_id and conflict["tenant_id"] == tenant
        assert conflict["original_fingerprint"] == original.fingerprint
        assert conflict["fingerprint"] == changed.fingerprint
        assert conflict["value"] == changed.record.value
        assert abs(conflict["recorded_at"] - datetime.now(UTC)) < timedelta(minutes=1)

    def test_repeats_inside_one_batch_count_too(
        self, pair: tuple[RecordingPublisher, EventLog], tenant: str
    ) -> None:
        publisher, log = pair
        a, b = str(uuid.uuid4()), str(uuid.uuid4())
        batch = [
            outgoing(tenant, a, b"1"),
            outgoing(tenant, a, b"1"),
            outgoing(tenant, a, b"2"),
            outgoing(tenant, b, b"1"),
        ]
        assert publisher.publish(batch) == [ACCEPTED, DUPLICATE, CONFLICT, ACCEPTED]
        assert sorted(r.value for r in stored(log)) == sorted(
            [batch[0].record.value, batch[3].record.value]
        )
        assert [c["original_fingerprint"] for c in publisher.conflicts(tenant)] == [
            batch[0].fingerprint
        ]

    def test_every_submitted_event_gets_one_status(
        self, pair: tuple[RecordingPublisher, EventLog], tenant: str
    ) -> None:
        publisher, _ = pair
        ids = [str(uuid.uuid4()) for _ in range(20)]
        publisher.publish([outgoing(tenant, i, b"x") for i in ids[:10]])
        statuses = publisher.publish([outgoing(tenant, i, b"x") for i in ids])
        assert Counter(statuses) == {DUPLICATE: 10, ACCEPTED: 10}
        assert publisher.publish([]) == []

    def test_event_ids_are_scoped_to_the_tenant(
        self, pair: tuple[RecordingPublisher, EventLog], tenant: str
    ) -> None:
        publisher, log = pair
        event_id = str(uuid.uuid4())
        mine, theirs = outgoing(tenant, event_id, b"a"), outgoing(f"{tenant}-other", event_id, b"b")
        assert publisher.publish([mine, theirs]) == [ACCEPTED, ACCEPTED]
        assert len(stored(log)) == 2

    def test_conflicts_are_listed_per_tenant_newest_first(
        self, pair: tuple[RecordingPublisher, EventLog], tenant: str
    ) -> None:
        publisher, _ = pair
        other = f"{tenant}-other"
        ids = [str(uuid.uuid4()) for _ in range(3)]
        publisher.publish(
            [outgoing(tenant, i, b"v1") for i in ids] + [outgoing(other, ids[0], b"v1")]
        )
        for i in ids:
            publisher.publish([outgoing(tenant, i, b"v2")])
        publisher.publish([outgoing(other, ids[0], b"v2")])
        assert [c["event_id"] for c in publisher.conflicts(tenant, limit=2)] == [ids[2], ids[1]]
        assert [c["tenant_id"] for c in publisher.conflicts(other)] == [other]
        assert publisher.conflicts(f"{tenant}-nobody") == []

    def test_concurrent_publishers_of_the_same_events_store_each_once(
        self, pair: tuple[RecordingPublisher, EventLog], tenant: str
    ) -> None:
        publisher, log = pair
        events = [outgoing(tenant, str(uuid.uuid4()), b"x", customer=f"c{i}") for i in range(50)]
        results: list[list[PublishStatus]] = []

        def send() -> None:
            for start in range(0, 50, 10):
                results.append(publisher.publish(events[start : start + 10]))

        threads = [threading.Thread(target=send) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60.0)
        assert Counter(s for batch in results for s in batch) == {ACCEPTED: 50, DUPLICATE: 150}
        assert sorted(r.value for r in stored(log)) == sorted(e.record.value for e in events)


class DurablePublisherContract(PublisherContract):
    """For publishers whose claims outlive the process: subclasses also provide `reopen`."""

    def reopen(
        self, publisher: RecordingPublisher, log: EventLog
    ) -> tuple[RecordingPublisher, EventLog]:
        raise NotImplementedError

    def test_duplicates_and_conflicts_are_caught_after_a_restart(
        self, pair: tuple[RecordingPublisher, EventLog], tenant: str
    ) -> None:
        event_id = str(uuid.uuid4())
        pair[0].publish([outgoing(tenant, event_id, b"first")])
        publisher, log = self.reopen(*pair)
        try:
            again = [outgoing(tenant, event_id, b"first"), outgoing(tenant, event_id, b"second")]
            assert publisher.publish(again) == [DUPLICATE, CONFLICT]
            assert len(stored(log)) == 1
            assert [c["event_id"] for c in publisher.conflicts(tenant)] == [event_id]
        finally:
            log.close()


class TestMemoryPublisher(PublisherContract):
    def make(self, tmp_path: Path) -> tuple[RecordingPublisher, EventLog]:
        log = MemoryLog(PARTITIONS)
        return MemoryPublisher(log), log


class TestSqlitePublisher(DurablePublisherContract):
    def make(self, tmp_path: Path) -> tuple[RecordingPublisher, EventLog]:
        log = SqliteLog(tmp_path / "log.db", PARTITIONS)
        return SqlitePublisher(log), log

    def reopen(
        self, publisher: RecordingPublisher, log: EventLog
    ) -> tuple[RecordingPublisher, EventLog]:
        assert isinstance(log, SqliteLog)
        log.close()
        reopened = SqliteLog(log.path, PARTITIONS)
        return SqlitePublisher(reopened), reopened

    def test_a_failed_publish_claims_and_appends_nothing(self, tmp_path: Path, tenant: str) -> None:
        # The claim and the append share one transaction. Long event ids make the claims, written
        # after the records, overflow the cap: the records already written must roll back too,
        # and the client's retry after space returns is accepted, not reported as a duplicate.
        path = tmp_path / "capped.db"
        capped = SqliteLog(path, PARTITIONS, max_bytes=256 * 1024)
        events = [
            Outgoing(tenant, os.urandom(800).hex(), f"fp{i}", Record(f"k{i}".encode(), b"v"))
            for i in range(400)
        ]
        with pytest.raises(StorageFull):
            SqlitePublisher(capped).publish(events)
        assert sum(capped.end_offsets(TOUCHPOINTS_TOPIC).values()) == 0
        capped.close()
        roomy = SqliteLog(path, PARTITIONS)
        try:
            assert SqlitePublisher(roomy).publish(events) == [ACCEPTED] * 400
            assert len(stored(roomy)) == 400
        finally:
            roomy.close()
