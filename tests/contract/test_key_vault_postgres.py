"""The KeyVault contract on a real PostgreSQL server, a second process included."""

from __future__ import annotations

from pathlib import Path

import pytest

from cem.adapters.postgres_vault import PostgresKeyVault
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
