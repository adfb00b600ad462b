"""The EventLog contract, run on every adapter.

Another adapter joins by subclassing `EventLogContract` (or `DurableEventLogContract` if it
survives a restart) and implementing the factory:

    from tests.contract.test_event_log import DurableEventLogContract

    class TestKafkaLog(DurableEventLogContract):
        def make_log(self, tmp_path, partitions): ...
        def reopen(self, log, partitions): ...
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from cem.adapters.memory_log import MemoryLog
from cem.adapters.sqlite_log import SqliteLog, storage_errors
from kernel.partitioning import partition_for
from kernel.ports import Consumed, EventLog, LogUnavailable, Record, StorageFull

REPO = Path(__file__).resolve().parents[2]

PARTITIONS = 4


def keys_for_each_partition(partitions: int) -> list[bytes]:
    """One key per partition, found by the same hash Kafka uses."""
    found: dict[int, bytes] = {}
    i = 0
    while len(found) < partitions:
        key = f"tenant/cust-{i}".encode()
        found.setdefault(partition_for(key, partitions), key)
        i += 1
    return [found[p] for p in range(partitions)]


def drain(log: EventLog, topic: str, group: str) -> list[Consumed]:
    """Everything the group has not consumed yet, committing as it goes."""
    seen: list[Consumed] = []
    while batch := log.poll(topic, group, 500, 0.05):
        seen += batch
        log.commit(topic, group, next_offsets(batch))
    return seen


def by_position(records: list[Consumed]) -> list[Consumed]:
    """Records in (partition, offset) order: the order between partitions is not part of the
    contract, only the order within one."""
    return sorted(records, key=lambda r: (r.partition, r.offset))


def until_waiting_in(thread: threading.Thread, function: str, timeout_s: float = 30.0) -> None:
    """Until `thread`'s stack holds a call of `function`: a poll that has not started by the time
    the log closes is refused, not woken (a 0.1 s sleep was not enough under load in CI)."""
    deadline = time.monotonic() + timeout_s
    while True:
        frame = sys._current_frames().get(thread.ident or -1)
        while frame is not None and frame.f_code.co_name != function:
            frame = frame.f_back
        if frame is not None:
            return
        assert time.monotonic() < deadline, f"the poll never waited in {function}"
        time.sleep(0.01)


def next_offsets(batch: list[Consumed]) -> dict[int, int]:
    ends: dict[int, int] = {}
    for record in batch:
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    return ends


class EventLogContract:
    """Behaviour every EventLog must show. Subclasses provide `make_log`."""

    # What a poll waiting for records is blocked in (threading.Condition.wait here).
    poll_waits_in = "wait"

    def make_log(self, tmp_path: Path, partitions: int) -> EventLog:
        raise NotImplementedError

    @pytest.fixture
    def log(self, tmp_path: Path) -> Iterator[EventLog]:
        log = self.make_log(tmp_path, PARTITIONS)
        yield log
        log.close()

    @pytest.fixture
    def topic(self) -> str:
        return f"t-{uuid.uuid4().hex[:10]}"

    @pytest.fixture
    def group(self) -> str:
        return f"g-{uuid.uuid4().hex[:10]}"

    def test_records_of_one_key_stay_in_one_partition_in_order(
        self, log: EventLog, topic: str, group: str
    ) -> None:
        for batch in range(3):
            log.append(
                topic, [Record(b"acme/alice", f"alice-{batch}-{i}".encode()) for i in range(5)]
            )
            log.append(topic, [Record(f"acme/other-{batch}".encode(), b"x")])
        alice = [r for r in drain(log, topic, group) if r.key == b"acme/alice"]
        assert {r.partition for r in alice} == {partition_for(b"acme/alice", PARTITIONS)}
        assert [r.value for r in alice] == [
            f"alice-{b}-{i}".encode() for b in range(3) for i in range(5)
        ]
        assert [r.offset for r in alice] == sorted(r.offset for r in alice)

    def test_append_returns_contiguous_offsets_per_partition(
        self, log: EventLog, topic: str
    ) -> None:
        positions = log.append(topic, [Record(f"k{i}".encode(), b"v") for i in range(60)])
        by_partition: dict[int, list[int]] = defaultdict(list)
        for i, (partition, offset) in enumerate(positions):
            assert partition == partition_for(f"k{i}".encode(), PARTITIONS)
            by_partition[partition].append(offset)
        assert all(offsets == list(range(len(offsets))) for offsets in by_partition.values())
        expected_ends = {p: len(by_partition.get(p, [])) for p in range(PARTITIONS)}
        assert log.end_offsets(topic) == expected_ends

    def test_a_new_topic_has_every_partition_empty(self, log: EventLog, topic: str) -> None:
        assert log.end_offsets(topic) == dict.fromkeys(range(PARTITIONS), 0)
        assert log.append(topic, []) == []

    def test_append_positions_point_at_the_records(
        self, log: EventLog, topic: str, group: str
    ) -> None:
        positions = log.append(
            topic, [Record(f"k{i}".encode(), f"v{i}".encode()) for i in range(20)]
        )
        stored = {(r.partition, r.offset): r.value for r in drain(log, topic, group)}
        assert [stored[pos] for pos in positions] == [f"v{i}".encode() for i in range(20)]

    def test_a_new_group_reads_from_the_beginning(
        self, log: EventLog, topic: str, group: str
    ) -> None:
        log.append(topic, [Record(b"k", f"v{i}".encode()) for i in range(3)])
        assert log.committed(topic, group) == {}
        assert [r.value for r in log.poll(topic, group, 10, 0.05)] == [b"v0", b"v1", b"v2"]

    def test_an_uncommitted_batch_is_read_again(
        self, log: EventLog, topic: str, group: str
    ) -> None:
        log.append(topic, [Record(f"k{i}".encode(), f"v{i}".encode()) for i in range(10)])
        first = log.poll(topic, group, 100, 0.05)
        again = log.poll(topic, group, 100, 0.05)
        assert len(first) == 10
        assert by_position(again) == by_position(first)

    def test_commit_moves_the_group_past_processed_records(
        self, log: EventLog, topic: str, group: str
    ) -> None:
        log.append(topic, [Record(b"k", f"v{i}".encode()) for i in range(5)])
        partition = partition_for(b"k", PARTITIONS)
        log.commit(topic, group, {partition: 3})
        assert log.committed(topic, group) == {partition: 3}
        rest = log.poll(topic, group, 100, 0.05)
        assert [(r.offset, r.value) for r in rest] == [(3, b"v3"), (4, b"v4")]

    def test_groups_and_topics_are_independent(self, log: EventLog, topic: str, group: str) -> None:
        other_topic, other_group = f"{topic}-b", f"{group}-b"
        log.append(topic, [Record(b"k", b"in-a")])
        log.append(other_topic, [Record(b"k", b"in-b")])
        assert [r.value for r in drain(log, topic, group)] == [b"in-a"]
        assert [r.value for r in log.poll(topic, other_group, 10, 0.05)] == [b"in-a"]
        assert [r.value for r in log.poll(other_topic, group, 10, 0.05)] == [b"in-b"]
        assert log.committed(other_topic, group) == {}

    def test_poll_respects_max_records_and_serves_every_partition(
        self, log: EventLog, topic: str, group: str
    ) -> None:
        for key in keys_for_each_partition(PARTITIONS):
            log.append(topic, [Record(key, f"{i}".encode()) for i in range(20)])
        batch = log.poll(topic, group, 2 * PARTITIONS, 0.05)
        per_partition: dict[int, list[int]] = defaultdict(list)
        for record in batch:
            per_partition[record.partition].append(record.offset)
        assert per_partition == {p: [0, 1] for p in range(PARTITIONS)}

    def test_poll_of_an_empty_topic_returns_nothing_after_the_timeout(
        self, log: EventLog, topic: str, group: str
    ) -> None:
        assert log.poll(topic, group, 10, 0.05) == []

    def test_poll_blocks_until_an_append_wakes_it(
        self, log: EventLog, topic: str, group: str
    ) -> None:
        log.end_offsets(topic)  # the topic exists before the consumer waits on it
        got: list[Consumed] = []
        started = time.monotonic()
        waiter = threading.Thread(target=lambda: got.extend(log.poll(topic, group, 10, 20.0)))
        waiter.start()
        time.sleep(0.2)
        log.append(topic, [Record(b"k", b"late")])
        waiter.join(25.0)
        assert [r.value for r in got] == [b"late"]
        assert time.monotonic() - started < 20.0  # woken by the append, not by the timeout

    def test_close_wakes_a_waiting_poll(self, tmp_path: Path, topic: str, group: str) -> None:
        log = self.make_log(tmp_path, PARTITIONS)
        log.end_offsets(topic)
        got: list[list[Consumed]] = []
        waiter = threading.Thread(target=lambda: got.append(log.poll(topic, group, 10, 20.0)))
        waiter.start()
        until_waiting_in(waiter, self.poll_waits_in)
        log.close()
        waiter.join(25.0)
        assert got == [[]]
        with pytest.raises(LogUnavailable):
            log.append(topic, [Record(b"k", b"v")])

    def test_concurrent_appends_lose_nothing(self, log: EventLog, topic: str, group: str) -> None:
        def produce(writer: int) -> None:
            for batch in range(20):
                records = [
                    Record(f"w{writer}/k{i % 3}".encode(), f"{writer}:{batch}:{i}".encode())
                    for i in range(10)
                ]
                log.append(topic, records)

        threads = [threading.Thread(target=produce, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60.0)
        stored = drain(log, topic, group)
        assert sorted(r.value for r in stored) == sorted(
            f"{w}:{b}:{i}".encode() for w in range(4) for b in range(20) for i in range(10)
        )
        assert sum(log.end_offsets(topic).values()) == 800
        for key in {r.key for r in stored}:  # every key's records in the order its writer sent them
            order = [tuple(map(int, r.value.split(b":"))) for r in stored if r.key == key]
            assert order == sorted(order)

    def test_values_and_headers_round_trip_byte_identical(
        self, log: EventLog, topic: str, group: str
    ) -> None:
        values = [b"", b"\x00\xff\xfe binary", "emoji 🎧 rtl \u202e".encode(), os.urandom(2048)]
        headers = (("trace", b"\x00\x01"), ("content-type", b"application/json"))
        log.append(topic, [Record(b"k", v, headers) for v in values])
        stored = drain(log, topic, group)
        assert [r.value for r in stored] == values
        assert all(r.headers == headers and r.topic == topic for r in stored)

    def test_commit_of_a_missing_partition_is_refused(
        self, log: EventLog, topic: str, group: str
    ) -> None:
        with pytest.raises(ValueError, match="partition"):
            log.commit(topic, group, {PARTITIONS: 1})


class DurableEventLogContract(EventLogContract):
    """For logs that outlive the process: subclasses also provide `reopen`."""

    def reopen(self, log: EventLog, partitions: int) -> EventLog:
        """Close `log` and open the same store again with `partitions` as the default."""
        raise NotImplementedError

    def test_reopen_keeps_records_and_offsets(self, log: EventLog, topic: str, group: str) -> None:
        log.append(topic, [Record(f"k{i}".encode(), f"v{i}".encode()) for i in range(12)])
        consumed = drain(log, topic, group)
        ends = log.end_offsets(topic)
        reopened = self.reopen(log, PARTITIONS)
        try:
            assert reopened.end_offsets(topic) == ends
            assert reopened.committed(topic, group) == next_offsets(consumed)
            assert reopened.poll(topic, group, 10, 0.05) == []
            assert by_position(drain(reopened, topic, f"{group}-new")) == by_position(consumed)
        finally:
            reopened.close()

    def test_appends_after_reopen_continue_the_offsets(self, log: EventLog, topic: str) -> None:
        first = log.append(topic, [Record(b"k", b"before")])
        reopened = self.reopen(log, PARTITIONS)
        try:
            assert reopened.append(topic, [Record(b"k", b"after")]) == [
                (first[0][0], first[0][1] + 1)
            ]
        finally:
            reopened.close()

    def test_a_topic_keeps_its_partition_count(self, log: EventLog, topic: str) -> None:
        log.append(topic, [Record(b"k", b"v")])
        reopened = self.reopen(log, PARTITIONS * 3)
        try:
            assert sorted(reopened.end_offsets(topic)) == list(range(PARTITIONS))
            assert sorted(reopened.end_offsets(f"{topic}-new")) == list(range(PARTITIONS * 3))
        finally:
            reopened.close()


class TestMemoryLog(EventLogContract):
    def make_log(self, tmp_path: Path, partitions: int) -> EventLog:
        return MemoryLog(partitions)


class TestSqliteLog(DurableEventLogContract):
    def make_log(self, tmp_path: Path, partitions: int) -> EventLog:
        return SqliteLog(tmp_path / "log.db", partitions)

    def reopen(self, log: EventLog, partitions: int) -> EventLog:
        assert isinstance(log, SqliteLog)
        log.close()
        return SqliteLog(log.path, partitions)

    def test_a_full_disk_refuses_the_batch_and_corrupts_nothing(
        self, tmp_path: Path, topic: str, group: str
    ) -> None:
        path = tmp_path / "capped.db"
        capped = SqliteLog(path, PARTITIONS, max_bytes=256 * 1024)
        kept = capped.append(topic, [Record(b"k", b"small")])
        with pytest.raises(StorageFull, match="full"):
            capped.append(topic, [Record(f"k{i}".encode(), os.urandom(1000)) for i in range(400)])
        assert [r.value for r in capped.poll(topic, group, 10, 0.05)] == [b"small"]
        capped.close()
        roomy = SqliteLog(path, PARTITIONS)  # space came back
        try:
            assert roomy.append(topic, [Record(b"k", b"next")]) == [(kept[0][0], kept[0][1] + 1)]
            assert [r.value for r in drain(roomy, topic, group)] == [b"small", b"next"]
        finally:
            roomy.close()

    def test_an_unusable_data_directory_is_storage_full(self, tmp_path: Path) -> None:
        not_a_dir = tmp_path / "file"
        not_a_dir.write_bytes(b"")
        with pytest.raises(StorageFull, match="data directory"):
            SqliteLog(not_a_dir / "log.db")

    def test_a_read_only_database_is_storage_full(self, tmp_path: Path) -> None:
        # Root ignores file modes, so provoke SQLITE_READONLY with a read-only connection instead.
        path = tmp_path / "log.db"
        SqliteLog(path).close()
        read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            with pytest.raises(StorageFull, match="readonly"), storage_errors(path):
                read_only.execute("INSERT INTO topics VALUES ('t', 1)")
        finally:
            read_only.close()

    @pytest.mark.skipif(os.geteuid() == 0, reason="root writes through a read-only mode")
    def test_a_read_only_directory_is_storage_full(self, tmp_path: Path) -> None:
        locked = tmp_path / "ro"
        locked.mkdir()
        locked.chmod(0o555)
        try:
            with pytest.raises(StorageFull):
                SqliteLog(locked / "log.db")
        finally:
            locked.chmod(0o755)

    def test_a_waiting_poll_sees_another_processes_append(
        self, tmp_path: Path, topic: str, group: str
    ) -> None:
        """`cem up` files in a process of its own: its filings must reach the projections
        waiting in the main process, which no in-process notification can wake. The poll waits
        up to an hour: the record is there well within the join only if the commit woke it."""
        log = self.make_log(tmp_path, PARTITIONS)
        assert isinstance(log, SqliteLog)
        log.watch_other_processes()
        log.end_offsets(topic)
        poll, got = _waiting_poll(log, topic, group)
        _append_from_another_process(log.path, topic, b"from elsewhere")
        poll.join(60.0)
        log.close()  # ends a poll that was never woken
        assert [r.value for r in got] == [b"from elsewhere"]

    def test_unwatched_other_processes_are_seen_by_the_next_poll(
        self, tmp_path: Path, topic: str, group: str
    ) -> None:
        """One process alone (`cem up` with `CEM_FILING_PROCESS=false`) does not look for other processes' commits
        while a poll waits (no wake source but its own appends and the timeout); a `cem
        dead-letters replay` run beside it is read by the runner's next poll."""
        log = self.make_log(tmp_path, PARTITIONS)
        assert isinstance(log, SqliteLog)
        log.end_offsets(topic)
        poll, waiting = _waiting_poll(log, topic, group)
        until_waiting_in(poll, "wait")  # else its first read may find the record
        _append_from_another_process(log.path, topic, b"from elsewhere")
        poll.join(1.0)
        still_waiting = poll.is_alive()
        assert [r.value for r in log.poll(topic, group, 10, 0.0)] == [b"from elsewhere"]
        log.close()  # ends the first poll
        poll.join(60.0)
        assert still_waiting and waiting == []


def _waiting_poll(
    log: SqliteLog, topic: str, group: str
) -> tuple[threading.Thread, list[Consumed]]:
    """A poll waiting up to an hour in a thread of its own, and the records it will return."""
    got: list[Consumed] = []
    poll = threading.Thread(target=lambda: got.extend(log.poll(topic, group, 10, 3600.0)))
    poll.start()
    return poll, got


def _append_from_another_process(path: Path, topic: str, value: bytes) -> None:
    append = (
        "import sys; from cem.adapters.sqlite_log import SqliteLog; from kernel.ports import "
        "Record; SqliteLog(sys.argv[1], int(sys.argv[2])).append(sys.argv[3], "
        "[Record(b'k', sys.argv[4].encode())])"
    )
    argv = [sys.executable, "-c", append, str(path), str(PARTITIONS), topic, value.decode()]
    subprocess.run(argv, check=True, cwd=REPO, timeout=60)
