"""The Publisher contract on `IdempotentPublisher`: on in-memory twins (fast, no engines) and on
KafkaLog + PostgresIdempotencyIndex (the distributed mode), plus the claim-before-publish rules:
a claim stays `pending` until the log acknowledged, a pending claim is published again, and a
different payload is a conflict even while the first one's fate is unknown."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cem.adapters.kafka_log import KafkaLog
from cem.adapters.memory_log import Decision, MemoryLog, conflict_row
from cem.adapters.postgres_idempotency import PostgresIdempotencyIndex
from cem.publishing import (
    Claim,
    ConflictSeen,
    IdempotentPublisher,
    Identity,
    decide,
    first_sightings,
)
from kernel.ports import (
    EventLog,
    LogUnavailable,
    Outgoing,
    PublishStatus,
    Record,
)
from tests.contract.test_event_log_kafka import dead_bootstrap
from tests.contract.test_publisher import (
    ACCEPTED,
    CONFLICT,
    DUPLICATE,
    PARTITIONS,
    DurablePublisherContract,
    PublisherContract,
    RecordingPublisher,
    outgoing,
    stored,
)

# ------------------------------------------------------------------ the in-memory twin index


class _MemoryClaimLock:
    def __init__(self, claims: dict[Identity, Claim]) -> None:
        self._claims = claims
        self.published: list[Identity] = []
        self.conflicts: list[ConflictSeen] = []

    def claims(self) -> Mapping[Identity, Claim]:
        return self._claims

    def mark_published(self, identities: Sequence[Identity]) -> None:
        self.published += identities

    def record_conflicts(self, conflicts: Sequence[ConflictSeen]) -> None:
        self.conflicts += conflicts


class MemoryIdempotencyIndex:
    """An IdempotencyIndex in memory with the PostgreSQL adapter's rules: first claim wins, locks
    per identity taken in order with a timeout, changes applied only when the holder finishes."""

    def __init__(self) -> None:
        self.claims: dict[Identity, Claim] = {}
        self._conflicts: list[dict[str, Any]] = []
        self._guard = threading.Lock()
        self._locks: defaultdict[Identity, threading.Lock] = defaultdict(threading.Lock)

    def claim(self, events: Sequence[Outgoing]) -> None:
        with self._guard:
            for e in events:
                self.claims.setdefault((e.tenant_id, e.event_id), Claim(e.fingerprint, False))

    @contextmanager
    def lock(self, identities: Sequence[Identity], timeout_s: float) -> Iterator[_MemoryClaimLock]:
        deadline, held = time.monotonic() + timeout_s, []
        try:
            for identity in sorted(identities):
                with self._guard:
                    lock = self._locks[identity]
                if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    raise LogUnavailable(f"claim {identity} is held by another publisher")
                held.append(lock)
            with self._guard:
                session = _MemoryClaimLock({i: self.claims[i] for i in identities})
            yield session
            self._apply(session)
        finally:
            for lock in reversed(held):
                lock.release()

    def _apply(self, session: _MemoryClaimLock) -> None:
        now = datetime.now(UTC)
        with self._guard:
            for identity in session.published:
                self.claims[identity] = Claim(self.claims[identity].fingerprint, True)
            for c in session.conflicts:
                decision = Decision(PublishStatus.conflict, c.original_fingerprint)
                self._conflicts.append(conflict_row(c.event, decision, now))

    def conflicts(self, tenant_id: str, limit: int = 100) -> list[dict[str, Any]]:
        with self._guard:
            mine = [c for c in reversed(self._conflicts) if c["tenant_id"] == tenant_id]
        return mine[:limit]

    def close(self) -> None:
        pass


# ------------------------------------------------------------------ logs that fail on purpose


class BrokenLog(MemoryLog):
    """A log whose appends fail before (`lose_ack=False`) or after (`lose_ack=True`) storing:
    the broker was down, or it stored the records and the acknowledgement never arrived."""

    def __init__(self, *, lose_ack: bool) -> None:
        super().__init__(PARTITIONS)
        self.lose_ack, self.broken = lose_ack, True

    def append(self, topic: str, records: Sequence[Record]) -> list[tuple[int, int]]:
        if not self.broken:
            return super().append(topic, records)
        if self.lose_ack:
            super().append(topic, records)
        raise LogUnavailable("the broker did not acknowledge")


# ------------------------------------------------------------------ the contract, twice


class TestIdempotentPublisherOnTwins(PublisherContract):
    def make(self, tmp_path: Path) -> tuple[RecordingPublisher, EventLog]:
        log = MemoryLog(PARTITIONS)
        return IdempotentPublisher(log, MemoryIdempotencyIndex()), log


@pytest.mark.kafka
@pytest.mark.postgres
class TestIdempotentPublisherOnKafkaAndPostgres(DurablePublisherContract):
    """Each test has its own topic namespace on the session's broker; tenants are random, so the
    shared claim tables need no cleaning."""

    @pytest.fixture(autouse=True)
    def _engines(self, kafka_bootstrap: str, postgres_dsn: str) -> Iterator[None]:
        self.bootstrap, self.dsn = kafka_bootstrap, postgres_dsn
        self.prefix = f"test-{uuid.uuid4().hex[:8]}."
        self.opened: list[KafkaLog | PostgresIdempotencyIndex] = []
        yield
        for opened in self.opened:
            opened.close()

    def make(self, tmp_path: Path) -> tuple[RecordingPublisher, EventLog]:
        log = KafkaLog(self.bootstrap, partitions=PARTITIONS, topic_prefix=self.prefix)
        index = PostgresIdempotencyIndex(self.dsn)
        self.opened += [log, index]
        return IdempotentPublisher(log, index), log

    def reopen(
        self, publisher: RecordingPublisher, log: EventLog
    ) -> tuple[RecordingPublisher, EventLog]:
        for opened in self.opened:
            opened.close()
        return self.make(Path())


# ------------------------------------------------------------------ the pure decision


def test_decide_follows_the_stored_claim() -> None:
    a = outgoing("t", "a", b"1")
    changed = outgoing("t", "a", b"2")
    pending, published = Claim(a.fingerprint, False), Claim(a.fingerprint, True)
    assert [d.status for d in decide([a, a, changed], {("t", "a"): pending})] == [
        ACCEPTED,
        DUPLICATE,
        CONFLICT,
    ]
    assert [d.status for d in decide([a], {("t", "a"): published})] == [DUPLICATE]
    assert decide([changed], {("t", "a"): published})[0].original == a.fingerprint
    assert first_sightings([a, changed, a]) == [a]


# ------------------------------------------------------------------ claim before publish


@pytest.fixture
def tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("lose_ack", [False, True], ids=["broker-down", "ack-lost"])
def test_a_failed_publish_stays_pending_and_the_retry_is_accepted(
    tenant: str, lose_ack: bool
) -> None:
    log, index = BrokenLog(lose_ack=lose_ack), MemoryIdempotencyIndex()
    publisher = IdempotentPublisher(log, index)
    event = outgoing(tenant, str(uuid.uuid4()), b"x")
    with pytest.raises(LogUnavailable):
        publisher.publish([event])
    assert index.claims[(tenant, event.event_id)] == Claim(event.fingerprint, published=False)
    log.broken = False
    assert publisher.publish([event]) == [ACCEPTED]  # never "duplicate" for what may be missing
    assert publisher.publish([event]) == [DUPLICATE]
    # A lost acknowledgement leaves a second copy in the log, which the warehouse's dedup by
    # event_id absorbs; a broker that was down leaves exactly one.
    assert len(stored(log)) == (2 if lose_ack else 1)


def test_another_payload_after_a_failed_publish_is_a_conflict(tenant: str) -> None:
    log, index = BrokenLog(lose_ack=True), MemoryIdempotencyIndex()
    publisher = IdempotentPublisher(log, index)
    event_id = str(uuid.uuid4())
    with pytest.raises(LogUnavailable):
        publisher.publish([outgoing(tenant, event_id, b"first")])
    log.broken = False
    assert publisher.publish([outgoing(tenant, event_id, b"second")]) == [CONFLICT]
    assert [c["event_id"] for c in publisher.conflicts(tenant)] == [event_id]


@pytest.mark.kafka
@pytest.mark.postgres
def test_kafka_down_leaves_claims_pending_and_the_retry_stores_once(
    kafka_bootstrap: str, postgres_dsn: str, tenant: str
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}."
    index = PostgresIdempotencyIndex(postgres_dsn)
    dead = KafkaLog(dead_bootstrap(), partitions=PARTITIONS, timeout_s=1.0, topic_prefix=prefix)
    live = KafkaLog(kafka_bootstrap, partitions=PARTITIONS, topic_prefix=prefix)
    events = [outgoing(tenant, str(uuid.uuid4()), b"x", customer=f"c{i}") for i in range(5)]
    ids = [e.event_id for e in events]
    try:
        with pytest.raises(LogUnavailable):
            IdempotentPublisher(dead, index, timeout_s=1.0).publish(events)
        assert index.statuses(tenant, ids) == dict.fromkeys(ids, "pending")
        assert IdempotentPublisher(live, index).publish(events) == [ACCEPTED] * 5
        assert index.statuses(tenant, ids) == dict.fromkeys(ids, "published")
        assert sorted(r.value for r in stored(live)) == sorted(e.record.value for e in events)
    finally:
        for closing in (dead, live, index):
            closing.close()


@pytest.mark.postgres
def test_a_claim_held_by_another_publisher_times_out_as_unavailable(
    postgres_dsn: str, tenant: str
) -> None:
    index = PostgresIdempotencyIndex(postgres_dsn)
    log = MemoryLog(PARTITIONS)
    event = outgoing(tenant, str(uuid.uuid4()), b"x")
    index.claim([event])
    try:
        with index.lock([(tenant, event.event_id)], timeout_s=5.0):
            started = time.monotonic()
            with pytest.raises(LogUnavailable, match="lock"):
                IdempotentPublisher(log, index, timeout_s=0.3).publish([event])
            # Slack for a loaded machine, still short of the 5 s the lock is held.
            assert time.monotonic() - started < 0.3 + 3.5
        assert stored(log) == []
        assert IdempotentPublisher(log, index).publish([event]) == [ACCEPTED]
    finally:
        index.close()
