"""The access audit in a SQLite file in the data directory (embedded mode), beside the accounts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cem.adapters.sqlite_store import PrivateDbStore
from cem.adapters.sqlite_users import from_micros, to_micros
from kernel.ports import ACCESS_ENTRY_FIELDS, AccessEntry, AccessQuery

AUDIT_FILE = "access-audit.sqlite"  # in the data directory
SCHEMA = """
CREATE TABLE IF NOT EXISTS access_audit (
  entry_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, at INTEGER NOT NULL,
  actor_kind TEXT NOT NULL, actor_id TEXT NOT NULL, actor_email TEXT NOT NULL,
  role TEXT NOT NULL, customer_id TEXT NOT NULL, requested_id TEXT NOT NULL,
  resource TEXT NOT NULL, request_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS access_audit_by_time ON access_audit (tenant_id, at, entry_id);
CREATE INDEX IF NOT EXISTS access_audit_by_customer
  ON access_audit (tenant_id, customer_id, at, entry_id);
"""
COLUMNS = ", ".join(ACCESS_ENTRY_FIELDS)
_VALUES = ", ".join(f":{name}" for name in ACCESS_ENTRY_FIELDS)
INSERT = f"INSERT INTO access_audit ({COLUMNS}) VALUES ({_VALUES})"
# Every filter is a parameter: NULL means "any". The cursor is the last row's (at, entry_id).
SELECT = f"""SELECT {COLUMNS} FROM access_audit
WHERE tenant_id = :tenant
  AND (:customer IS NULL OR customer_id = :customer)
  AND (:actor IS NULL OR actor_id = :actor OR actor_email = :actor)
  AND (:since IS NULL OR at >= :since)
  AND (:until IS NULL OR at < :until)
  AND (:before_at IS NULL OR at < :before_at OR (at = :before_at AND entry_id < :before_id))
ORDER BY at DESC, entry_id DESC
LIMIT :limit"""


def _micros(at: Any) -> int | None:
    return None if at is None else to_micros(at)


def query_params(query: AccessQuery) -> dict[str, Any]:
    before_at, before_id = query.before or (None, None)
    return {
        "tenant": query.tenant_id,
        "customer": query.customer_id,
        "actor": query.actor,
        "since": _micros(query.since),
        "until": _micros(query.until),
        "before_at": _micros(before_at),
        "before_id": before_id,
        "limit": query.limit,
    }


def _entry(row: tuple[Any, ...]) -> AccessEntry:
    entry_id, tenant_id, at, *rest = row
    return AccessEntry(entry_id, tenant_id, from_micros(at), *rest)


class SqliteAccessAudit(PrivateDbStore):
    """An AccessAudit in one SQLite file, 0600. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        # Who read which customer: personal data, owner only. As the event log by default
        # (`sqlite_log._connect`): a commit is in the WAL before the read answers, so it survives a
        # crash of this process; only an OS crash or power loss can lose the last entries. An
        # fsync per read would cost more than the read.
        super().__init__(path, SCHEMA, "synchronous = NORMAL")

    def record(self, entry: AccessEntry) -> None:
        with self._db() as conn:
            conn.execute(INSERT, vars(entry) | {"at": to_micros(entry.at)})

    def check_writable(self) -> None:
        """Take the write lock and insert a probe entry, then roll back: a read-only file or a
        database held by another writer fails here as `record` would."""
        probe = dict.fromkeys(ACCESS_ENTRY_FIELDS, "") | {"entry_id": "probe", "at": 0}
        with self._db() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(INSERT, probe)
            finally:
                conn.execute("ROLLBACK")

    def entries(self, query: AccessQuery) -> list[AccessEntry]:
        with self._db() as conn:
            rows = conn.execute(SELECT, query_params(query)).fetchall()
        return [_entry(row) for row in rows]
