"""An in-memory UserStore: the twin the unit tests and the contract suite's reference run on."""

from __future__ import annotations

import builtins
import threading
from datetime import datetime

from kernel.ports import SessionRecord, UserRecord

RESETS = ("signed_in", "unlocked")  # outcomes after which failures count afresh


class MemoryUserStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, UserRecord] = {}
        self._audit: list[tuple[str, str, datetime]] = []
        self._sessions: dict[str, SessionRecord] = {}

    def add_user(self, user: UserRecord) -> None:
        with self._lock:
            if any(u.email == user.email for u in self._users.values()):
                raise ValueError(f"an account with email {user.email!r} exists")
            self._users[user.user_id] = user

    def user_by_email(self, email: str) -> UserRecord | None:
        return next((u for u in self._users.values() if u.email == email), None)

    def user_by_id(self, user_id: str) -> UserRecord | None:
        return self._users.get(user_id)

    def users(self, tenant_id: str | None = None) -> builtins.list[UserRecord]:
        found = [u for u in self._users.values() if tenant_id in (None, u.tenant_id)]
        return sorted(found, key=lambda u: u.created_at)

    def record_sign_in(self, email: str, outcome: str, at: datetime) -> None:
        with self._lock:
            self._audit.append((email, outcome, at))

    def failures_since(self, email: str, since: datetime) -> int:
        mine = [(outcome, at) for e, outcome, at in self._audit if e == email]
        successes = [at for outcome, at in mine if outcome in RESETS]
        start = max([since, *successes])
        return sum(1 for outcome, at in mine if outcome == "failed" and at > start)

    def add_session(self, session: SessionRecord) -> None:
        with self._lock:
            self._sessions[session.session_digest] = session

    def session(self, session_digest: str) -> SessionRecord | None:
        return self._sessions.get(session_digest)

    def delete_session(self, session_digest: str) -> None:
        with self._lock:
            self._sessions.pop(session_digest, None)
