"""The CalendarStore contract on every adapter: a tenant's calendar reads back as it was set,
wherever it is kept. Another adapter joins by subclassing `CalendarStoreContract`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from cem.adapters.memory_calendars import MemoryCalendarStore
from cem.adapters.sqlite_calendars import CALENDARS_FILE, SqliteCalendarStore
from services.service_metrics.calendar import (
    UTC_ALWAYS_OPEN,
    CachedCalendars,
    Calendar,
    CalendarStore,
    StoredCalendar,
)

T0 = datetime(2026, 12, 6, 9, 0, 0, 123000, tzinfo=UTC)
MADRID = Calendar.from_json(
    {
        "time_zone": "Europe/Madrid",
        "hours": {"mon": [["09:00", "14:00"], ["15:00", "18:00"]], "fri": [["08:00", "24:00"]]},
        "holidays": ["2026-12-08", "2027-01-06"],
    }
)


class CalendarStoreContract:
    def make_store(self, tmp_path: Path) -> CalendarStore:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[CalendarStore]:
        store = self.make_store(tmp_path)
        yield store
        store.close()

    def test_a_tenant_without_a_calendar_has_none(self, store: CalendarStore) -> None:
        assert store.get(f"t{uuid.uuid4().hex[:8]}") is None

    def test_a_calendar_reads_back_as_set_and_is_replaced(self, store: CalendarStore) -> None:
        tenant, other = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
        store.set(StoredCalendar(tenant, MADRID, T0, "key-1"))
        store.set(StoredCalendar(other, UTC_ALWAYS_OPEN, T0, "key-2"))
        assert store.get(tenant) == StoredCalendar(tenant, MADRID, T0, "key-1")
        stored = store.get(tenant)
        assert stored is not None and stored.calendar.holidays[0] == date(2026, 12, 8)
        canary = Calendar.from_json({"time_zone": "Atlantic/Canary", "hours": {"sat": []}})
        store.set(StoredCalendar(tenant, canary, T0, "user:u-1"))
        assert store.get(tenant) == StoredCalendar(tenant, canary, T0, "user:u-1")
        assert store.get(other) == StoredCalendar(other, UTC_ALWAYS_OPEN, T0, "key-2")


class TestSqliteCalendarStore(CalendarStoreContract):
    def make_store(self, tmp_path: Path) -> CalendarStore:
        return SqliteCalendarStore(tmp_path / CALENDARS_FILE)


class TestMemoryCalendarStore(CalendarStoreContract):
    def make_store(self, tmp_path: Path) -> CalendarStore:
        return MemoryCalendarStore()


class TestCachedCalendars(CalendarStoreContract):
    def make_store(self, tmp_path: Path) -> CalendarStore:
        return CachedCalendars(SqliteCalendarStore(tmp_path / CALENDARS_FILE))
