"""Event-sourced customer identity: resolution rules, reversible merges and splits, identity map.

How it is wired:
- composition roots: `cem.identity.build_identity(IdentitySettings())` (the store adapter of the
  mode: SQLite in the data dir when embedded, PostgreSQL when distributed); the HTTP app gets `app.state.identity` and includes
  `services.identity.router.router` before the customers router.
- stream runners: `filing.IdentityFiler` is the `kernel.processing.Filer` stage between decoding and
  projecting: every touchpoint is filed under `resolve_batch(...)[i].home_id`, recorded as a
  `Filing`, so both consumer groups and every replay file it under the same customer.
- reads: `locate(tenant, any id or identifier key)` gives the canonical customer and its members
  as of the current identity version; a customer's timeline, profile and satisfaction are the
  warehouse rows filed under those members.
- ids: a customer's id is chosen at registration (naming.py): opaque (`c_…`, a keyed hash), or
  the explicit customer_id its system sent; never changed.
"""

from services.identity.errors import (
    AmbiguousCustomer,
    CandidateAlreadyDecided,
    CandidateErased,
    CandidateNotFound,
    CustomerNotFound,
    ErasedGroupSplit,
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
    LocatedCustomer,
    MergePlan,
    ResolvedCustomer,
    SplitOutcome,
)
from services.identity.ports import IdentityStore
from services.identity.resolver import IdentityResolver
from services.identity.rules import Identifier, IdentityRules, KindRule, TenantRules
from services.identity.settings import IdentitySettings, load_rules

__all__ = [
    "AmbiguousCustomer",
    "AuditEntry",
    "CandidateAlreadyDecided",
    "CandidateErased",
    "CandidateNotFound",
    "CandidateView",
    "CustomerIdentities",
    "CustomerNotFound",
    "ErasedGroupSplit",
    "IdentifierNotLinked",
    "Identifier",
    "IdentityBusy",
    "IdentityError",
    "IdentityResolver",
    "IdentityRules",
    "IdentitySettings",
    "IdentityView",
    "KindRule",
    "LocatedCustomer",
    "MergePlan",
    "MergeRefused",
    "ResolvedCustomer",
    "SplitOutcome",
    "SplitRefused",
    "TenantRules",
    "IdentityStore",
    "load_rules",
]
