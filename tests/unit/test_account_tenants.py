"""An account's tenant is checked as a key's is (found by a first-hour review: `cem users create
--tenant 'Bad Tenant'` made an account nobody's data is filed under)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cem.adapters.memory_users import MemoryUserStore
from kernel.accounts import AccountError, Accounts
from kernel.clock import FixedClock


@pytest.mark.parametrize("tenant", ["Bad Tenant", "", "ACME", "-acme", "a" * 65])
def test_an_account_for_a_tenant_id_no_key_could_have_is_refused(tenant: str) -> None:
    accounts = Accounts(MemoryUserStore(), FixedClock(datetime(2026, 12, 6, tzinfo=UTC)))
    with pytest.raises(AccountError, match="invalid tenant id"):
        accounts.create(tenant, "agent", "ana@example.com", "a long enough password")
    assert accounts.store.users(None) == []


def test_an_account_for_a_good_tenant_id_is_made() -> None:
    accounts = Accounts(MemoryUserStore(), FixedClock(datetime(2026, 12, 6, tzinfo=UTC)))
    user = accounts.create("acme-es", "agent", "ana@example.com", "a long enough password")
    assert user.tenant_id == "acme-es"
