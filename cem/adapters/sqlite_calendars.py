"""Tenants' service calendars in a SQLite file in the data directory (embedded mode)."""

from __future__ import annotations

from pathlib import Path

from cem.adapters.sqlite_store import PrivateDbStore
from cem.adapters.sqlite_users import from_micros, to_micros
from services.service_metrics.calendar import StoredCalendar, decode, encode

CALENDARS_FILE = "calendars.sqlite"  # in the data directory
SCHEMA = """
CREATE TABLE IF NOT EXISTS tenant_calendars (
  tenant_id TEXT PRIMARY KEY, calendar TEXT NOT NULL, set_at INTEGER NOT NULL,
  set_by TEXT NOT NULL);
"""
UPSERT = """INSERT INTO tenant_calendars VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id)
DO UPDATE SET calendar = excluded.calendar, set_at = excluded.set_at, set_by = excluded.set_by"""
SELECT = "SELECT tenant_id, calendar, set_at, set_by FROM tenant_calendars WHERE tenant_id = ?"


class SqliteCalendarStore(PrivateDbStore):
    """A CalendarStore in one SQLite file, 0600. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, SCHEMA)

    def set(self, stored: StoredCalendar) -> None:
        row = (stored.tenant_id, encode(stored.calendar), to_micros(stored.set_at), stored.set_by)
        with self._db() as conn:
            conn.execute(UPSERT, row)

    def get(self, tenant_id: str) -> StoredCalendar | None:
        with self._db() as conn:
            row = conn.execute(SELECT, (tenant_id,)).fetchone()
        if row is None:
            return None
        return StoredCalendar(row[0], decode(row[1]), from_micros(row[2]), row[3])
