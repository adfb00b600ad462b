"""The ChannelStore contract on a real PostgreSQL server (the distributed mode's store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cem.adapters.postgres_channels import PostgresChannelStore
from cem.channels import ChannelStore
from tests.contract.test_channel_store import ChannelStoreContract, box

pytestmark = pytest.mark.postgres


class TestPostgresChannelStore(ChannelStoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, postgres_dsn: str) -> None:
        self.dsn = postgres_dsn

    def make_store(self, tmp_path: Path) -> ChannelStore:
        return PostgresChannelStore(self.dsn, box())

    def stored_bytes(self, store: ChannelStore) -> bytes:
        assert isinstance(store, PostgresChannelStore)
        with store.db.transaction() as cursor:
            rows = cursor.execute("SELECT row_to_json(c)::text FROM channels AS c").fetchall()
        return "\n".join(row[0] for row in rows).encode()
