"""Subjects' data keys in PostgreSQL (distributed mode), beside the identity store: every
replica's filing stage reads and makes the same keys.

A destroyed key's row is gone from the table at once, but PostgreSQL keeps its bytes, wrapped by
the tenant key, in the write-ahead log, in dead tuples until a vacuum reuses their space, and in
backups (docs/erasure.md, "Known limits"). Its id stays in `key_vault_destroyed` (a tombstone), so
the events sealed under it still open erased once a returning subject has a new key under the
same id (`kernel.sealing.EventOpener`), with the server's time of its last destruction
(`destroyed_at`, added to a table made before: its tombstones have none, answered as unknown by
`last_destroyed_at`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from cem.adapters.postgres import PostgresPool
from kernel.ports import DESTROYED_AT_UNKNOWN
from kernel.shredding import (
    TenantKeyring,
    check_key_id,
    keep_first,
    keep_first_many,
    key_fingerprint,
    unwrap_data_key,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS key_vault (
  tenant_id TEXT COLLATE "C" NOT NULL, key_id TEXT COLLATE "C" NOT NULL, wrapped BYTEA NOT NULL,
  PRIMARY KEY (tenant_id, key_id));
CREATE TABLE IF NOT EXISTS key_vault_destroyed (
  tenant_id TEXT COLLATE "C" NOT NULL, key_id TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (tenant_id, key_id));
CREATE TABLE IF NOT EXISTS key_vault_destroyed_fingerprints (
  tenant_id TEXT COLLATE "C" NOT NULL, key_id TEXT COLLATE "C" NOT NULL,
  fingerprint TEXT COLLATE "C" NOT NULL, PRIMARY KEY (tenant_id, key_id, fingerprint));
CREATE TABLE IF NOT EXISTS key_vault_destructions (
  seq BIGSERIAL PRIMARY KEY, tenant_id TEXT COLLATE "C" NOT NULL, key_id TEXT COLLATE "C" NOT NULL);
ALTER TABLE key_vault_destroyed ADD COLUMN IF NOT EXISTS destroyed_at TIMESTAMPTZ;
"""
INSERT = "INSERT INTO key_vault VALUES (%s, %s, %s) ON CONFLICT DO NOTHING"
SELECT = "SELECT wrapped FROM key_vault WHERE tenant_id = %s AND key_id = %s"
SELECT_MANY = "SELECT key_id, wrapped FROM key_vault WHERE tenant_id = %s AND key_id = ANY(%s)"
DELETE = "DELETE FROM key_vault WHERE tenant_id = %s AND key_id = ANY(%s)"
# The server's clock, which every replica shares. A destruction of an id destroyed before sets its
# time again (the latest; a tombstone without one, kept before times were, gets this one).
TOMBSTONE = """INSERT INTO key_vault_destroyed (tenant_id, key_id, destroyed_at)
SELECT %s, unnest(%s::text[]), clock_timestamp()
ON CONFLICT (tenant_id, key_id) DO UPDATE
SET destroyed_at = GREATEST(key_vault_destroyed.destroyed_at, EXCLUDED.destroyed_at)"""
DESTROYED = "SELECT destroyed_at FROM key_vault_destroyed WHERE tenant_id = %s AND key_id = %s"
# One row per key destroyed, and one with '' per destruction: an id with none is a tombstone kept
# before fingerprints were (`KeyVault.destroyed`).
FINGERPRINT = """INSERT INTO key_vault_destroyed_fingerprints
SELECT %s, unnest(%s::text[]), unnest(%s::text[]) ON CONFLICT DO NOTHING"""
FINGERPRINTS = """SELECT fingerprint FROM key_vault_destroyed_fingerprints
WHERE tenant_id = %s AND key_id = %s"""
# The destruction feed (`KeyVault.destructions_after`). A sequence hands out numbers in the order
# transactions ask, not the order they commit, so a reader could pass a number whose transaction
# commits later. Destroyers take this lock (it conflicts with itself, not with readers) before
# numbering their rows and hold it to the commit: numbers then commit in order.
FEED_LOCK = "LOCK TABLE key_vault_destructions IN SHARE ROW EXCLUSIVE MODE"
FEED = """INSERT INTO key_vault_destructions (tenant_id, key_id)
SELECT %s, unnest(%s::text[])"""
FEED_AFTER = """SELECT seq, tenant_id, key_id FROM key_vault_destructions WHERE seq > %s
ORDER BY seq"""
FEED_END = "SELECT coalesce(max(seq), 0) FROM key_vault_destructions"
# A feed read that takes longer is abandoned (an answer in a second or none): it runs before every
# batch a stage opens or seals, which should not wait on a server that is stuck.
FEED_TIMEOUT = "SET LOCAL statement_timeout = '1s'"


