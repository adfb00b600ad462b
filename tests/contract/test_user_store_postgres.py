"""The UserStore contract on a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest

from cem.adapters.postgres_users import PostgresUserStore
from kernel.ports import UserStore
from tests.contract.test_user_store import UserStoreContract

pytestmark = pytest.mark.postgres


class TestPostgresUserStore(UserStoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, postgres_dsn: str) -> None:
        self.dsn = postgres_dsn

    def make_store(self, tmp_path: Path) -> UserStore:
        return PostgresUserStore(self.dsn)

    def stored_text(self, store: UserStore) -> str:
        assert isinstance(store, PostgresUserStore)
        tables = ("users", "sessions", "sign_in_audit")
        with store.db.transaction() as cursor:
            rows = [
                row[0]
                for table in tables
                for row in cursor.execute(f"SELECT row_to_json(t)::text FROM {table} AS t")
            ]
        return "\n".join(rows)
