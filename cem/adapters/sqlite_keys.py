"""API keys in a SQLite file (embedded mode), stored as SHA-256 digests."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

from cem.adapters.memory_keys import (
    StoredKey,
    ValidKeyCache,
    check_new_key,
    digest,
    mint_key,
    principal_of,
)
from cem.adapters.sqlite_log import from_micros, micros_now
from cem.adapters.sqlite_store import PrivateDbStore
from kernel.ports import Principal

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
  key_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, role TEXT NOT NULL, name TEXT NOT NULL,
  secret_sha256 TEXT NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER);
CREATE INDEX IF NOT EXISTS api_keys_by_tenant ON api_keys (tenant_id);
"""
COLUMNS = "key_id, tenant_id, role, name, secret_sha256, created_at, revoked_at"
INSERT_KEY = f"INSERT INTO api_keys ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL)"
SELECT_KEY = f"SELECT {COLUMNS} FROM api_keys WHERE key_id = ?"
SELECT_TENANT_KEYS = (
    f"SELECT {COLUMNS} FROM api_keys WHERE tenant_id = ? ORDER BY created_at, key_id"
)
REVOKE_KEY = "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL"


def _stored(row: tuple[Any, ...]) -> StoredKey:
    key_id, tenant_id, role, name, secret_sha256, created_at, revoked_at = row
    revoked = None if revoked_at is None else from_micros(revoked_at)
    return StoredKey(key_id, tenant_id, role, name, secret_sha256, from_micros(created_at), revoked)


class SqliteKeyStore(PrivateDbStore):
    """A KeyStore in one SQLite file. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        self._valid = ValidKeyCache()
        # Keys change rarely, so they keep SQLite's default synchronous=FULL: a created key
        # survives power loss; WAL lets authentication read while a key is being written.
        super().__init__(path, SCHEMA)

    def create(self, tenant_id: str, role: str, name: str = "") -> tuple[str, str]:
        check_new_key(tenant_id, role, name)
        key_id, secret = mint_key()
        with self._db() as conn:
            conn.execute(INSERT_KEY, (key_id, tenant_id, role, name, digest(secret), micros_now()))
        return key_id, secret

    def authenticate(self, secret: str) -> Principal | None:
        return principal_of(secret, lambda key_id: self._valid.lookup(key_id, self._load))

    def _load(self, key_id: str) -> StoredKey | None:
        with self._db() as conn:
            row = conn.execute(SELECT_KEY, (key_id,)).fetchone()
        return None if row is None else _stored(row)

    def revoke(self, key_id: str) -> None:
        """Revoke a key (again is a no-op); KeyError if there is no such key."""
        with self._db() as conn:
            if conn.execute(SELECT_KEY, (key_id,)).fetchone() is None:
                raise KeyError(key_id)
            conn.execute(REVOKE_KEY, (micros_now(), key_id))
        self._valid.forget(key_id)

    def list(self, tenant_id: str) -> builtins.list[dict[str, Any]]:
        """The tenant's keys, oldest first, without secrets or digests."""
        with self._db() as conn:
            rows = conn.execute(SELECT_TENANT_KEYS, (tenant_id,)).fetchall()
        return [_stored(row).public() for row in rows]