class PostgresKeyVault:
    """A KeyVault in PostgreSQL; the table is created on start if missing."""

    def __init__(self, dsn: str, platform_key: bytes, *, timeout_s: float = 5.0) -> None:
        self._keyring = TenantKeyring(platform_key)
        self.db = PostgresPool.with_schema(
            dsn, "cem.key_vault", SCHEMA, max_size=4, timeout_s=timeout_s, name="cem-key-vault"
        )

    def get_or_create(self, tenant_id: str, key_id: str) -> bytes:
        def insert_then_read(offered: bytes) -> bytes:
            # Read committed: an insert that meets another transaction's row waits for it to
            # commit and does nothing; the SELECT, a new statement, then sees that row.
            with self.db.transaction() as cursor:
                cursor.execute(INSERT, (tenant_id, key_id, offered))
                row = cursor.execute(SELECT, (tenant_id, key_id)).fetchone()
            assert row is not None  # inserted just above, or by whoever came first
            return bytes(row[0])

        return keep_first(self._keyring.of(tenant_id), key_id, insert_then_read)

    def get_or_create_many(self, tenant_id: str, key_ids: Sequence[str]) -> dict[str, bytes]:
        def insert_then_read(offered: dict[str, bytes]) -> dict[str, bytes]:
            # In key order, so two replicas inserting overlapping batches cannot deadlock.
            rows = [(tenant_id, k, offered[k]) for k in sorted(offered)]
            with self.db.transaction() as cursor:
                cursor.executemany(INSERT, rows)
                cursor.execute(SELECT_MANY, (tenant_id, sorted(offered)))
                kept = {str(k): bytes(w) for k, w in cursor.fetchall()}
            return kept

        return keep_first_many(self._keyring.of(tenant_id), key_ids, insert_then_read)

    def find(self, tenant_id: str, key_id: str) -> bytes | None:
        with self.db.transaction() as cursor:
            row = cursor.execute(SELECT, (tenant_id, check_key_id(key_id))).fetchone()
        return None if row is None else unwrap_data_key(self._keyring.of(tenant_id), key_id, row[0])

    def destroy(self, tenant_id: str, key_ids: Sequence[str]) -> int:
        keys = self._keyring.of(tenant_id)
        ids = sorted(dict.fromkeys(check_key_id(k) for k in key_ids))  # sorted: no deadlock
        with self.db.transaction() as cursor:
            cursor.execute(SELECT_MANY + " FOR UPDATE", (tenant_id, ids))
            held = {str(k): bytes(w) for k, w in cursor.fetchall()}
            prints = [(k, "") for k in ids] + [
                (k, key_fingerprint(unwrap_data_key(keys, k, w))) for k, w in held.items()
            ]
            cursor.execute(TOMBSTONE, (tenant_id, ids))
            cursor.execute(FEED_LOCK)
            cursor.execute(FEED, (tenant_id, ids))
            cursor.execute(FINGERPRINT, (tenant_id, [k for k, _ in prints], [f for _, f in prints]))
            return cursor.execute(DELETE, (tenant_id, ids)).rowcount

    def destroyed(self, tenant_id: str, key_id: str, fingerprint: str | None = None) -> bool:
        named = (tenant_id, check_key_id(key_id))
        with self.db.transaction() as cursor:
            if cursor.execute(DESTROYED, named).fetchone() is None:
                return False
            known = {str(r[0]) for r in cursor.execute(FINGERPRINTS, named).fetchall()}
        return fingerprint is None or not known or fingerprint in known

    def last_destroyed_at(self, tenant_id: str, key_id: str) -> datetime | None:
        named = (tenant_id, check_key_id(key_id))
        with self.db.transaction() as cursor:
            row = cursor.execute(DESTROYED, named).fetchone()
        if row is None:
            return None
        return DESTROYED_AT_UNKNOWN if row[0] is None else row[0].astimezone(UTC)

    def destructions_after(self, position: int | None) -> tuple[int, list[tuple[str, str]]]:
        with self.db.transaction() as cursor:
            cursor.execute(FEED_TIMEOUT)
            if position is None:
                row = cursor.execute(FEED_END).fetchone()
                return (0 if row is None else int(row[0])), []
            rows = cursor.execute(FEED_AFTER, (position,)).fetchall()
        end = int(rows[-1][0]) if rows else position
        return end, [(str(tenant), str(key_id)) for _, tenant, key_id in rows]

    def close(self) -> None:
        self.db.close()
