"""The UserStore contract, run through `kernel.accounts.Accounts` on every adapter: what a person
signing in sees (sessions, lock-out, CSRF tokens) must not depend on where accounts are stored.

Another adapter joins by subclassing `UserStoreContract` and implementing `make_store` and
`stored_text` (everything the store persisted, to prove no password or session secret is in it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cem.adapters.memory_users import MemoryUserStore
from cem.adapters.sqlite_users import SqliteUserStore
from kernel import accounts as accounts_module
from kernel.accounts import (
    LOCK_WINDOW,
    MAX_FAILURES,
    SESSION_LIFETIME,
    AccountError,
    AccountLocked,
    Accounts,
)
from kernel.clock import FixedClock
from kernel.ports import UserStore

PASSWORD = "correct horse battery"


class UserStoreContract:
    def make_store(self, tmp_path: Path) -> UserStore:
        raise NotImplementedError

    def stored_text(self, store: UserStore) -> str:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[UserStore]:
        store = self.make_store(tmp_path)
        yield store
        close = getattr(store, "close", None)
        if close:
            close()

    @pytest.fixture
    def clock(self) -> FixedClock:
        return FixedClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))

    @pytest.fixture
    def accounts(self, store: UserStore, clock: FixedClock) -> Accounts:
        return Accounts(store, clock)

    @pytest.fixture
    def email(self) -> str:
        return f"ana-{uuid.uuid4().hex[:8]}@example.com"

    def test_sign_in_opens_a_session_with_the_users_tenant_and_role(
        self, accounts: Accounts, email: str
    ) -> None:
        accounts.create("acme", "manager", email, PASSWORD)
        signed = accounts.sign_in(email.upper(), PASSWORD)
        assert signed is not None
        session = accounts.session(signed.session_secret)
        assert session is not None
        principal = session.principal()
        assert (principal.tenant_id, principal.role) == ("acme", "manager")
        assert session.csrf_matches(signed.csrf_token)
        assert not session.csrf_matches("forged") and not session.csrf_matches(None)

    def test_wrong_password_and_unknown_email_open_nothing(
        self, accounts: Accounts, email: str
    ) -> None:
        accounts.create("acme", "agent", email, PASSWORD)
        assert accounts.sign_in(email, "wrong password!") is None
        assert accounts.sign_in(f"nobody-{email}", PASSWORD) is None

    def test_each_sign_in_is_a_fresh_session_and_sign_out_ends_only_it(
        self, accounts: Accounts, email: str
    ) -> None:
        accounts.create("acme", "agent", email, PASSWORD)
        first, second = accounts.sign_in(email, PASSWORD), accounts.sign_in(email, PASSWORD)
        assert first is not None and second is not None
        assert first.session_secret != second.session_secret
        assert first.csrf_token != second.csrf_token
        accounts.sign_out(first.session_secret)
        assert accounts.session(first.session_secret) is None
        assert accounts.session(second.session_secret) is not None

    def test_sessions_expire(self, accounts: Accounts, clock: FixedClock, email: str) -> None:
        accounts.create("acme", "agent", email, PASSWORD)
        signed = accounts.sign_in(email, PASSWORD)
        assert signed is not None
        clock.at += SESSION_LIFETIME
        assert accounts.session(signed.session_secret) is None

    def test_repeated_failures_lock_the_account_until_the_window_passes(
        self, accounts: Accounts, clock: FixedClock, email: str
    ) -> None:
        accounts.create("acme", "agent", email, PASSWORD)
        for _ in range(MAX_FAILURES):
            assert accounts.sign_in(email, "not the password") is None
            clock.at += timedelta(seconds=1)
        with pytest.raises(AccountLocked):
            accounts.sign_in(email, PASSWORD)  # even the right password
        clock.at += LOCK_WINDOW
        assert accounts.sign_in(email, PASSWORD) is not None

    def test_an_unlock_lets_a_locked_account_sign_in_at_once(
        self, accounts: Accounts, clock: FixedClock, email: str
    ) -> None:
        accounts.create("acme", "agent", email, PASSWORD)
        for _ in range(MAX_FAILURES):
            accounts.sign_in(email, "not the password")
            clock.at += timedelta(seconds=1)
        with pytest.raises(AccountLocked):
            accounts.sign_in(email, PASSWORD)
        assert accounts.unlock(email.upper()) is True
        clock.at += timedelta(seconds=1)
        assert accounts.sign_in(email, PASSWORD) is not None

    def test_after_an_unlock_failures_count_afresh(
        self, accounts: Accounts, clock: FixedClock, email: str
    ) -> None:
        accounts.create("acme", "agent", email, PASSWORD)
        for _ in range(MAX_FAILURES - 1):
            accounts.sign_in(email, "not the password")
        clock.at += timedelta(seconds=1)
        assert accounts.unlock(email) is False  # not locked yet, but the count restarts
        clock.at += timedelta(seconds=1)
        for _ in range(MAX_FAILURES - 1):
            assert accounts.sign_in(email, "not the password") is None
        assert accounts.sign_in(email, PASSWORD) is not None  # 4 + 4 failures, yet not locked

    def test_unlocking_an_unknown_account_is_refused(self, accounts: Accounts, email: str) -> None:
        with pytest.raises(AccountError, match="no account"):
            accounts.unlock(email)

    def test_a_success_resets_the_failure_count(
        self, accounts: Accounts, clock: FixedClock, email: str
    ) -> None:
        accounts.create("acme", "agent", email, PASSWORD)
        for _ in range(MAX_FAILURES - 1):
            accounts.sign_in(email, "not the password")
        clock.at += timedelta(seconds=1)
        assert accounts.sign_in(email, PASSWORD) is not None
        clock.at += timedelta(seconds=1)
        accounts.sign_in(email, "not the password")
        assert accounts.sign_in(email, PASSWORD) is not None

    def test_emails_are_unique_and_bad_accounts_refused(
        self, accounts: Accounts, email: str
    ) -> None:
        accounts.create("acme", "agent", email, PASSWORD)
        with pytest.raises(ValueError):
            accounts.create("other", "agent", email.upper(), PASSWORD)
        for tenant, role, address, password in [
            ("acme", "ingest", f"x{email}", PASSWORD),
            ("acme", "agent", "not-an-email", PASSWORD),
            ("acme", "agent", f"y{email}", "short"),
            ("", "agent", f"z{email}", PASSWORD),
        ]:
            with pytest.raises(AccountError):
                accounts.create(tenant, role, address, password)

    def test_users_are_listed_per_tenant_oldest_first(
        self, accounts: Accounts, store: UserStore, clock: FixedClock
    ) -> None:
        tenant = f"t-{uuid.uuid4().hex[:8]}"
        emails = [f"{n}-{tenant}@example.com" for n in ("a", "b", "c")]
        for email in emails:
            accounts.create(tenant, "agent", email, PASSWORD)
            clock.at += timedelta(seconds=1)
        assert [u.email for u in store.users(tenant)] == emails
        assert all(u.tenant_id == tenant for u in store.users(tenant))

    def test_no_password_or_session_secret_is_stored(
        self, accounts: Accounts, store: UserStore, email: str
    ) -> None:
        accounts.create("acme", "agent", email, PASSWORD)
        signed = accounts.sign_in(email, PASSWORD)
        assert signed is not None
        stored = self.stored_text(store)
        assert email in stored  # the dump does see the table
        assert PASSWORD not in stored and signed.session_secret not in stored
        assert "$argon2id$" in stored


class TestMemoryUserStore(UserStoreContract):
    def make_store(self, tmp_path: Path) -> UserStore:
        return MemoryUserStore()

    def stored_text(self, store: UserStore) -> str:
        assert isinstance(store, MemoryUserStore)
        return repr(vars(store))


class TestSqliteUserStore(UserStoreContract):
    def make_store(self, tmp_path: Path) -> UserStore:
        return SqliteUserStore(tmp_path / "users.sqlite")

    def stored_text(self, store: UserStore) -> str:
        assert isinstance(store, SqliteUserStore)
        store.close()
        return store.path.read_bytes().decode("latin-1") + _wal(store.path)


def _wal(path: Path) -> str:
    wal = path.with_name(path.name + "-wal")
    return wal.read_bytes().decode("latin-1") if wal.exists() else ""


def test_the_unknown_email_hash_is_made_with_the_accounts_not_at_a_first_sign_in() -> None:
    # Made at the first sign-in by an unknown email, it would make that one cost a hash more than
    # a wrong password does, and say the email is unknown.
    accounts_module._dummy_hash.cache_clear()
    Accounts(MemoryUserStore(), FixedClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC)))
    assert accounts_module._dummy_hash.cache_info().currsize == 1
