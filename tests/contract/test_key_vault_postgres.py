"""The KeyVault contract on a real PostgreSQL server, a second process included."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from cem.adapters.postgres_vault import FEED, PostgresKeyVault
from kernel.ports import DESTROYED_AT_UNKNOWN, KeyVault
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

    def test_a_tombstone_kept_before_times_were_was_destroyed_at_an_unknown_time(
        self, vault: KeyVault, tenant: str
    ) -> None:
        assert isinstance(vault, PostgresKeyVault)
        kid = key_id(tenant, "email:ana@x.io")
        vault.get_or_create(tenant, kid)
        vault.destroy(tenant, [kid])
        with vault.db.transaction() as cursor:  # as a release before the column left it
            cursor.execute(
                "UPDATE key_vault_destroyed SET destroyed_at = NULL WHERE tenant_id = %s", (tenant,)
            )
        assert vault.last_destroyed_at(tenant, kid) is DESTROYED_AT_UNKNOWN
        vault.destroy(tenant, [kid])  # destroyed again: this time is the latest
        assert vault.last_destroyed_at(tenant, kid) not in (None, DESTROYED_AT_UNKNOWN)

    def test_a_table_of_an_earlier_release_gets_the_destruction_time_column(
        self, tenant: str
    ) -> None:
        """In a schema of its own (the session's tables have the column already): the tables
        as the release before made them, one tombstone in it, then the vault starts."""
        schema = f"old_{uuid.uuid4().hex[:12]}"
        kid = key_id(tenant, "email:ana@x.io")
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
            conn.execute(
                f"""CREATE TABLE {schema}.key_vault_destroyed (
                tenant_id TEXT COLLATE "C" NOT NULL, key_id TEXT COLLATE "C" NOT NULL,
                PRIMARY KEY (tenant_id, key_id))"""
            )
            conn.execute(f"INSERT INTO {schema}.key_vault_destroyed VALUES (%s, %s)", (tenant, kid))
        separator = "&" if "?" in self.dsn else "?"
        dsn = f"{self.dsn}{separator}options={quote(f'-csearch_path={schema}')}"
        try:
            vault = PostgresKeyVault(dsn, PLATFORM_KEY)
            try:
                assert vault.destroyed(tenant, kid)
                assert vault.last_destroyed_at(tenant, kid) is DESTROYED_AT_UNKNOWN
                vault.destroy(tenant, [kid])
                assert vault.last_destroyed_at(tenant, kid) not in (None, DESTROYED_AT_UNKNOWN)
            finally:
                vault.close()
            again = PostgresKeyVault(dsn, PLATFORM_KEY)  # a restart adds nothing twice
            again.close()
        finally:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
