"""An identity resolver of its own for a unit test: eventsourcing on an in-memory SQLite
database nobody else opens (a fresh name each call), with the given rules."""

from __future__ import annotations

import uuid

from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from services.identity.resolver import IdentityResolver
from services.identity.rules import IdentityRules


def memory_resolver(rules: IdentityRules | None = None) -> IdentityResolver:
    uri = f"file:identity-{uuid.uuid4().hex}?mode=memory&cache=shared"
    return IdentityResolver(SqliteIdentityStore(uri), rules or IdentityRules())
