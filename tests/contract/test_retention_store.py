"""The RetentionStore contract on every adapter: a tenant's policy and the record of its applies
read back the same wherever they are kept. Another adapter joins by subclassing
`RetentionStoreContract` and implementing `make_store`."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cem.adapters.sqlite_retention import RETENTION_FILE, SqliteRetentionStore
from cem.retention import ApplyRun, Policy, RetentionStore

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class RetentionStoreContract:
    def make_store(self, tmp_path: Path) -> RetentionStore:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[RetentionStore]:
        store = self.make_store(tmp_path)
        yield store
        store.close()

    def test_a_tenant_without_a_policy_keeps_everything(self, store: RetentionStore) -> None:
        tenant = f"t{uuid.uuid4().hex[:8]}"
        assert store.get(tenant) == Policy(tenant, None, None)
        assert store.runs(tenant) == []

    def test_a_policy_is_replaced_and_listed(self, store: RetentionStore) -> None:
        tenant, other = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
        store.set(Policy(tenant, 30, 365))
        store.set(Policy(other, None, 90))
        store.set(Policy(tenant, 7, None))
        assert store.get(tenant) == Policy(tenant, 7, None)
        mine = [p for p in store.policies() if p.tenant_id in (tenant, other)]
        assert mine == sorted([Policy(tenant, 7, None), Policy(other, None, 90)], key=str)

    def test_runs_read_back_newest_first_per_tenant(self, store: RetentionStore) -> None:
        tenant, other = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
        first = ApplyRun(tenant, T0, True, "embedded: /d", T0 - timedelta(days=30), None, {"a": 3})
        second = ApplyRun(tenant, T0 + timedelta(days=1), False, "embedded: /d", None, T0, {})
        for run in (first, second, ApplyRun(other, T0, False, "x", None, None, {"b": 1})):
            store.record_run(run)
        assert store.runs(tenant) == [second, first]
        assert store.runs(tenant, limit=1) == [second]


class TestSqliteRetentionStore(RetentionStoreContract):
    def make_store(self, tmp_path: Path) -> RetentionStore:
        return SqliteRetentionStore(tmp_path / RETENTION_FILE)

    def test_the_file_is_the_owners_only(self, tmp_path: Path) -> None:
        self.make_store(tmp_path).close()
        assert stat.S_IMODE(os.stat(tmp_path / RETENTION_FILE).st_mode) == 0o600
