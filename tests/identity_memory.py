"""An identity resolver of its own for a unit test: eventsourcing on an in-memory SQLite
database nobody else opens (a fresh name each call), with the given rules."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from schemas.envelope import CustomerRef
from services.identity.resolver import IdentityResolver
from services.identity.rules import IdentityRules


def memory_resolver(rules: IdentityRules | None = None) -> IdentityResolver:
    uri = f"file:identity-{uuid.uuid4().hex}?mode=memory&cache=shared"
    return IdentityResolver(SqliteIdentityStore(uri), rules or IdentityRules())


def resolving(identity: IdentityResolver, channel: str, at: datetime) -> Callable[..., str]:
    """Files a touchpoint of `channel` for tenant `acme`, happened `at`, carrying the given
    identifiers (and the person's `name`, if given); answers its home's id."""

    def resolve(name: str = "", **ref: str) -> str:
        event_id = str(uuid.uuid4())
        found = identity.resolve(
            "acme", CustomerRef.model_validate(ref), event_id, channel, at=at, name=name
        )
        return found.home_id

    return resolve


def record_erasure_before_groups(
    identity: IdentityResolver, tenant_id: str, customer_id: str, members: int = 1
) -> None:
    """The customer's erasure as recorded before 2026-12-03: naming no group (no `members`), no
    key ids, its event id `older`."""
    counts = {"members": members, "identifiers": 0, "shared": 0}
    identity._run(
        tenant_id,
        lambda state: state.customer(customer_id).erase(
            reason="r", actor="a", erasure_event_id="older", key_ids=[], counts=counts
        ),
    )
