"""Event-sourced customer identity: resolution rules, reversible merges and splits, identity map.

Wiring (composition root and consumers):
- build: `identity = build_identity(IdentitySettings())` (SQLite in the data dir when embedded,
  PostgreSQL when distributed); the HTTP app gets `app.state.identity = identity` and includes
  `services.identity.router.router` before the customers router.
- projections: file every touchpoint under `identity.resolve(tenant, event.customer, event.event_id,
  event.source_id).home_id` (or `resolve_batch` per tenant and poll batch) instead of
  `customer_key(...)`. The filing is recorded, so a replay or a second consumer gets the same id.
- reads: a customer's timeline, profile and satisfaction are the rows of
  `identity.members(tenant, customer_id, as_of=version)`; `identity.identity_version(tenant)` is the
  version to pin, `identity.canonical_id(...)` where an absorbed id was asked for.
"""

from services.identity.errors import (
    CandidateAlreadyDecided,
    CandidateNotFound,
    CustomerNotFound,
    IdentifierNotLinked,
    IdentityBusy,
    IdentityError,
    MergeRefused,
    SplitRefused,
)
from services.identity.models import (
    AuditEntry,
    CandidateView,
    CustomerIdentities,
    IdentityView,
    MergePlan,
    ResolvedCustomer,
    SplitOutcome,
)
from services.identity.resolver import IdentityResolver
from services.identity.rules import Identifier, IdentityRules, KindRule, TenantRules
from services.identity.store import IdentitySettings, build_identity, postgres_env, sqlite_env

__all__ = [
    "AuditEntry",
    "CandidateAlreadyDecided",
    "CandidateNotFound",
    "CandidateView",
    "CustomerIdentities",
    "CustomerNotFound",
    "IdentifierNotLinked",
    "Identifier",
    "IdentityBusy",
    "IdentityError",
    "IdentityResolver",
    "IdentityRules",
    "IdentitySettings",
    "IdentityView",
    "KindRule",
    "MergePlan",
    "MergeRefused",
    "ResolvedCustomer",
    "SplitOutcome",
    "SplitRefused",
    "TenantRules",
    "build_identity",
    "postgres_env",
    "sqlite_env",
]
