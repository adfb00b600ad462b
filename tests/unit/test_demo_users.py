"""`cem up --demo` gives one person per role of the demo tenant, the same on every rerun."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

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


def test_the_distributed_banner_sends_the_readmes_posts_and_metrics_to_the_ingest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Its export line gave only the query API, where the README's POST answered 404, and its
    # metrics link was the query API's, a 404 too (found by a review).
    from cem.demo_seed import SampleCustomer

    keys = {role: f"cem_{role}" for role in ("ingest", "agent", "manager", "admin")}
    print_banner("http://127.0.0.1:8001", keys, SampleCustomer("Emma Baker", "c_x"),
                 read_only=False, ingest_url="http://127.0.0.1:8000")  # fmt: skip
    printed = capsys.readouterr().out
    assert "export CEM=http://127.0.0.1:8001 INGEST_URL=http://127.0.0.1:8000 " in printed
    assert "metrics         http://127.0.0.1:8000/metrics" in printed
