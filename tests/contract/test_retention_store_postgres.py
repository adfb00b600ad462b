"""The RetentionStore contract on a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest

from cem.adapters.postgres_retention import PostgresRetentionStore
from cem.retention import RetentionStore
from tests.contract.test_retention_store import RetentionStoreContract

pytestmark = pytest.mark.postgres


class TestPostgresRetentionStore(RetentionStoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, postgres_dsn: str) -> None:
        self.dsn = postgres_dsn

    def make_store(self, tmp_path: Path) -> RetentionStore:
        return PostgresRetentionStore(self.dsn)
