"""The AccessAudit contract on every adapter: what an admin lists (filters, newest first, pages,
tenants apart) must not depend on where the entries are stored.

Another adapter joins by subclassing `AccessAuditContract` and implementing `make_store`.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cem.adapters.memory_access_audit import MemoryAccessAudit
from cem.adapters.sqlite_access_audit import SqliteAccessAudit
from kernel.ports import AccessAudit, AccessEntry, AccessQuery

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def entry(
    tenant: str,
    customer: str = "cust-1",
    *,
    at: datetime = T0,
    actor_id: str = "k1",
    email: str = "",
    resource: str = "timeline",
) -> AccessEntry:
    kind = "user" if email else "key"
    return AccessEntry(
        str(uuid.uuid4()), tenant, at, kind, actor_id, email, "agent", customer,
        f"email:{customer}@x.io", resource, "req-1",
    )  # fmt: skip


class AccessAuditContract:
    def make_store(self, tmp_path: Path) -> AccessAudit:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[AccessAudit]:
        store = self.make_store(tmp_path)
        yield store
        close = getattr(store, "close", None)
        if close:
            close()

    @pytest.fixture
    def tenant(self) -> str:
        return f"t-{uuid.uuid4().hex[:8]}"

    def test_an_entry_comes_back_as_recorded(self, store: AccessAudit, tenant: str) -> None:
        recorded = entry(tenant, at=T0 + timedelta(microseconds=123), email="ana@x.io")
        store.record(recorded)
        assert store.entries(AccessQuery(tenant)) == [recorded]

    def test_newest_first_and_paged_by_the_last_entry_seen(
        self, store: AccessAudit, tenant: str
    ) -> None:
        # Two entries share each instant: the entry id breaks the tie, so no page repeats or skips.
        recorded = [entry(tenant, at=T0 + timedelta(seconds=n // 2)) for n in range(7)]
        for e in recorded:
            store.record(e)
        newest_first = sorted(recorded, key=lambda e: (e.at, e.entry_id), reverse=True)
        pages: list[list[AccessEntry]] = []
        before = None
        while True:
            page = store.entries(AccessQuery(tenant, before=before, limit=3))
            if not page:
                break
            pages.append(page)
            before = (page[-1].at, page[-1].entry_id)
        assert [e for page in pages for e in page] == newest_first
        assert [len(page) for page in pages] == [3, 3, 1]

    def test_filters_by_customer_actor_and_period(self, store: AccessAudit, tenant: str) -> None:
        ana = entry(tenant, "cust-ana", actor_id="u-1", email="ana@agents.io")
        bob = entry(tenant, "cust-bob", at=T0 + timedelta(hours=1), actor_id="k-9")
        late = entry(tenant, "cust-ana", at=T0 + timedelta(hours=2), actor_id="k-9")
        for e in (ana, bob, late):
            store.record(e)

        def ids(**filters: Any) -> list[str]:
            return [e.entry_id for e in store.entries(AccessQuery(tenant, **filters))]

        assert ids(customer_id="cust-ana") == [late.entry_id, ana.entry_id]
        assert ids(actor="k-9") == [late.entry_id, bob.entry_id]
        assert ids(actor="ana@agents.io") == ids(actor="u-1") == [ana.entry_id]
        assert ids(since=T0 + timedelta(hours=1)) == [late.entry_id, bob.entry_id]
        assert ids(until=T0 + timedelta(hours=1)) == [ana.entry_id]
        assert ids(customer_id="cust-ana", actor="k-9") == [late.entry_id]
        assert ids(customer_id="nobody") == []

    def test_a_healthy_store_is_writable_and_the_probe_writes_nothing(
        self, store: AccessAudit, tenant: str
    ) -> None:
        store.check_writable()
        store.check_writable()
        assert store.entries(AccessQuery(tenant)) == []
        assert store.entries(AccessQuery("")) == []

    def test_tenants_never_see_each_other(self, store: AccessAudit, tenant: str) -> None:
        other = f"{tenant}-other"
        store.record(entry(tenant))
        store.record(entry(other))
        assert {e.tenant_id for e in store.entries(AccessQuery(tenant))} == {tenant}
        assert {e.tenant_id for e in store.entries(AccessQuery(other))} == {other}


class TestMemoryAccessAudit(AccessAuditContract):
    def make_store(self, tmp_path: Path) -> AccessAudit:
        return MemoryAccessAudit()


class TestSqliteAccessAudit(AccessAuditContract):
    def make_store(self, tmp_path: Path) -> AccessAudit:
        return SqliteAccessAudit(tmp_path / "audit" / "access-audit.sqlite")

    def test_the_file_is_the_owners_alone(self, store: AccessAudit) -> None:
        assert isinstance(store, SqliteAccessAudit)
        store.record(entry("acme"))
        assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700

    def test_a_file_that_cannot_be_written_fails_the_probe_though_it_reads(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "ro.sqlite"
        SqliteAccessAudit(path).close()
        reader = SqliteAccessAudit(path)
        # Another process holds the write lock (as a full disk or a read-only mount would refuse):
        # reads still answer, an entry could not be recorded, so the replica is not ready.
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            assert reader.entries(AccessQuery("acme")) == []
            with pytest.raises(Exception, match="locked"):
                reader.check_writable()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        reader.check_writable()
        reader.close()

    def test_entries_survive_a_reopen(self, tmp_path: Path) -> None:
        recorded = entry("acme")
        first = SqliteAccessAudit(tmp_path / "a.sqlite")
        first.record(recorded)
        first.close()
        second = SqliteAccessAudit(tmp_path / "a.sqlite")
        assert second.entries(AccessQuery("acme")) == [recorded]
        second.close()
