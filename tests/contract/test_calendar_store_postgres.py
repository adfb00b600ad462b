"""The CalendarStore contract on a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest

from cem.adapters.postgres_calendars import PostgresCalendarStore
from services.service_metrics.calendar import CalendarStore
from tests.contract.test_calendar_store import CalendarStoreContract

pytestmark = pytest.mark.postgres


class TestPostgresCalendarStore(CalendarStoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, postgres_dsn: str) -> None:
        self.dsn = postgres_dsn

    def make_store(self, tmp_path: Path) -> CalendarStore:
        return PostgresCalendarStore(self.dsn)
