"""Tenants' calendars in memory: the unit tests' twin of the SQLite and PostgreSQL stores."""

from __future__ import annotations

from services.service_metrics.calendar import StoredCalendar


class MemoryCalendarStore:
    """A CalendarStore in a dict, for tests."""

    def __init__(self) -> None:
        self._stored: dict[str, StoredCalendar] = {}

    def set(self, stored: StoredCalendar) -> None:
        self._stored[stored.tenant_id] = stored

    def get(self, tenant_id: str) -> StoredCalendar | None:
        return self._stored.get(tenant_id)

    def close(self) -> None:
        pass
