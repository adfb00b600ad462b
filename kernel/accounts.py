"""People's accounts: passwords, sign-in with lock-out, and server-side sessions.

The rules shared by every `UserStore` (SQLite when embedded, PostgreSQL when distributed): passwords
are hashed with Argon2id (memory-hard, `argon2-cffi`); a session's id is a random secret the cookie
carries and the store keeps only as a SHA-256 digest, so a copy of the store opens no session; each
session has its own CSRF token (synchronizer pattern); five failed sign-ins within fifteen minutes
lock the account for the rest of that window (or until an administrator unlocks it), and every
attempt and unlock is audited.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kernel.ports import Clock, Principal, SessionRecord, UserRecord, UserStore
from kernel.tenants import check_tenant_id

logger = logging.getLogger(__name__)

USER_ROLES = ("agent", "manager", "admin")  # people; `ingest` is for machines only
MAX_FAILURES = 5
LOCK_WINDOW = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD = 10
EMAIL = re.compile(r"^[^@\s]{1,200}@[^@\s]{1,200}$")
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified when the email is unknown, so an unknown email costs as long as a wrong password.
    Made when `Accounts` is, not at import: a hash costs a fifth of a second, which every `cem`
    command paid."""
    return _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """A request about accounts that cannot be honoured; the message says why."""


class AccountLocked(AccountError):
    """Too many failed sign-ins: the account refuses every password until the window passes."""


@dataclass(frozen=True)
class SignedIn:
    """A new session: the secret goes in the cookie, the token in forms and `X-CSRF-Token`."""

    user: UserRecord
    session_secret: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class ActiveSession:
    user: UserRecord
    csrf_token: str
    expires_at: datetime

    def principal(self) -> Principal:
        user = self.user
        return Principal(f"user:{user.email}", user.tenant_id, user.role, user_id=user.user_id)

    def csrf_matches(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token, self.csrf_token)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normal_email(email: str) -> str:
    return email.strip().lower()


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def check_new_user(tenant_id: str, role: str, email: str, password: str) -> None:
    try:
        check_tenant_id(tenant_id)
    except ValueError as exc:
        raise AccountError(str(exc)) from None
    if role not in USER_ROLES:
        raise AccountError(f"role must be one of {', '.join(USER_ROLES)}, not {role!r}")
    if not EMAIL.match(email):
        raise AccountError(f"{email!r} is not an email address")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")


class Accounts:
    """Accounts and sessions over a `UserStore`; `clock` decides expiry and the lock-out window."""

    def __init__(self, store: UserStore, clock: Clock) -> None:
        self.store, self.clock = store, clock
        # Made now, with the accounts, not at the first sign-in by an unknown email: that one
        # would cost a hash more than a wrong password and tell the email is unknown.
        _dummy_hash()

    def create(self, tenant_id: str, role: str, email: str, password: str) -> UserRecord:
        email = normal_email(email)
        check_new_user(tenant_id, role, email, password)
        user = UserRecord(
            uuid.uuid4().hex, tenant_id, role, email, _hasher.hash(password), self.clock.now()
        )
        self.store.add_user(user)
        return user

    def sign_in(self, email: str, password: str) -> SignedIn | None:
        """A new session for the right password; None for a wrong one (or an unknown email);
        AccountLocked once the account has failed too often, even with the right password."""
        email, now = normal_email(email), self.clock.now()
        if self.store.failures_since(email, now - LOCK_WINDOW) >= MAX_FAILURES:
            self.store.record_sign_in(email, "locked", now)
            logger.warning("sign-in refused: account %s is locked", email)
            raise AccountLocked("too many failed sign-ins: try again in 15 minutes")
        user = self.store.user_by_email(email)
        if not _password_matches(user, password):
            self.store.record_sign_in(email, "failed", now)
            return None
        assert user is not None
        self.store.record_sign_in(email, "signed_in", now)
        return self._start_session(user, now)

    def unlock(self, email: str) -> bool:
        """Let the account sign in again at once: an `unlocked` entry in the audit restarts its
        failure count. True when it was locked; AccountError for an unknown email."""
        email, now = normal_email(email), self.clock.now()
        if self.store.user_by_email(email) is None:
            raise AccountError(f"no account with email {email!r}")
        was_locked = self.store.failures_since(email, now - LOCK_WINDOW) >= MAX_FAILURES
        self.store.record_sign_in(email, "unlocked", now)
        logger.info("account %s unlocked by an administrator", email)
        return was_locked

    def _start_session(self, user: UserRecord, now: datetime) -> SignedIn:
        # A fresh random id at every sign-in: a planted cookie never becomes a session (fixation).
        secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = now + SESSION_LIFETIME
        self.store.add_session(SessionRecord(digest(secret), user.user_id, csrf, expires))
        return SignedIn(user, secret, csrf, expires)

    def session(self, secret: str) -> ActiveSession | None:
        """The live session of a cookie's secret, else None (unknown, expired or user gone)."""
        found = self.store.session(digest(secret))
        if found is None or found.expires_at <= self.clock.now():
            return None
        user = self.store.user_by_id(found.user_id)
        return None if user is None else ActiveSession(user, found.csrf_token, found.expires_at)

    def sign_out(self, secret: str) -> None:
        self.store.delete_session(digest(secret))


def _password_matches(user: UserRecord | None, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash if user else _dummy_hash(), password) and bool(
            user
        )
    except (VerificationError, InvalidHashError):
        return False
