"""Subjects' data keys in a SQLite file of the data directory (embedded mode): the KeyVault whose
`destroy` must leave no byte of a key behind.

- The file is created 0600 before SQLite opens it (`kernel.private_files`).
- `secure_delete` zeroes a deleted row's cells and freed pages, whatever the build's default.
- Rollback journal, not WAL: in WAL mode a deleted key stays in the main file until a checkpoint
  copies the zeroed page over it, and a reader holding a snapshot can hold that checkpoint off.
  With a rollback journal the main file is zeroed when the delete commits and the journal, which
  held the page as it was, is deleted with the commit. Keys are written once per new subject, so
  the writer's whole-file lock costs little here.
- `synchronous = FULL`: a key is on disk before its first event is sealed under it; a key lost
  to a power cut would leave that event unreadable, as if erased.
- A destroyed key's id stays, alone, in `destroyed_keys` (its tombstone): a subject that comes
  back gets a new key under the same id, and the events sealed under the destroyed one must
  still open erased (`kernel.sealing.EventOpener`). The id is an HMAC under the tenant's naming
  key; identity's erasure record names the same ids. When the id was last destroyed is kept
  beside it, in a table of its own (`destroyed_times`, microseconds): a tombstone kept by an
  earlier release has none (`KeyVault.last_destroyed_at` answers it as unknown), and a process
  of that release still writing the file (`INSERT INTO destroyed_keys VALUES (?, ?)`, every
  column by position) writes it as it always did, where a column added to `destroyed_keys`
  would make its erasures fail.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from cem.adapters.sqlite_log import from_micros, storage_errors
from kernel.clock import SystemClock
from kernel.ports import DESTROYED_AT_UNKNOWN, Clock
from kernel.private_files import private_file
from kernel.shredding import (
    TenantKeyring,
    check_key_id,
    keep_first,
    keep_first_many,
    key_fingerprint,
    unwrap_data_key,
)

VAULT_FILE = "key_vault.sqlite"  # in the data directory
SCHEMA = """
CREATE TABLE IF NOT EXISTS data_keys (
  tenant_id TEXT NOT NULL, key_id TEXT NOT NULL, wrapped BLOB NOT NULL,
  PRIMARY KEY (tenant_id, key_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS destroyed_keys (
  tenant_id TEXT NOT NULL, key_id TEXT NOT NULL,
  PRIMARY KEY (tenant_id, key_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS destroyed_times (
  tenant_id TEXT NOT NULL, key_id TEXT NOT NULL, destroyed_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, key_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS destroyed_fingerprints (
  tenant_id TEXT NOT NULL, key_id TEXT NOT NULL, fingerprint TEXT NOT NULL,
  PRIMARY KEY (tenant_id, key_id, fingerprint)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS key_destructions (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, key_id TEXT NOT NULL);
"""
INSERT = "INSERT INTO data_keys VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
SELECT = "SELECT wrapped FROM data_keys WHERE tenant_id = ? AND key_id = ?"
DELETE = "DELETE FROM data_keys WHERE tenant_id = ? AND key_id = ?"
TOMBSTONE = "INSERT INTO destroyed_keys (tenant_id, key_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
# A destruction of an id destroyed before sets its time again (the latest; a tombstone without
# one, kept before times were, gets this one: every earlier destruction was before it).
TIMED = """INSERT INTO destroyed_times VALUES (?, ?, ?)
ON CONFLICT DO UPDATE SET destroyed_at = max(destroyed_at, excluded.destroyed_at)"""
DESTROYED = """SELECT t.destroyed_at FROM destroyed_keys k LEFT JOIN destroyed_times t
  ON t.tenant_id = k.tenant_id AND t.key_id = k.key_id WHERE k.tenant_id = ? AND k.key_id = ?"""
# One row per key destroyed, and one with '' per destruction: an id with none is a tombstone kept
# before fingerprints were (`KeyVault.destroyed`).
FINGERPRINT = "INSERT INTO destroyed_fingerprints VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
FINGERPRINTS = "SELECT fingerprint FROM destroyed_fingerprints WHERE tenant_id = ? AND key_id = ?"
# The destruction feed (`KeyVault.destructions_after`): SQLite has one writer at a time, so the
# order of `seq` is the order of the commits; AUTOINCREMENT never hands out a number twice.
FEED = "INSERT INTO key_destructions (tenant_id, key_id) VALUES (?, ?)"
FEED_AFTER = "SELECT seq, tenant_id, key_id FROM key_destructions WHERE seq > ? ORDER BY seq"
FEED_END = "SELECT coalesce(max(seq), 0) FROM key_destructions"


class SqliteKeyVault:
    """A KeyVault in one SQLite file. Thread-safe (one connection behind a lock); processes
    sharing the file agree through SQLite's write lock."""

    def __init__(self, path: Path, platform_key: bytes, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self._keyring = TenantKeyring(platform_key)
        self._lock = threading.Lock()
        self._clock = clock or SystemClock()
        with storage_errors(self.path):
            private_file(self.path)
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=5.0
            )
            self._conn.execute("PRAGMA journal_mode = DELETE")
            self._conn.execute("PRAGMA secure_delete = ON")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.executescript(SCHEMA)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: the write lock first, so an insert and its read-back see one state."""
        with self._lock, storage_errors(self.path):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def get_or_create(self, tenant_id: str, key_id: str) -> bytes:
        def insert_then_read(offered: bytes) -> bytes:
            with self._transaction() as conn:
                conn.execute(INSERT, (tenant_id, key_id, offered))
                return bytes(conn.execute(SELECT, (tenant_id, key_id)).fetchone()[0])

        return keep_first(self._keyring.of(tenant_id), key_id, insert_then_read)

    def get_or_create_many(self, tenant_id: str, key_ids: Sequence[str]) -> dict[str, bytes]:
        def insert_then_read(offered: dict[str, bytes]) -> dict[str, bytes]:
            with self._transaction() as conn:
                conn.executemany(INSERT, [(tenant_id, k, w) for k, w in offered.items()])
                return {
                    k: bytes(conn.execute(SELECT, (tenant_id, k)).fetchone()[0]) for k in offered
                }

        return keep_first_many(self._keyring.of(tenant_id), key_ids, insert_then_read)

    def find(self, tenant_id: str, key_id: str) -> bytes | None:
        with self._lock, storage_errors(self.path):
            row = self._conn.execute(SELECT, (tenant_id, check_key_id(key_id))).fetchone()
        return None if row is None else unwrap_data_key(self._keyring.of(tenant_id), key_id, row[0])

    def destroy(self, tenant_id: str, key_ids: Sequence[str]) -> int:
        keys = self._keyring.of(tenant_id)
        rows = [(tenant_id, check_key_id(k)) for k in dict.fromkeys(key_ids)]
        now = _micros(self._clock.now())
        with self._transaction() as conn:
            destroyed = 0
            for row in rows:
                held = conn.execute(SELECT, row).fetchone()
                conn.execute(TOMBSTONE, row)
                conn.execute(TIMED, (*row, now))
                conn.execute(FINGERPRINT, (*row, ""))
                conn.execute(FEED, row)
                if held is not None:
                    key = unwrap_data_key(keys, row[1], bytes(held[0]))
                    conn.execute(FINGERPRINT, (*row, key_fingerprint(key)))
                    destroyed += conn.execute(DELETE, row).rowcount
            return destroyed

    def destroyed(self, tenant_id: str, key_id: str, fingerprint: str | None = None) -> bool:
        named = (tenant_id, check_key_id(key_id))
        with self._lock, storage_errors(self.path):
            if self._conn.execute(DESTROYED, named).fetchone() is None:
                return False
            known = {str(r[0]) for r in self._conn.execute(FINGERPRINTS, named).fetchall()}
        return fingerprint is None or not known or fingerprint in known

    def last_destroyed_at(self, tenant_id: str, key_id: str) -> datetime | None:
        named = (tenant_id, check_key_id(key_id))
        with self._lock, storage_errors(self.path):
            row = self._conn.execute(DESTROYED, named).fetchone()
        if row is None:
            return None
        return DESTROYED_AT_UNKNOWN if row[0] is None else from_micros(int(row[0]))

    def destructions_after(self, position: int | None) -> tuple[int, list[tuple[str, str]]]:
        with self._lock, storage_errors(self.path):
            if position is None:
                return int(self._conn.execute(FEED_END).fetchone()[0]), []
            rows = self._conn.execute(FEED_AFTER, (position,)).fetchall()
        end = int(rows[-1][0]) if rows else position
        return end, [(str(tenant), str(key_id)) for _, tenant, key_id in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _micros(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)
