"""The embedded event log and idempotent publisher: one SQLite file with Kafka-like semantics.

Topics have a fixed partition count; records get contiguous offsets per partition; consumer
groups store the next offset to read. The publisher claims (tenant_id, event_id) in the same
transaction as the append, so a crash can never leave a claim without its record or vice versa.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from cem.adapters.memory_log import Decision, accepted_events, check_offsets, classify
from kernel.partitioning import fair_quotas, partition_for
from kernel.ports import (
    TOUCHPOINTS_TOPIC,
    Consumed,
    LogUnavailable,
    Outgoing,
    PublishStatus,
    Record,
    StorageFull,
)
from kernel.private_files import private_file

LOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS partition_ends (
  topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
  PRIMARY KEY (topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
  topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
  key BLOB NOT NULL, value BLOB NOT NULL, headers BLOB, appended_at INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS records_by_position ON records (topic, partition, offset);
CREATE TABLE IF NOT EXISTS group_offsets (
  topic TEXT NOT NULL, consumer_group TEXT NOT NULL, partition INTEGER NOT NULL,
  next_offset INTEGER NOT NULL, PRIMARY KEY (topic, consumer_group, partition)) WITHOUT ROWID;
"""
INSERT_RECORD = """INSERT INTO records (topic, partition, offset, key, value, headers, appended_at)
VALUES (?, ?, ?, ?, ?, ?, ?)"""
SELECT_RECORDS = """SELECT offset, key, value, headers FROM records
WHERE topic = ? AND partition = ? AND offset >= ? ORDER BY offset LIMIT ?"""
SELECT_ENDS = "SELECT partition, next_offset FROM partition_ends WHERE topic = ?"
UPDATE_END = "UPDATE partition_ends SET next_offset = ? WHERE topic = ? AND partition = ?"
SELECT_COMMITTED = """SELECT partition, next_offset FROM group_offsets
WHERE topic = ? AND consumer_group = ?"""
UPSERT_COMMITTED = """INSERT INTO group_offsets (topic, consumer_group, partition, next_offset)
VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET next_offset = excluded.next_offset"""
SKIP_GAP = """INSERT INTO group_offsets (topic, consumer_group, partition, next_offset)
VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)"""
# Retention (`cem retention apply`): every record of the embedded log is keyed `tenant/customer`
# (`kernel.partitioning.partition_key`; dead letters keep their record's key) and tenant ids hold no
# '/', so the key's prefix names the record's tenant; `appended_at` is when the log took it.
TENANT_RECORDS = "FROM records WHERE substr(key, 1, ?) = ? AND appended_at < ?"
HAS_CONFLICTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'conflicts'"
TENANT_CONFLICTS = "FROM conflicts WHERE tenant_id = ? AND recorded_at < ?"

# Primary SQLite result codes that mean "the disk or directory will not take writes".
_STORAGE_CODES = {
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_PERM,
}
_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
# How often a waiting poll looks for commits of other processes once `watch_other_processes` is on
# (the embedded filing stage runs in a process of its own): a condition variable only reaches
# threads of this one.
OTHER_WRITERS_CHECK_S = 0.01


@contextmanager
def storage_errors(path: Path) -> Iterator[None]:
    """Turn disk-full, read-only and lock timeouts into the port's exceptions (ingest answers 503).

    SQLite rolls the failed transaction back, so the file is left as it was: never half-written.
    """
    try:
        yield
    except sqlite3.OperationalError as exc:
        code = getattr(exc, "sqlite_errorcode", -1) & 0xFF
        if code in _STORAGE_CODES:
            raise StorageFull(
                f"cannot write {path}: {exc}; free disk space or make the data directory writable"
            ) from exc
        if code in _BUSY_CODES:
            raise LogUnavailable(f"{path} is locked by another writer") from exc
        raise
    except OSError as exc:
        raise StorageFull(f"cannot use the data directory {path.parent}: {exc}") from exc


