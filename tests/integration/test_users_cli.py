"""`cem users unlock`: an administrator lets a locked-out person sign in again, on either store."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from cem.adapters.postgres_users import PostgresUserStore
from cem.adapters.sqlite_users import SqliteUserStore
from kernel.accounts import MAX_FAILURES, AccountLocked, Accounts
from kernel.clock import SystemClock
from kernel.ports import UserStore
from tests.integration.test_cli_mistakes import assert_one_line_mistake, cem

PASSWORD = "correct horse battery"


def _lock_out(store: UserStore, email: str) -> Accounts:
    accounts = Accounts(store, SystemClock())
    for _ in range(MAX_FAILURES):
        assert accounts.sign_in(email, "not the password") is None
    with pytest.raises(AccountLocked):
        accounts.sign_in(email, PASSWORD)
    return accounts


def _create(email: str, cwd: Path, env: dict[str, str], *flags: str) -> None:
    done = cem(
        "users", "create", "--tenant", "acme", "--role", "agent", "--email", email,
        "--password", PASSWORD, *flags, cwd=cwd, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def _unlock_and_sign_in(store: UserStore, email: str, cwd: Path, env: dict[str, str]) -> str:
    """Lock the account out, unlock it with the command; its stderr once the person is back in."""
    accounts = _lock_out(store, email)
    done = cem("users", "unlock", email.upper(), cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    assert f"user {email} unlocked" in done.stderr
    assert accounts.sign_in(email, PASSWORD) is not None
    return done.stderr


@pytest.fixture
def email() -> str:
    return f"ana-{uuid.uuid4().hex[:8]}@example.com"


def test_unlock_in_the_data_directory_it_names(tmp_path: Path, email: str) -> None:
    env = {"CEM_DATA_DIR": str(tmp_path / "d")}
    _create(email, tmp_path, env)
    store = SqliteUserStore(tmp_path / "d" / "users.sqlite")
    try:
        said = _unlock_and_sign_in(store, email, tmp_path, env)
    finally:
        store.close()
    assert f"data directory {tmp_path / 'd'} (from CEM_DATA_DIR)" in said


def test_unlocking_an_unknown_or_unlocked_account(tmp_path: Path, email: str) -> None:
    (tmp_path / "d").mkdir()  # a data directory without that account (none: test_cli_mistakes)
    unknown = cem("users", "unlock", email, "--data-dir", "d", cwd=tmp_path)
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines()[1:] == [
        f"cem users: no account with email {email!r}"
    ]
    assert_one_line_mistake(cem("users", "unlock", cwd=tmp_path), "email")
    _create(email, tmp_path, {}, "--data-dir", "d")
    calm = cem("users", "unlock", email, "--data-dir", "d", cwd=tmp_path)
    assert calm.returncode == 0 and f"user {email} was not locked" in calm.stderr


@pytest.mark.postgres
def test_unlock_in_postgresql_when_distributed(
    postgres_dsn: str, tmp_path: Path, email: str
) -> None:
    env = {"CEM_MODE": "distributed", "CEM_POSTGRES_DSN": postgres_dsn}
    _create(email, tmp_path, env)
    store = PostgresUserStore(postgres_dsn)
    try:
        said = _unlock_and_sign_in(store, email, tmp_path, env)
    finally:
        store.close()
    assert "accounts are stored in PostgreSQL" in said
    assert not (tmp_path / ".cem").exists()
