"""People's accounts and sessions in a SQLite file in the data directory (embedded mode)."""

from __future__ import annotations

import builtins
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cem.adapters.sqlite_store import PrivateDbStore
from kernel.ports import SessionRecord, UserRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
  user_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, role TEXT NOT NULL,
  email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sign_in_audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL, outcome TEXT NOT NULL,
  at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sign_in_audit_by_email ON sign_in_audit (email, at);
CREATE TABLE IF NOT EXISTS sessions (
  session_digest TEXT PRIMARY KEY, user_id TEXT NOT NULL, csrf_token TEXT NOT NULL,
  expires_at INTEGER NOT NULL);
"""
USER_COLUMNS = "user_id, tenant_id, role, email, password_hash, created_at"
INSERT_USER = f"INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
SELECT_USERS = f"SELECT {USER_COLUMNS} FROM users"
INSERT_AUDIT = "INSERT INTO sign_in_audit (email, outcome, at) VALUES (?, ?, ?)"
# Failures count after the window's start and after the last success or unlock (either resets it).
COUNT_FAILURES = """SELECT count(*) FROM sign_in_audit WHERE email = ? AND outcome = 'failed'
  AND at > max(?, coalesce((SELECT max(at) FROM sign_in_audit
                            WHERE email = ? AND outcome IN ('signed_in', 'unlocked')), 0))"""
INSERT_SESSION = "INSERT INTO sessions VALUES (?, ?, ?, ?)"
SELECT_SESSION = (
    "SELECT session_digest, user_id, csrf_token, expires_at FROM sessions WHERE session_digest = ?"
)
DELETE_SESSION = "DELETE FROM sessions WHERE session_digest = ?"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _user(row: tuple[Any, ...]) -> UserRecord:
    user_id, tenant_id, role, email, password_hash, created_at = row
    return UserRecord(user_id, tenant_id, role, email, password_hash, from_micros(created_at))


class SqliteUserStore(PrivateDbStore):
    """A UserStore in one SQLite file. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, SCHEMA)  # hashes and sessions: owner only

    def add_user(self, user: UserRecord) -> None:
        values = (user.user_id, user.tenant_id, user.role, user.email, user.password_hash)
        try:
            with self._db() as conn:
                conn.execute(INSERT_USER, (*values, to_micros(user.created_at)))
        except sqlite3.IntegrityError:
            raise ValueError(f"an account with email {user.email!r} exists") from None

    def _one_user(self, where: str, value: str) -> UserRecord | None:
        with self._db() as conn:
            row = conn.execute(f"{SELECT_USERS} WHERE {where} = ?", (value,)).fetchone()
        return None if row is None else _user(row)

    def user_by_email(self, email: str) -> UserRecord | None:
        return self._one_user("email", email)

    def user_by_id(self, user_id: str) -> UserRecord | None:
        return self._one_user("user_id", user_id)

    def users(self, tenant_id: str | None = None) -> builtins.list[UserRecord]:
        with self._db() as conn:
            rows = conn.execute(
                f"{SELECT_USERS} WHERE ? IS NULL OR tenant_id = ? ORDER BY created_at, user_id",
                (tenant_id, tenant_id),
            ).fetchall()
        return [_user(row) for row in rows]

    def record_sign_in(self, email: str, outcome: str, at: datetime) -> None:
        with self._db() as conn:
            conn.execute(INSERT_AUDIT, (email, outcome, to_micros(at)))

    def failures_since(self, email: str, since: datetime) -> int:
        with self._db() as conn:
            row = conn.execute(COUNT_FAILURES, (email, to_micros(since), email)).fetchone()
        return int(row[0])

    def add_session(self, session: SessionRecord) -> None:
        values = (session.session_digest, session.user_id, session.csrf_token)
        with self._db() as conn:
            conn.execute(INSERT_SESSION, (*values, to_micros(session.expires_at)))

    def session(self, session_digest: str) -> SessionRecord | None:
        with self._db() as conn:
            row = conn.execute(SELECT_SESSION, (session_digest,)).fetchone()
        if row is None:
            return None
        return SessionRecord(row[0], row[1], row[2], from_micros(row[3]))

    def delete_session(self, session_digest: str) -> None:
        with self._db() as conn:
            conn.execute(DELETE_SESSION, (session_digest,))
