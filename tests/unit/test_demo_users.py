"""`cem up --demo` gives one person per role of the demo tenant, the same on every rerun."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cem.adapters.memory_users import MemoryUserStore
from cem.up import DEMO_TENANT, demo_users, print_banner
from kernel.accounts import Accounts
from kernel.clock import FixedClock


def test_one_demo_person_per_role_who_can_sign_in(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    accounts = Accounts(MemoryUserStore(), FixedClock(datetime(2026, 12, 1, tzinfo=UTC)))
    users = demo_users(accounts, tmp_path)
    assert sorted(users) == ["admin", "agent", "manager"]
    for role, (email, password) in users.items():
        signed = accounts.sign_in(email, password)
        assert signed is not None
        assert (signed.user.tenant_id, signed.user.role) == (DEMO_TENANT, role)
    assert (tmp_path / "demo-users.json").stat().st_mode & 0o777 == 0o600
    assert demo_users(accounts, tmp_path) == users  # a rerun prints the same people
    print_banner("http://127.0.0.1:8000", None, None, read_only=False, users=users)
    banner = capsys.readouterr().out
    assert "http://127.0.0.1:8000/signin" in banner
    assert all(email in banner and password in banner for email, password in users.values())