def _connect(path: Path, *, fsync: bool, max_bytes: int | None) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
    conn.execute("PRAGMA journal_mode = WAL")
    # In WAL mode a commit under NORMAL has written its frames to the WAL file (the OS page cache)
    # before it returns, so it survives SIGKILL of this process; only an OS crash or power loss
    # can lose the last commits (never corrupt the file). FULL adds an fsync per commit for that.
    conn.execute(f"PRAGMA synchronous = {'FULL' if fsync else 'NORMAL'}")
    conn.execute("PRAGMA cache_size = -32000")
    # A publish dirties about one page of the claims index per event (event ids are random), so
    # at SQLite's default (every 1,000 pages, ~4 MB) nearly every commit is followed by copying its
    # pages back and two syncs. Every 10,000 pages, a page dirtied by several commits is copied
    # once and syncs are 10× rarer. Commits are as durable either way: they are in the WAL.
    conn.execute("PRAGMA wal_autocheckpoint = 10000")
    if max_bytes is not None:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {max(1, max_bytes // page_size)}")
    return conn


def _encode_headers(headers: Sequence[tuple[str, bytes]]) -> bytes | None:
    if not headers:
        return None
    try:
        return _cached_headers_json(tuple(headers))
    except TypeError:  # unhashable, e.g. a bytearray value
        return _headers_json(headers)


# The ingest's records of one tenant and source carry identical headers.
@functools.lru_cache(maxsize=1024)
def _cached_headers_json(headers: tuple[tuple[str, bytes], ...]) -> bytes:
    return _headers_json(headers)


def _headers_json(headers: Sequence[tuple[str, bytes]]) -> bytes:
    return orjson.dumps([[name, value.hex()] for name, value in headers])


# Polls read the same few header blobs again and again; the result is immutable.
@functools.lru_cache(maxsize=1024)
def decode_headers(blob: bytes | None) -> tuple[tuple[str, bytes], ...]:
    return tuple((name, bytes.fromhex(value)) for name, value in orjson.loads(blob or b"[]"))


def micros_now() -> int:
    return time.time_ns() // 1000


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, UTC)


def _micros(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


class SqliteLog:
    """An EventLog in one SQLite file (WAL). Thread-safe: appends go through one writer
    connection, polls through a reader connection, so ingest threads and runners overlap.
    Several processes may open one file (`cem up` files in a process of its own): SQLite takes
    their writes in turn (a writer waits up to 5 s for the lock) and offsets come from the stored
    partition ends. A waiting poll wakes at once for a commit of this object; another process's
    commit is seen by the next poll (a runner's polls wait at most 0.2 s), or within 10 ms once
    `watch_other_processes()` is on (the two-process layout: one log shared while both run).

    `fsync=True` makes acknowledged appends survive power loss too, at one fsync per batch.
    `max_bytes` caps the file size; beyond it appends raise StorageFull like a full disk.
    """

    def __init__(
        self,
        path: Path,
        partitions: int = 12,
        *,
        fsync: bool = False,
        max_bytes: int | None = None,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"a topic needs at least one partition, got {partitions}")
        self.path, self.partitions = Path(path), partitions
        self._write_lock, self._read_lock = threading.RLock(), threading.Lock()
        self._appended = threading.Condition()
        self._generation, self._closed = 0, False
        self._other_writers_check_s: float | None = None
        self._topics: dict[str, int] = {}
        self._turns: dict[tuple[str, str], int] = {}
        with storage_errors(self.path):
            private_file(self.path)
            self._writer = _connect(self.path, fsync=fsync, max_bytes=max_bytes)
            self._reader = _connect(self.path, fsync=fsync, max_bytes=None)
        self._create_tables(LOG_SCHEMA)

    def watch_other_processes(self, interval_s: float = OTHER_WRITERS_CHECK_S) -> None:
        """Make waiting polls look for other processes' commits every `interval_s` (one
        `PRAGMA data_version` read per look) instead of only when their wait ends. Off by default:
        a single process would pay about 100 reads a second per waiting runner for nothing."""
        if not interval_s > 0:
            raise ValueError(f"the interval between looks must be positive, got {interval_s}")
        self._other_writers_check_s = interval_s

    def _create_tables(self, script: str) -> None:
        """Run CREATE ... IF NOT EXISTS statements. Not inside `_transaction`: executescript
        commits whatever transaction is open first."""
        with self._write_lock, storage_errors(self.path):
            self._check_open()
            self._writer.executescript(script)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the writer connection; pollers wake after it commits."""
        with self._write_lock, storage_errors(self.path):
            self._check_open()
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
                self._writer.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._writer.execute("ROLLBACK")
                raise
        with self._appended:
            self._generation += 1
            self._appended.notify_all()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._read_lock, storage_errors(self.path):
            self._check_open()
            yield self._reader

    def _check_open(self) -> None:
        if self._closed:
            raise LogUnavailable(f"the event log {self.path} is closed")

    def _partition_count(self, topic: str) -> int:
        """The topic's partition count, creating the topic with the log's default if new."""
        count = self._topics.get(topic)
        if count is None:
            with self._transaction() as conn:
                count = self._create_topic(conn, topic)
            self._topics[topic] = count
        return count

    def _create_topic(self, conn: sqlite3.Connection, topic: str) -> int:
        conn.execute("INSERT OR IGNORE INTO topics VALUES (?, ?)", (topic, self.partitions))
        (count,) = conn.execute("SELECT partitions FROM topics WHERE name = ?", (topic,)).fetchone()
        conn.executemany(
            "INSERT OR IGNORE INTO partition_ends VALUES (?, ?, 0)",
            [(topic, p) for p in range(count)],
        )
        return int(count)

    def append(self, topic: str, records: Sequence[Record]) -> list[tuple[int, int]]:
        if not records:
            return []
        self._partition_count(topic)
        with self._transaction() as conn:
            return self._append_in(conn, topic, records)

    def _append_in(
        self, conn: sqlite3.Connection, topic: str, records: Sequence[Record]
    ) -> list[tuple[int, int]]:
        """Append inside the caller's transaction; offsets come from the stored partition ends,
        so they stay contiguous even across processes and crashes."""
        count, now = self._topics[topic], micros_now()
        ends = dict(conn.execute(SELECT_ENDS, (topic,)).fetchall())
        positions, rows = [], []
        for record in records:
            p = partition_for(record.key, count)
            positions.append((p, ends[p]))
            rows.append(
                (topic, p, ends[p], record.key, record.value, _encode_headers(record.headers), now)
            )
            ends[p] += 1
        conn.executemany(INSERT_RECORD, rows)
        conn.executemany(UPDATE_END, [(end, topic, p) for p, end in ends.items()])
        return positions

    def poll(self, topic: str, group: str, max_records: int, timeout_s: float) -> list[Consumed]:
        """Records after the group's committed offsets: a batch that is not committed is read
        again by the next poll (embedded mode has one consumer per group)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._appended:
                generation = self._generation
            version = self._data_version() if self._other_writers_check_s is not None else 0
            found = self._read_batch(topic, group, max_records)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            if not self._wait_for_append(generation, version, remaining):
                return []

    def _wait_for_append(self, generation: int, version: int, timeout_s: float) -> bool:
        """Sleep until a commit after `generation` (this object's), or `version` (any process's,
        looked at every `watch_other_processes` interval when on), or the timeout; False once
        the log is closed. A commit of this object wakes the waiter at once."""
        deadline = time.monotonic() + timeout_s
        check_s = timeout_s if self._other_writers_check_s is None else self._other_writers_check_s
        while True:
            remaining = deadline - time.monotonic()
            with self._appended:
                self._appended.wait_for(
                    lambda: self._generation != generation or self._closed,
                    max(0.0, min(remaining, check_s)),
                )
                if self._closed:
                    return False
                if self._generation != generation:
                    return True
            # Outside the condition: `close` takes the read lock before it.
            if remaining <= check_s or self._data_version() != version:
                return True

    def _data_version(self) -> int:
        """Changes whenever another connection (this process's writer, or another process's)
        commits to the file: SQLite's own counter, one cheap pragma."""
        with self._reading() as conn:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def _read_batch(self, topic: str, group: str, max_records: int) -> list[Consumed]:
        self._partition_count(topic)
        with self._reading() as conn:
            ends = dict(conn.execute(SELECT_ENDS, (topic,)).fetchall())
            position = dict(conn.execute(SELECT_COMMITTED, (topic, group)).fetchall())
            turn = self._turns.get((topic, group), 0)
            self._turns[(topic, group)] = turn + 1
            backlog = {p: end - position.get(p, 0) for p, end in ends.items()}
            found: list[Consumed] = []
            gaps: dict[int, int] = {}
            for p, quota in fair_quotas(backlog, max_records, turn).items():
                rows = conn.execute(SELECT_RECORDS, (topic, p, position.get(p, 0), quota))
                got = [Consumed(topic, p, o, k, v, decode_headers(h)) for o, k, v, h in rows]
                if not got:
                    gaps[p] = ends[p]
                found += got
        self._skip_gaps(topic, group, gaps)
        return found

    def _skip_gaps(self, topic: str, group: str, gaps: Mapping[int, int]) -> None:
        """Move the group past partition tails that retention deleted: nothing is left there to
        process, and without this its position would stay short of the end for ever (a replay
        waits for the end). Only this group's own poll does it, so no commit of its races it."""
        if gaps:
            with self._transaction() as conn:
                conn.executemany(SKIP_GAP, [(topic, group, p, end) for p, end in gaps.items()])

    def tenant_records(self, tenant_id: str, before: datetime, *, delete: bool) -> int:
        """The tenant's records appended before `before`, in every topic; deleted if `delete`."""
        prefix = f"{tenant_id}/".encode()
        return self._past(TENANT_RECORDS, (len(prefix), prefix, _micros(before)), delete)

    def tenant_conflicts(self, tenant_id: str, before: datetime, *, delete: bool) -> int:
        """The tenant's recorded conflicts (refused bodies, kept whole) from before `before`."""
        with self._reading() as conn:
            if not conn.execute(HAS_CONFLICTS).fetchone():  # made by the first SqlitePublisher
                return 0
        return self._past(TENANT_CONFLICTS, (tenant_id, _micros(before)), delete)

    def _past(self, rows: str, params: tuple[object, ...], delete: bool) -> int:
        """Count the `rows` (a `FROM … WHERE …`), or delete them. Deleted customers' bytes must
        not stay on disk, so secure_delete zeroes the freed cells whatever the build's default."""
        if not delete:
            with self._reading() as conn:
                return int(conn.execute(f"SELECT count(*) {rows}", params).fetchone()[0])
        with self._transaction() as conn:
            conn.execute("PRAGMA secure_delete = ON")
            return conn.execute(f"DELETE {rows}", params).rowcount

    def commit(self, topic: str, group: str, offsets: Mapping[int, int]) -> None:
        check_offsets(offsets, self._partition_count(topic))
        with self._transaction() as conn:
            rows = [(topic, group, p, offset) for p, offset in offsets.items()]
            conn.executemany(UPSERT_COMMITTED, rows)

    def committed(self, topic: str, group: str) -> dict[int, int]:
        self._partition_count(topic)
        with self._reading() as conn:
            return dict(conn.execute(SELECT_COMMITTED, (topic, group)).fetchall())

    def end_offsets(self, topic: str) -> dict[int, int]:
        self._partition_count(topic)
        with self._reading() as conn:
            return dict(conn.execute(SELECT_ENDS, (topic,)).fetchall())

    def close(self) -> None:
        with self._write_lock, self._read_lock, self._appended:
            if self._closed:
                return
            self._closed = True
            self._appended.notify_all()
            self._reader.close()
            self._writer.close()


PUBLISHER_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
  tenant_id TEXT NOT NULL, event_id TEXT NOT NULL, fingerprint TEXT NOT NULL,
  topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
  claimed_at INTEGER NOT NULL, PRIMARY KEY (tenant_id, event_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conflicts (
  tenant_id TEXT NOT NULL, event_id TEXT NOT NULL, original_fingerprint TEXT NOT NULL,
  fingerprint TEXT NOT NULL, value BLOB NOT NULL, recorded_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS conflicts_by_tenant ON conflicts (tenant_id);
"""
# One lookup per tenant of a batch (a request has one): the event ids travel as one JSON array,
# which SQLite sorts before probing the primary key, so each index page is read once.
SELECT_CLAIMS = """SELECT event_id, fingerprint FROM claims
WHERE tenant_id = ? AND event_id IN (SELECT value FROM json_each(?))"""
INSERT_CLAIM = "INSERT INTO claims VALUES (?, ?, ?, ?, ?, ?, ?)"
INSERT_CONFLICT = "INSERT INTO conflicts VALUES (?, ?, ?, ?, ?, ?)"
SELECT_CONFLICTS = """SELECT event_id, original_fingerprint, fingerprint, value, recorded_at
FROM conflicts WHERE tenant_id = ? ORDER BY rowid DESC LIMIT ?"""


class SqlitePublisher:
    """A Publisher on a SqliteLog: the idempotency claim and the append share one transaction."""

    def __init__(self, log: SqliteLog, topic: str = TOUCHPOINTS_TOPIC) -> None:
        self.log, self.topic = log, topic
        log._create_tables(PUBLISHER_SCHEMA)

    def publish(self, events: Sequence[Outgoing]) -> list[PublishStatus]:
        if not events:
            return []
        self.log._partition_count(self.topic)
        with self.log._transaction() as conn:
            claimed = _claimed(conn, events)
            decisions = classify(events, lambda tenant, event: claimed.get((tenant, event)))
            accepted = accepted_events(events, decisions)
            positions = self.log._append_in(conn, self.topic, [e.record for e in accepted])
            self._claim(conn, accepted, positions)
            _record_conflicts(conn, events, decisions)
        return [d.status for d in decisions]

    def _claim(
        self, conn: sqlite3.Connection, accepted: list[Outgoing], positions: list[tuple[int, int]]
    ) -> None:
        now = micros_now()
        conn.executemany(
            INSERT_CLAIM,
            [
                (e.tenant_id, e.event_id, e.fingerprint, self.topic, p, offset, now)
                for e, (p, offset) in zip(accepted, positions, strict=True)
            ],
        )

    def conflicts(self, tenant_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The tenant's recorded conflicts, newest first."""
        with self.log._reading() as conn:
            rows = conn.execute(SELECT_CONFLICTS, (tenant_id, limit)).fetchall()
        return [
            {
                "tenant_id": tenant_id,
                "event_id": event_id,
                "original_fingerprint": original,
                "fingerprint": new,
                "value": value,
                "recorded_at": from_micros(at),
            }
            for event_id, original, new, value, at in rows
        ]


def _claimed(conn: sqlite3.Connection, events: Sequence[Outgoing]) -> dict[tuple[str, str], str]:
    """The stored fingerprint of every event of the batch that was published before."""
    by_tenant: dict[str, list[str]] = {}
    for e in events:
        by_tenant.setdefault(e.tenant_id, []).append(e.event_id)
    return {
        (tenant, event_id): fingerprint
        for tenant, ids in by_tenant.items()
        for event_id, fingerprint in conn.execute(SELECT_CLAIMS, (tenant, orjson.dumps(ids)))
    }


def _record_conflicts(
    conn: sqlite3.Connection, events: Sequence[Outgoing], decisions: list[Decision]
) -> None:
    now = micros_now()
    conn.executemany(
        INSERT_CONFLICT,
        [
            (e.tenant_id, e.event_id, d.original, e.fingerprint, e.record.value, now)
            for e, d in zip(events, decisions, strict=True)
            if d.status is PublishStatus.conflict
        ],
    )
