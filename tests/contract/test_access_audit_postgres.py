"""The AccessAudit contract on a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest

from cem.adapters.postgres_access_audit import PostgresAccessAudit
from kernel.ports import AccessAudit
from tests.contract.test_access_audit import AccessAuditContract

pytestmark = pytest.mark.postgres


class TestPostgresAccessAudit(AccessAuditContract):
    @pytest.fixture(autouse=True)
    def _server(self, postgres_dsn: str) -> None:
        self.dsn = postgres_dsn

    def make_store(self, tmp_path: Path) -> AccessAudit:
        return PostgresAccessAudit(self.dsn)
