"""The KeyVault contract on a real PostgreSQL server, a second process included."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from cem.adapters.postgres_vault import FEED, PostgresKeyVault
from kernel.ports import KeyVault
from tests.contract.test_key_vault import PLATFORM_KEY, SharedVaultContract, key_id

pytestmark = pytest.mark.postgres


class TestPostgresKeyVault(SharedVaultContract):
    kind = "postgres"

    @pytest.fixture(autouse=True)
    def _server(self, postgres_dsn: str) -> None:
        self.dsn = postgres_dsn

    def make_vault(self, tmp_path: Path, platform_key: bytes = PLATFORM_KEY) -> KeyVault:
        return PostgresKeyVault(self.dsn, platform_key)

    def where(self, vault: KeyVault) -> str:
        return self.dsn

    def test_a_destroyed_key_leaves_no_row(self, vault: KeyVault, tenant: str) -> None:
        """The table holds neither the wrapped key nor its id (the WAL and dead tuples still do
        until recycled: docs/erasure.md, Known limits)."""
        assert isinstance(vault, PostgresKeyVault)
        kid = key_id(tenant, "email:ana@x.io")
        vault.get_or_create(tenant, kid)
        assert vault.destroy(tenant, [kid]) == 1
        with vault.db.transaction() as cursor:
            rows = cursor.execute(
                "SELECT row_to_json(k)::text FROM key_vault AS k WHERE tenant_id = %s", (tenant,)
            ).fetchall()
        assert rows == []
        assert vault.destroyed(tenant, kid)  # only its id stays, as a tombstone

    def test_a_destruction_committed_late_is_not_skipped_by_a_follower(
        self, vault: KeyVault, tenant: str
    ) -> None:
        """A sequence numbers rows in the order transactions ask, not the order they commit: a
        destroyer that numbered its row first but commits last would be passed over by a reader
        that saw a later number. Destroyers take the feed's lock before numbering, so the second
        waits for the first; here the first is held open on a connection of its own."""
        assert isinstance(vault, PostgresKeyVault)
        early, late = key_id(tenant, "email:early@x.io"), key_id(tenant, "email:late@x.io")
        vault.get_or_create_many(tenant, [early, late])
        start, _ = vault.destructions_after(None)
        with psycopg.connect(self.dsn) as held:  # a destroyer that has numbered its row
            held.execute(FEED, (tenant, [early]))  # (its insert's lock is enough to wait for)
            second = threading.Thread(target=vault.destroy, args=(tenant, [late]))
            second.start()
            second.join(0.5)
            seen, listed = vault.destructions_after(start)  # while the first is not committed
            held.commit()
        second.join(10)
        _, after = vault.destructions_after(seen)
        mine = [k for t, k in [*listed, *after] if t == tenant]
        assert mine == [early, late]
