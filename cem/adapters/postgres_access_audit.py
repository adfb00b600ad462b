"""The access audit in PostgreSQL (distributed mode): every query-API replica appends to one table."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from cem.adapters.postgres import PostgresPool
from kernel.ports import ACCESS_ENTRY_FIELDS, AccessEntry, AccessQuery

SCHEMA = """
CREATE TABLE IF NOT EXISTS access_audit (
  entry_id TEXT COLLATE "C" PRIMARY KEY, tenant_id TEXT NOT NULL, at TIMESTAMPTZ NOT NULL,
  actor_kind TEXT NOT NULL, actor_id TEXT NOT NULL, actor_email TEXT NOT NULL,
  role TEXT NOT NULL, customer_id TEXT NOT NULL, requested_id TEXT NOT NULL,
  resource TEXT NOT NULL, request_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS access_audit_by_time ON access_audit (tenant_id, at, entry_id);
CREATE INDEX IF NOT EXISTS access_audit_by_customer
  ON access_audit (tenant_id, customer_id, at, entry_id);
"""
COLUMNS = ", ".join(ACCESS_ENTRY_FIELDS)
_VALUES = ", ".join(f"%({name})s" for name in ACCESS_ENTRY_FIELDS)
INSERT = f"INSERT INTO access_audit ({COLUMNS}) VALUES ({_VALUES})"
# Every filter is a parameter: NULL means "any". The cursor is the last row's (at, entry_id).
SELECT = f"""SELECT {COLUMNS} FROM access_audit
WHERE tenant_id = %(tenant)s
  AND (%(customer)s::text IS NULL OR customer_id = %(customer)s)
  AND (%(actor)s::text IS NULL OR actor_id = %(actor)s OR actor_email = %(actor)s)
  AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR at < %(until)s)
  AND (%(before_at)s::timestamptz IS NULL OR (at, entry_id) < (%(before_at)s, %(before_id)s::text))
ORDER BY at DESC, entry_id DESC
LIMIT %(limit)s"""


def _entry(row: tuple[Any, ...]) -> AccessEntry:
    entry_id, tenant_id, at, *rest = row
    return AccessEntry(entry_id, tenant_id, at.astimezone(UTC), *rest)


class PostgresAccessAudit:
    """An AccessAudit in PostgreSQL; the table is created on start if missing."""

    def __init__(self, dsn: str, *, pool_size: int = 4, timeout_s: float = 5.0) -> None:
        self.db = PostgresPool.with_schema(
            dsn,
            "kernel.access_audit",
            SCHEMA,
            max_size=pool_size,
            timeout_s=timeout_s,
            name="cem-access-audit",
        )

    def record(self, entry: AccessEntry) -> None:
        with self.db.transaction() as cursor:
            cursor.execute(INSERT, vars(entry))

    def check_writable(self) -> None:
        """A standby or a read-only server answers reads but refuses `record`: not ready."""
        with self.db.transaction() as cursor:
            row = cursor.execute(
                "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"
            ).fetchone()
        if row is None or row[0] or row[1] == "on":
            raise RuntimeError("the access audit's PostgreSQL server accepts no writes")

    def entries(self, query: AccessQuery) -> list[AccessEntry]:
        before_at, before_id = query.before or (None, None)
        params = {
            "tenant": query.tenant_id,
            "customer": query.customer_id,
            "actor": query.actor,
            "since": query.since,
            "until": query.until,
            "before_at": before_at,
            "before_id": before_id,
            "limit": query.limit,
        }
        with self.db.transaction() as cursor:
            rows = cursor.execute(SELECT, params).fetchall()
        return [_entry(row) for row in rows]

    def close(self) -> None:
        self.db.close()
