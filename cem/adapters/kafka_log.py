"""Event log on Apache Kafka with kafka-python (distributed mode). The only module importing kafka.

Producing: `acks=all` with idempotence set explicitly, and every `append` bounded by `timeout_s`:
it returns positions only once the broker acknowledged every record, and raises LogUnavailable
otherwise (F01). Records are partitioned by `kernel.partitioning.partition_for`, the rule of Kafka's
default partitioner, so a key lands on the same partition whichever producer or log wrote it.

Topics are created by the platform (partitions, replication, min.insync.replicas), never by a
broker's auto-creation, which would give them the broker's default single partition.

Consuming keeps the embedded log's contract, which the shared runner relies on: a poll reads from
the group's committed offsets, so a batch that is not committed is read again; a poll shares
`max_records` fairly between partitions. Each (topic, group) has one reader with a manually
assigned consumer over every partition: this is the EventLog port's single-reader-per-group
model, for the runner, replay, tools and tests. Scaled consumption, with partitions balanced over
replicas, is the faust workers' job, not this adapter's.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError, RetriableError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata

from cem.adapters.memory_log import check_offsets
from kernel.partitioning import fair_quotas, partition_for
from kernel.ports import Consumed, LogUnavailable, Record

# A blocked poll wakes at least this often, so close() ends it promptly.
POLL_SLICE_MS = 100
FETCH_MAX_WAIT_MS = 100
RETRY_BACKOFF_S = 0.1
# kafka-python backs off reconnecting up to 30 s by default: after a broker restart a client would
# keep failing long after the broker is back. One second keeps recovery prompt (F01, F02).
RECONNECT_BACKOFF_MAX_MS = 1000
T = TypeVar("T")


def producer_config(bootstrap: str, timeout_s: float) -> dict[str, Any]:
    """Durable producer settings: nothing is acknowledged before every in-sync replica has it."""
    timeout_ms = max(1, int(timeout_s * 1000))
    return {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        # Set explicitly (kafka-python defaults it on, but silently drops it on conflicting
        # settings): the broker discards a retried batch it already has, so a producer retry
        # never duplicates a record and records of one partition keep their order.
        "enable_idempotence": True,
        "max_in_flight_requests_per_connection": 5,
        "linger_ms": 2,
        "bootstrap_timeout_ms": timeout_ms,
        "max_block_ms": timeout_ms,
        "request_timeout_ms": timeout_ms,
        # A record not acknowledged by then fails instead of being retried for minutes: after
        # append gave up, a late write (which the client's retry would duplicate) stays unlikely.
        "delivery_timeout_ms": timeout_ms + 2,
        "allow_auto_create_topics": False,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
    }


def _unavailable(bootstrap: str, exc: BaseException) -> LogUnavailable:
    return LogUnavailable(f"Kafka at {bootstrap} did not acknowledge: {exc!r}")


def _retrying(deadline: float, call: Callable[[], T]) -> T:
    """Call until it does not raise a retriable error (a coordinator or leader still being
    elected, e.g. on a fresh or restarting cluster), or the deadline passed."""
    while True:
        try:
            return call()
        except RetriableError:
            if time.monotonic() + RETRY_BACKOFF_S >= deadline:
                raise
            time.sleep(RETRY_BACKOFF_S)


@dataclass
class _Reader:
    """One group's view of one topic: its committed positions and the records fetched past them.

    Invariant per partition: `buffer` holds, in order, the fetched records in [fetch_start,
    fetched) at or after `position`; the consumer fetches on from `fetched`.
    """

    consumer: Any
    partitions: list[TopicPartition]
    position: dict[int, int]
    known_end: dict[int, int]
    fetch_start: dict[int, int] = field(default_factory=dict)
    fetched: dict[int, int] = field(default_factory=dict)
    buffer: dict[int, list[Consumed]] = field(default_factory=dict)
    turn: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def realign(self) -> None:
        """Drop what the group committed past; seek where the buffer does not reach `position`."""
        for tp in self.partitions:
            p, at = tp.partition, self.position[tp.partition]
            if self.fetch_start.get(p, -1) <= at <= self.fetched.get(p, -1):
                self.buffer[p] = [r for r in self.buffer[p] if r.offset >= at]
            else:
                self.consumer.seek(tp, at)
                self.fetch_start[p] = self.fetched[p] = at
                self.buffer[p] = []

    def pull(self, timeout_ms: int, logical_topic: str) -> None:
        batches = self.consumer.poll(timeout_ms=timeout_ms, max_records=5000)
        for tp, messages in batches.items():
            p = tp.partition
            for m in messages:
                if m.offset >= self.fetched[p]:
                    self.buffer[p].append(_consumed(logical_topic, m))
                    self.fetched[p] = m.offset + 1
            self.known_end[p] = max(self.known_end[p], self.consumer.highwater(tp) or 0)
        for tp in self.partitions:
            p = tp.partition
            if self.fetched[p] < self.known_end[p]:
                # Offsets that hold no record (a transaction's commit marker) advance the
                # consumer's position without a record: without this a poll would wait for them.
                position = self.consumer.position(tp, timeout_ms=0)
                self.fetched[p] = max(self.fetched[p], position or 0)

    def quotas(self, max_records: int) -> dict[int, int]:
        backlog = {
            p: max(self.known_end[p], self.fetched[p]) - self.position[p] for p in self.position
        }
        return fair_quotas(backlog, max_records, self.turn)

    def ready(self, quotas: Mapping[int, int]) -> bool:
        """Every partition has its quota fetched, or everything the broker reported it has."""
        return all(
            len(self.buffer[p]) >= q or self.fetched[p] >= self.known_end[p]
            for p, q in quotas.items()
        )

    def take(self, quotas: Mapping[int, int]) -> list[Consumed]:
        self.turn += 1
        return [r for p, q in sorted(quotas.items()) for r in self.buffer[p][:q]]


def _force_close(producer: Any, timeout_s: float) -> None:
    """Stop a producer without waiting for what it still holds (those appends fail).

    `close()` alone flushes first and raises when that times out, leaving the I/O thread running;
    so the I/O thread is told to stop and abort its batches first (kafka-python has no public
    call for that).
    """
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        sender.force_close()
        sender.join(timeout_s)
    with contextlib.suppress(KafkaError):
        producer.close(timeout=timeout_s)


def _consumed(topic: str, m: Any) -> Consumed:
    headers = tuple((name, value or b"") for name, value in (m.headers or ()))
    return Consumed(topic, m.partition, m.offset, m.key or b"", m.value or b"", headers)


class KafkaLog:
    """An EventLog on Kafka. Thread-safe. Nothing connects until first use.

    `topic_prefix` namespaces every topic (several environments or test runs on one cluster);
    the port's callers keep using the plain names.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        partitions: int = 12,
        replication: int = 1,
        timeout_s: float = 5.0,
        topic_prefix: str = "",
    ) -> None:
        if partitions < 1 or replication < 1:
            raise ValueError("a topic needs at least one partition and one replica")
        self.bootstrap, self.partitions, self.replication = bootstrap, partitions, replication
        self.timeout_s, self.topic_prefix = timeout_s, topic_prefix
        self._admin: Any = None
        self._producer: Any = None
        self._readers: dict[tuple[str, str], _Reader] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.RLock()
        self._closed = False

    def physical(self, topic: str) -> str:
        """The topic's name on the cluster."""
        return f"{self.topic_prefix}{topic}"

    def _check_open(self) -> None:
        if self._closed:
            raise LogUnavailable("the event log is closed")

    @staticmethod
    def _left(deadline: float) -> int:
        """Milliseconds until the deadline; LogUnavailable once it passed."""
        left = int((deadline - time.monotonic()) * 1000)
        if left <= 0:
            raise LogUnavailable("Kafka did not answer in time")
        return left

    # -- clients ----------------------------------------------------------------------------
    def _admin_client(self, deadline: float) -> Any:
        return self._shared("_admin", lambda: self._new_admin(deadline), lambda a: a.close())

    def _new_admin(self, deadline: float) -> Any:
        return KafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            request_timeout_ms=int(self.timeout_s * 1000),
            bootstrap_timeout_ms=self._left(deadline),
            reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
        )

    def _shared(
        self, attribute: str, create: Callable[[], Any], discard: Callable[[Any], None]
    ) -> Any:
        """The client kept in `attribute`, created if missing. Created outside the lock: while
        Kafka is down a bootstrap takes the caller's whole budget, and other callers must not
        queue behind it past their own deadlines."""
        with self._lock:
            self._check_open()
            if (existing := getattr(self, attribute)) is not None:
                return existing
        created = create()
        with self._lock:
            existing = getattr(self, attribute)
            if existing is None and not self._closed:
                setattr(self, attribute, created)
                return created
        discard(created)  # another caller's client won, or the log closed meanwhile
        self._check_open()
        return existing

    def _admin_call(self, deadline: float, call: Callable[[Any], T]) -> T:
        """Run an admin request, retrying transient errors until the deadline. An admin client
        that failed is replaced, like a producer (its connections may be stuck in backoff)."""
        admin = None
        try:
            admin = self._admin_client(deadline)
            return _retrying(deadline, lambda: call(admin))
        except KafkaError as exc:
            with self._lock:
                if admin is not None and self._admin is admin:
                    self._admin = None
                    threading.Thread(target=admin.close, daemon=True).start()
            raise _unavailable(self.bootstrap, exc) from exc

    def _producer_client(self, deadline: float) -> Any:
        def create() -> Any:
            config = producer_config(self.bootstrap, self.timeout_s)
            config["bootstrap_timeout_ms"] = self._left(deadline)
            return KafkaProducer(**config)

        return self._shared("_producer", create, lambda p: p.close(timeout=0))

    # -- topics -----------------------------------------------------------------------------
    def ping(self) -> None:
        """Readiness: LogUnavailable unless a broker answers a metadata request in time."""
        deadline = time.monotonic() + self.timeout_s
        self._admin_call(deadline, lambda admin: admin.list_topics())

    def ensure_topic(self, topic: str, deadline: float | None = None) -> int:
        """Create the topic if it does not exist; returns its partition count."""
        if topic in self._counts:
            return self._counts[topic]
        deadline = deadline or time.monotonic() + self.timeout_s
        name = self.physical(topic)
        count = self._admin_call(deadline, lambda admin: self._create_topic(admin, name, deadline))
        self._counts[topic] = count
        return count

    def _create_topic(self, admin: Any, name: str, deadline: float) -> int:
        # With three replicas, a write needs two of them: one broker may fail without losing an
        # acknowledged record or refusing writes. One replica (development) can only require one.
        min_insync = max(1, self.replication - 1)
        spec = {
            "num_partitions": self.partitions,
            "replication_factor": self.replication,
            "configs": {"min.insync.replicas": str(min_insync)},
        }
        # Created already by another replica or an earlier run: it keeps its partition count.
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics({name: spec}, timeout_ms=self._left(deadline))
        admin.wait_for_topics([name], timeout_ms=self._left(deadline))
        [described] = admin.describe_topics([name])
        return len(described["partitions"])

    def _partitions(self, topic: str) -> list[TopicPartition]:
        name = self.physical(topic)
        return [TopicPartition(name, p) for p in range(self.ensure_topic(topic))]

    # -- producing --------------------------------------------------------------------------
    def append(self, topic: str, records: Sequence[Record]) -> list[tuple[int, int]]:
        self._check_open()
        if not records:
            return []
        deadline = time.monotonic() + self.timeout_s
        count = self.ensure_topic(topic, deadline)
        try:
            producer = self._producer_client(deadline)
        except KafkaError as exc:
            raise _unavailable(self.bootstrap, exc) from exc
        try:
            return self._send(producer, topic, count, records, deadline)
        except (KafkaError, LogUnavailable) as exc:
            self._discard(producer)
            if isinstance(exc, LogUnavailable):
                raise
            raise _unavailable(self.bootstrap, exc) from exc

    def _send(
        self, producer: Any, topic: str, count: int, records: Sequence[Record], deadline: float
    ) -> list[tuple[int, int]]:
        futures = [
            producer.send(
                self.physical(topic),
                key=r.key,
                value=r.value,
                headers=list(r.headers),
                partition=partition_for(r.key, count),
            )
            for r in records
        ]
        metadata = [f.get(timeout=self._left(deadline) / 1000) for f in futures]
        return [(m.partition, m.offset) for m in metadata]

    def _discard(self, producer: Any) -> None:
        """Replace a producer that failed: the next append starts a fresh one.

        kafka-python 3.0's idempotent producer can wedge after its broker restarted (it waits
        forever for a producer-id request that died with the connection), so a producer that
        failed once is not trusted again. Appends still in flight on it fail too (the clients
        retry); it is closed off the caller's thread.
        """
        with self._lock:
            if self._producer is producer:
                self._producer = None
        threading.Thread(target=_force_close, args=(producer, self.timeout_s), daemon=True).start()

    # -- consuming --------------------------------------------------------------------------
    def _reader(self, topic: str, group: str) -> _Reader:
        with self._lock:
            self._check_open()
            if (reader := self._readers.get((topic, group))) is not None:
                return reader
        created = self._new_reader(topic, group)  # network round trips: not under the lock
        with self._lock:
            closed = self._closed
            reader = created if closed else self._readers.setdefault((topic, group), created)
        if closed or reader is not created:  # closed, or another thread won the race
            created.consumer.close(autocommit=False)
        self._check_open()
        return reader

    def _new_reader(self, topic: str, group: str) -> _Reader:
        partitions = self._partitions(topic)
        deadline = time.monotonic() + self.timeout_s
        starts = self._offsets(partitions, OffsetSpec.EARLIEST, deadline)
        ends = self._offsets(partitions, OffsetSpec.LATEST, deadline)
        committed = self._committed(group, partitions, deadline)
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                allow_auto_create_topics=False,
                fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
                request_timeout_ms=max(int(self.timeout_s * 1000), FETCH_MAX_WAIT_MS + 1000),
                bootstrap_timeout_ms=self._left(deadline),
                reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
            )
        except KafkaError as exc:
            raise _unavailable(self.bootstrap, exc) from exc
        consumer.assign(partitions)
        position = {p: committed.get(p, start) for p, start in starts.items()}
        reader = _Reader(consumer, partitions, position, ends)
        reader.realign()
        return reader

    def _offsets(
        self, partitions: list[TopicPartition], spec: Any, deadline: float
    ) -> dict[int, int]:
        specs = {tp: spec for tp in partitions}
        found = self._admin_call(
            deadline,
            lambda admin: admin.list_partition_offsets(specs, timeout_ms=self._left(deadline)),
        )
        return {tp.partition: found[tp].offset for tp in partitions}

    def _committed(
        self, group: str, partitions: list[TopicPartition], deadline: float
    ) -> dict[int, int]:
        found = self._admin_call(
            deadline, lambda admin: admin.list_group_offsets({group: partitions})
        ).get(group, {})
        return {tp.partition: meta.offset for tp, meta in found.items() if meta.offset >= 0}

    def poll(self, topic: str, group: str, max_records: int, timeout_s: float) -> list[Consumed]:
        """Up to `max_records` after the group's committed offsets, shared fairly by partition.

        Returns once a record is there, or `[]` after `timeout_s` or once the log is closed
        (also while the poll was still setting up its reader). When the broker has reported
        records past the group's position, the poll waits for them (up to the log's own
        `timeout_s`) instead of returning early: a fresh reader's first fetch takes a few round
        trips, and a caller draining the log must not mistake that for an empty log.
        """
        self._check_open()
        try:
            reader = self._reader(topic, group)
        except Exception:
            if self._closed:  # closed while this poll set up its reader: woken, as if waiting
                return []
            raise
        started = time.monotonic()
        deadline = started + timeout_s
        patience = started + max(timeout_s, self.timeout_s)
        with reader.lock:
            try:
                return self._poll_locked(reader, topic, max_records, deadline, patience)
            except KafkaError as exc:
                raise _unavailable(self.bootstrap, exc) from exc

    def _poll_locked(
        self, reader: _Reader, topic: str, max_records: int, deadline: float, patience: float
    ) -> list[Consumed]:
        reader.realign()
        while not self._closed:
            quotas = reader.quotas(max_records)
            now = time.monotonic()
            if quotas and (reader.ready(quotas) or now >= patience):
                return reader.take(quotas)
            if not quotas and now >= deadline:
                return []
            wait_until = patience if quotas else deadline
            reader.pull(min(POLL_SLICE_MS, max(0, int((wait_until - now) * 1000))), topic)
        return []

    def commit(self, topic: str, group: str, offsets: Mapping[int, int]) -> None:
        check_offsets(offsets, self.ensure_topic(topic))
        reader = self._reader(topic, group)
        name = self.physical(topic)
        with reader.lock:
            try:
                reader.consumer.commit(
                    {
                        TopicPartition(name, p): OffsetAndMetadata(o, "", -1)
                        for p, o in offsets.items()
                    },
                    timeout_ms=int(self.timeout_s * 1000),
                )
            except KafkaError as exc:
                raise _unavailable(self.bootstrap, exc) from exc
            reader.position.update(offsets)

    def committed(self, topic: str, group: str) -> dict[int, int]:
        self._check_open()
        deadline = time.monotonic() + self.timeout_s
        return self._committed(group, self._partitions(topic), deadline)

    def end_offsets(self, topic: str) -> dict[int, int]:
        self._check_open()
        deadline = time.monotonic() + self.timeout_s
        return self._offsets(self._partitions(topic), OffsetSpec.LATEST, deadline)

    def forget_reader(self, topic: str, group: str) -> None:
        """Close the group's reader of the topic, so that its next poll starts from the offsets
        the group committed (another process may have moved them meanwhile)."""
        with self._lock:
            reader = self._readers.pop((topic, group), None)
        if reader is not None:
            with reader.lock:
                reader.consumer.close(autocommit=False, timeout_ms=int(self.timeout_s * 1000))

    def close(self) -> None:
        """Stop every client; a poll waiting in another thread returns [] within a slice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            readers, self._readers = list(self._readers.values()), {}
            producer, admin = self._producer, self._admin
        for reader in readers:
            with reader.lock:
                reader.consumer.close(autocommit=False, timeout_ms=int(self.timeout_s * 1000))
        if producer is not None:
            with contextlib.suppress(KafkaError):
                producer.close(timeout=self.timeout_s)  # delivers what was sent, if it can
            _force_close(producer, self.timeout_s)
        if admin is not None:
            admin.close()


class Leadership:
    """Which of several processes leads a task of which the deployment needs one (the filing
    workers' `erased-rows` thread): each process is a member of consumer group `group` subscribed
    to `topic` (no record is ever written there), and the one Kafka's group coordinator assigns
    partition 0 leads. When the leader stops (or stops polling), the coordinator gives the
    partition to another member within the group's session timeout.

    During a rebalance two members may both believe they lead until the old one polls again (its
    next `leads`): the task must be safe to run twice, as the `erased-rows` one is (a deletion is
    idempotent; a commit moved back is read again)."""

    def __init__(self, log: KafkaLog, topic: str, group: str, session_timeout_ms: int = 10_000):
        log.ensure_topic(topic)
        self.topic = log.physical(topic)
        try:
            self.consumer = KafkaConsumer(
                bootstrap_servers=log.bootstrap,
                group_id=group,
                enable_auto_commit=False,
                allow_auto_create_topics=False,
                session_timeout_ms=session_timeout_ms,
                heartbeat_interval_ms=max(session_timeout_ms // 5, 100),
                # Also the rebalance's timeout: a member that stops polling (stuck) for longer
                # leaves the group, and another leads.
                max_poll_interval_ms=60_000,
                reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
            )
        except KafkaError as exc:
            raise _unavailable(log.bootstrap, exc) from exc
        self.consumer.subscribe([self.topic])
        self.bootstrap = log.bootstrap

    def leads(self, timeout_s: float = 0.0) -> bool:
        """Whether this member holds partition 0 now; polls the group (joins it, answers a
        rebalance) for up to `timeout_s`."""
        try:
            self.consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=1)
        except KafkaError as exc:
            raise _unavailable(self.bootstrap, exc) from exc
        return any(tp.partition == 0 for tp in self.consumer.assignment())

    def close(self) -> None:
        """Leave the group, so that another member leads at once."""
        with contextlib.suppress(KafkaError):
            self.consumer.close(autocommit=False)
