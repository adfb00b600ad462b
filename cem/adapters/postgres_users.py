"""People's accounts and sessions in PostgreSQL (distributed mode): every query-API replica
signs people in against these tables."""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from typing import Any

from cem.adapters.postgres import PostgresPool
from kernel.ports import SessionRecord, UserRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
  user_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, role TEXT NOT NULL,
  email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL,
  seq BIGSERIAL NOT NULL);
CREATE TABLE IF NOT EXISTS sign_in_audit (
  seq BIGSERIAL PRIMARY KEY, email TEXT NOT NULL, outcome TEXT NOT NULL, at TIMESTAMPTZ NOT NULL);
CREATE INDEX IF NOT EXISTS sign_in_audit_by_email ON sign_in_audit (email, at);
CREATE TABLE IF NOT EXISTS sessions (
  session_digest TEXT PRIMARY KEY, user_id TEXT NOT NULL, csrf_token TEXT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL);
"""
USER_COLUMNS = "user_id, tenant_id, role, email, password_hash, created_at"
# ON CONFLICT rather than catching the driver's error: psycopg is imported only in postgres.py.
INSERT_USER = f"""INSERT INTO users ({USER_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (email) DO NOTHING RETURNING user_id"""
SELECT_USERS = f"SELECT {USER_COLUMNS} FROM users"
INSERT_AUDIT = "INSERT INTO sign_in_audit (email, outcome, at) VALUES (%s, %s, %s)"
# Failures count after the window's start and after the last success or unlock (either resets it).
COUNT_FAILURES = """SELECT count(*) FROM sign_in_audit WHERE email = %(email)s AND outcome = 'failed'
  AND at > greatest(%(since)s, (SELECT max(at) FROM sign_in_audit
                                WHERE email = %(email)s AND outcome IN ('signed_in', 'unlocked')))"""
INSERT_SESSION = "INSERT INTO sessions VALUES (%s, %s, %s, %s)"
SELECT_SESSION = """SELECT session_digest, user_id, csrf_token, expires_at FROM sessions
WHERE session_digest = %s"""
DELETE_SESSION = "DELETE FROM sessions WHERE session_digest = %s"


def _user(row: tuple[Any, ...]) -> UserRecord:
    user_id, tenant_id, role, email, password_hash, created_at = row
    return UserRecord(user_id, tenant_id, role, email, password_hash, created_at.astimezone(UTC))


class PostgresUserStore:
    """A UserStore in PostgreSQL; the tables are created on start if missing."""

    def __init__(self, dsn: str, *, pool_size: int = 4, timeout_s: float = 5.0) -> None:
        self.db = PostgresPool.with_schema(
            dsn, "cem.users", SCHEMA, max_size=pool_size, timeout_s=timeout_s, name="cem-users"
        )

    def add_user(self, user: UserRecord) -> None:
        values = (user.user_id, user.tenant_id, user.role, user.email, user.password_hash)
        with self.db.transaction() as cursor:
            added = cursor.execute(INSERT_USER, (*values, user.created_at)).fetchone()
        if added is None:
            raise ValueError(f"an account with email {user.email!r} exists")

    def _one_user(self, column: str, value: str) -> UserRecord | None:
        with self.db.transaction() as cursor:
            row = cursor.execute(f"{SELECT_USERS} WHERE {column} = %s", (value,)).fetchone()
        return None if row is None else _user(row)

    def user_by_email(self, email: str) -> UserRecord | None:
        return self._one_user("email", email)

    def user_by_id(self, user_id: str) -> UserRecord | None:
        return self._one_user("user_id", user_id)

    def users(self, tenant_id: str | None = None) -> builtins.list[UserRecord]:
        with self.db.transaction() as cursor:
            rows = cursor.execute(
                f"{SELECT_USERS} WHERE %(t)s::text IS NULL OR tenant_id = %(t)s "
                "ORDER BY created_at, seq",
                {"t": tenant_id},
            ).fetchall()
        return [_user(row) for row in rows]

    def record_sign_in(self, email: str, outcome: str, at: datetime) -> None:
        with self.db.transaction() as cursor:
            cursor.execute(INSERT_AUDIT, (email, outcome, at))

    def failures_since(self, email: str, since: datetime) -> int:
        with self.db.transaction() as cursor:
            row = cursor.execute(COUNT_FAILURES, {"email": email, "since": since}).fetchone()
        return int(row[0]) if row else 0

    def add_session(self, session: SessionRecord) -> None:
        values = (session.session_digest, session.user_id, session.csrf_token)
        with self.db.transaction() as cursor:
            cursor.execute(INSERT_SESSION, (*values, session.expires_at))

    def session(self, session_digest: str) -> SessionRecord | None:
        with self.db.transaction() as cursor:
            row = cursor.execute(SELECT_SESSION, (session_digest,)).fetchone()
        if row is None:
            return None
        return SessionRecord(row[0], row[1], row[2], row[3].astimezone(UTC))

    def delete_session(self, session_digest: str) -> None:
        with self.db.transaction() as cursor:
            cursor.execute(DELETE_SESSION, (session_digest,))

    def close(self) -> None:
        self.db.close()
