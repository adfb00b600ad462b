"""Tenants' service calendars in a SQLite file in the data directory (embedded mode)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cem.adapters.sqlite_log import storage_errors
from cem.adapters.sqlite_store import open_private_db
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


class SqliteCalendarStore:
    """A CalendarStore in one SQLite file, 0600. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_private_db(self.path, SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self._lock, storage_errors(self.path):
            yield self._conn

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

    def close(self) -> None:
        with self._lock:
            self._conn.close()
