"""API keys in PostgreSQL (distributed mode), stored as SHA-256 digests.

The same rules as the SQLite store (`memory_keys` owns the key format, digest and checks): every
ingest and query-api replica authenticates against this one table.
"""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from typing import Any

from cem.adapters.memory_keys import (
    StoredKey,
    ValidKeyCache,
    check_new_key,
    digest,
    mint_key,
    principal_of,
)
from cem.adapters.postgres import PostgresPool
from kernel.ports import Principal

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
  key_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, role TEXT NOT NULL, name TEXT NOT NULL,
  secret_sha256 TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  revoked_at TIMESTAMPTZ, seq BIGSERIAL NOT NULL);
CREATE INDEX IF NOT EXISTS api_keys_by_tenant ON api_keys (tenant_id, created_at, seq);
"""
COLUMNS = "key_id, tenant_id, role, name, secret_sha256, created_at, revoked_at"
INSERT_KEY = """INSERT INTO api_keys (key_id, tenant_id, role, name, secret_sha256)
VALUES (%s, %s, %s, %s, %s)"""
SELECT_KEY = f"SELECT {COLUMNS} FROM api_keys WHERE key_id = %s"
# `seq` breaks ties between keys created within one clock tick, so the order is creation order.
SELECT_TENANT_KEYS = f"SELECT {COLUMNS} FROM api_keys WHERE tenant_id = %s ORDER BY created_at, seq"
REVOKE_KEY = """UPDATE api_keys SET revoked_at = coalesce(revoked_at, clock_timestamp())
WHERE key_id = %s RETURNING key_id"""


def _utc(at: datetime | None) -> datetime | None:
    return None if at is None else at.astimezone(UTC)


def _stored(row: tuple[Any, ...]) -> StoredKey:
    key_id, tenant_id, role, name, secret_sha256, created_at, revoked_at = row
    return StoredKey(
        key_id, tenant_id, role, name, secret_sha256, created_at.astimezone(UTC), _utc(revoked_at)
    )


class PostgresKeyStore:
    """A KeyStore in PostgreSQL. Thread-safe; the table is created on start if missing."""

    def __init__(self, dsn: str, *, pool_size: int = 4, timeout_s: float = 5.0) -> None:
        self.db = PostgresPool.with_schema(
            dsn, "cem.api_keys", SCHEMA, max_size=pool_size, timeout_s=timeout_s, name="cem-keys"
        )
        self._valid = ValidKeyCache()

    def create(self, tenant_id: str, role: str, name: str = "") -> tuple[str, str]:
        check_new_key(tenant_id, role, name)
        key_id, secret = mint_key()
        with self.db.transaction() as cursor:
            cursor.execute(INSERT_KEY, (key_id, tenant_id, role, name, digest(secret)))
        return key_id, secret

    def authenticate(self, secret: str) -> Principal | None:
        return principal_of(secret, lambda key_id: self._valid.lookup(key_id, self._load))

    def _load(self, key_id: str) -> StoredKey | None:
        with self.db.transaction() as cursor:
            row = cursor.execute(SELECT_KEY, (key_id,)).fetchone()
        return None if row is None else _stored(row)

    def revoke(self, key_id: str) -> None:
        """Revoke a key (again is a no-op); KeyError if there is no such key."""
        with self.db.transaction() as cursor:
            if cursor.execute(REVOKE_KEY, (key_id,)).fetchone() is None:
                raise KeyError(key_id)
        self._valid.forget(key_id)

    def list(self, tenant_id: str) -> builtins.list[dict[str, Any]]:
        """The tenant's keys, oldest first, without secrets or digests."""
        with self.db.transaction() as cursor:
            rows = cursor.execute(SELECT_TENANT_KEYS, (tenant_id,)).fetchall()
        return [_stored(row).public() for row in rows]

    def close(self) -> None:
        self.db.close()
