"""Tenants' service calendars in PostgreSQL (distributed mode): every query API replica and
every host's `cem calendar` read and write the same ones."""

from __future__ import annotations

from datetime import UTC

from cem.adapters.postgres import PostgresPool
from services.service_metrics.calendar import StoredCalendar, decode, encode

SCHEMA = """
CREATE TABLE IF NOT EXISTS tenant_calendars (
  tenant_id TEXT COLLATE "C" PRIMARY KEY, calendar JSONB NOT NULL, set_at TIMESTAMPTZ NOT NULL,
  set_by TEXT NOT NULL);
"""
UPSERT = """INSERT INTO tenant_calendars VALUES (%s, %s::jsonb, %s, %s) ON CONFLICT (tenant_id)
DO UPDATE SET calendar = excluded.calendar, set_at = excluded.set_at, set_by = excluded.set_by"""
SELECT = """SELECT tenant_id, calendar::text, set_at, set_by FROM tenant_calendars
WHERE tenant_id = %s"""


class PostgresCalendarStore:
    """A CalendarStore in PostgreSQL; the table is created on start if missing."""

    def __init__(self, dsn: str, *, timeout_s: float = 5.0) -> None:
        self.db = PostgresPool.with_schema(
            dsn, "cem.calendars", SCHEMA, max_size=2, timeout_s=timeout_s, name="cem-calendars"
        )

    def set(self, stored: StoredCalendar) -> None:
        row = (stored.tenant_id, encode(stored.calendar), stored.set_at, stored.set_by)
        with self.db.transaction() as cursor:
            cursor.execute(UPSERT, row)

    def get(self, tenant_id: str) -> StoredCalendar | None:
        with self.db.transaction() as cursor:
            row = cursor.execute(SELECT, (tenant_id,)).fetchone()
        if row is None:
            return None
        return StoredCalendar(row[0], decode(row[1]), row[2].astimezone(UTC), row[3])

    def close(self) -> None:
        self.db.close()
