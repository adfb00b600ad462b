"""The EventLog contract on a real Kafka broker, plus KafkaLog's own rules (F01, topic creation).

Every test gets its own topic namespace (`topic_prefix`), so the shared session broker needs no
cleaning and tests never see each other's records.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cem.adapters.kafka_log import KafkaLog, Leadership, producer_config
from kernel.ports import EventLog, LogUnavailable, Record
from tests.contract.test_event_log import PARTITIONS, DurableEventLogContract, drain

pytestmark = pytest.mark.kafka


def dead_bootstrap() -> str:
    """host:port where nothing listens (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


class TestKafkaLog(DurableEventLogContract):
    """The whole suite, the restart cases included: a broker outlives the client, so reopening
    means a new client on the same cluster and namespace."""

    poll_waits_in = "_poll_locked"  # its reader set up, fetching until records or the timeout

    @pytest.fixture(autouse=True)
    def _broker(self, kafka_bootstrap: str) -> None:
        self.bootstrap = kafka_bootstrap
        self.prefix = f"test-{uuid.uuid4().hex[:8]}."

    def make_log(self, tmp_path: Path, partitions: int) -> EventLog:
        return KafkaLog(self.bootstrap, partitions=partitions, topic_prefix=self.prefix)

    def reopen(self, log: EventLog, partitions: int) -> EventLog:
        assert isinstance(log, KafkaLog)
        log.close()
        return KafkaLog(log.bootstrap, partitions=partitions, topic_prefix=log.topic_prefix)

    def test_topics_are_created_with_the_configured_partitions(
        self, kafka_bootstrap: str, topic: str
    ) -> None:
        log = KafkaLog(kafka_bootstrap, partitions=7, topic_prefix=self.prefix)
        try:
            log.append(topic, [Record(b"k", b"v")])
            assert sorted(log.end_offsets(topic)) == list(range(7))
            assert log.physical(topic) == f"{self.prefix}{topic}"
        finally:
            log.close()

    def test_a_drain_sees_every_record_once_then_nothing(
        self, kafka_bootstrap: str, topic: str, group: str
    ) -> None:
        log = KafkaLog(kafka_bootstrap, partitions=PARTITIONS, topic_prefix=self.prefix)
        try:
            log.append(topic, [Record(f"c{i}".encode(), f"{i}".encode()) for i in range(300)])
            first = drain(log, topic, group)
            again = log.poll(topic, group, 1000, 0.05)
        finally:
            log.close()
        assert sorted(int(r.value) for r in first) == list(range(300))
        assert again == []

    def test_a_close_while_a_poll_sets_up_its_reader_answers_it_empty(
        self, kafka_bootstrap: str, topic: str, group: str
    ) -> None:
        """CI once closed the log 0.1 s after a poll started, before its reader existed (the
        reader's round trips took longer under load): the poll raised instead of returning []."""
        log = KafkaLog(kafka_bootstrap, partitions=PARTITIONS, topic_prefix=self.prefix)
        log.end_offsets(topic)
        setting_up, closed = threading.Event(), threading.Event()
        new_reader = log._new_reader

        def slow_new_reader(topic: str, group: str) -> object:
            setting_up.set()
            closed.wait(10.0)
            return new_reader(topic, group)

        log._new_reader = slow_new_reader  # type: ignore[method-assign,assignment]
        got: list[object] = []
        waiter = threading.Thread(target=lambda: got.append(log.poll(topic, group, 10, 20.0)))
        waiter.start()
        assert setting_up.wait(10.0)
        log.close()
        closed.set()
        waiter.join(25.0)
        assert got == [[]]
        with pytest.raises(LogUnavailable, match="closed"):
            log.poll(topic, group, 10, 0.1)  # a poll after the close is refused


def test_the_producer_is_durable_and_idempotent_explicitly() -> None:
    config = producer_config("127.0.0.1:9092", 5.0)
    assert config["acks"] == "all" and config["enable_idempotence"] is True
    assert config["allow_auto_create_topics"] is False
    assert config["delivery_timeout_ms"] >= config["request_timeout_ms"] + config["linger_ms"]


@pytest.fixture
def dead_log() -> Iterator[KafkaLog]:
    log = KafkaLog(dead_bootstrap(), partitions=PARTITIONS, timeout_s=1.0)
    yield log
    log.close()


def test_append_without_a_broker_raises_log_unavailable_within_the_bound(
    dead_log: KafkaLog,
) -> None:
    for _ in range(2):  # also once the first failure left clients half-built
        started = time.monotonic()
        with pytest.raises(LogUnavailable, match="Kafka"):
            dead_log.append("touchpoints", [Record(b"k", b"v")])
        # Bounded by the log's timeout (1 s here), with slack for a machine stalled for seconds:
        # unbounded, kafka-python's producer would block for its max_block_ms, 60 s.
        assert time.monotonic() - started < 1.0 + 8.0


def test_concurrent_appends_without_a_broker_each_fail_within_their_own_bound(
    dead_log: KafkaLog,
) -> None:
    """No caller queues behind another's connection attempt (each ingest request has its own
    deadline)."""
    failures: list[float] = []

    def append() -> None:
        started = time.monotonic()
        try:
            dead_log.append("touchpoints", [Record(b"k", b"v")])
        except LogUnavailable:
            failures.append(time.monotonic() - started)

    threads = [threading.Thread(target=append) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(failures) == 4
    assert max(failures) < 1.0 + 2.0


def test_reads_without_a_broker_raise_log_unavailable(dead_log: KafkaLog) -> None:
    with pytest.raises(LogUnavailable):
        dead_log.end_offsets("touchpoints")
    with pytest.raises(LogUnavailable):
        dead_log.poll("touchpoints", "g", 10, 0.05)


class _Member(threading.Thread):
    """One filing worker's leadership, polled on its own thread as each worker polls its own
    (several consumers polled in turn from one thread can stall each other's rejoin)."""

    def __init__(self, log: KafkaLog) -> None:
        super().__init__(daemon=True)
        self.leadership = Leadership(log, "leader", "g-leader", session_timeout_ms=6000)
        self.leading, self.held, self.stopping = False, frozenset[int](), threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.leading = self.leadership.leads(timeout_s=0.5)
            self.held = frozenset(tp.partition for tp in self.leadership.consumer.assignment())

    def leave(self) -> None:
        self.stopping.set()
        self.join(10)
        self.leadership.close()


def _settled(members: list[_Member], partitions: int, seconds: float = 60.0) -> list[_Member]:
    """Wait until every member holds a share of the `partitions` (none twice) and exactly one
    leads, or time is up; the members that lead. Exactly one leading is not enough on its own:
    the first member to join holds every partition until the others' joins rebalance the group."""
    deadline = time.monotonic() + seconds
    while True:
        leading = [m for m in members if m.leading]
        held = sorted(p for m in members for p in m.held)
        settled = held == list(range(partitions)) and all(m.held for m in members)
        if (settled and len(leading) == 1) or time.monotonic() > deadline:
            return leading
        time.sleep(0.1)


def test_one_member_of_a_leadership_group_leads_and_another_takes_over_when_it_leaves(
    kafka_bootstrap: str,
) -> None:
    """The filing workers' `erased-rows` thread runs in one of them (`Leadership`): exactly one
    member leads, and when it leaves the group one of the others leads."""
    prefix = f"test-{uuid.uuid4().hex[:8]}."
    log = KafkaLog(kafka_bootstrap, partitions=3, topic_prefix=prefix)
    members = [_Member(log) for _ in range(3)]
    for member in members:
        member.start()
    try:
        first = _settled(members, 3)
        assert len(first) == 1, [sorted(m.held) for m in members]
        time.sleep(1.5)  # it stays the leader while nobody joins or leaves
        assert [m for m in members if m.leading] == first
        members.remove(first[0])
        first[0].leave()
        after = _settled(members, 3)
        assert len(after) == 1, [sorted(m.held) for m in members]
    finally:
        for member in members:
            member.leave()
        log.close()


def test_a_forgotten_reader_reads_on_from_what_another_process_committed(
    kafka_bootstrap: str,
) -> None:
    """A new leader of `erased-rows` forgets its reader, so that it does not read again (and
    commit back) what the leader before it committed."""
    prefix = f"test-{uuid.uuid4().hex[:8]}."
    ours = KafkaLog(kafka_bootstrap, partitions=1, topic_prefix=prefix)
    other = KafkaLog(kafka_bootstrap, partitions=1, topic_prefix=prefix)
    try:
        ours.append("filings", [Record(b"k", f"{i}".encode()) for i in range(5)])
        assert [r.value for r in ours.poll("filings", "rows", 2, 5.0)] == [b"0", b"1"]
        read = drain(other, "filings", "rows")  # the other process reads all and commits
        assert [r.value for r in read] == [f"{i}".encode() for i in range(5)]
        ours.append("filings", [Record(b"k", b"5")])
        ours.forget_reader("filings", "rows")
        assert [r.value for r in ours.poll("filings", "rows", 10, 5.0)] == [b"5"]
    finally:
        ours.close()
        other.close()
