"""What the identity resolver returns: plain frozen values, ready for projections and the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from services.identity.normalise import Rejected
from services.identity.policy import Skip
from services.identity.reasons import REFUSALS
from services.identity.rules import Identifier


@dataclass(frozen=True)
class ResolvedCustomer:
    """The outcome of resolving one touchpoint event's identifiers."""

    # File the touchpoint under `home_id`: it never changes for this event, whatever merges or
    # splits follow. `customer_id` is who an agent sees now (home_id, or the survivor it joined).
    customer_id: str
    home_id: str
    created: bool = False
    replayed: bool = False  # this event was resolved before; nothing was changed
    linked: tuple[Identifier, ...] = ()
    merged: tuple[str, ...] = ()  # customers merged into customer_id because of this event
    proposed: tuple[str, ...] = ()  # merge candidate ids opened for review
    skipped: tuple[Skip, ...] = ()
    rejected: tuple[Rejected, ...] = ()
    ambiguous_between: tuple[str, ...] = ()  # only shared identifiers: who it might have been


@dataclass(frozen=True)
class IgnoredIdentifier:
    """An identifier of a touchpoint that linked nobody: where it was and why."""

    path: str  # customer.email, customer.external_ids.loyalty
    reason: str  # invalid, placeholder, blocked


@dataclass(frozen=True)
class FiledTouchpoint:
    """Which customer a touchpoint was filed under, and who that is now (following merges)."""

    event_id: str
    home_id: str
    customer_id: str
    ignored: tuple[IgnoredIdentifier, ...] = ()


@dataclass(frozen=True)
class LocatedCustomer:
    """Whose history an id shows: the customer it stands for now and every member of it."""

    requested_id: str
    customer_id: str  # the canonical customer (the survivor, when the id was merged into one)
    members: tuple[str, ...]  # customer ids whose touchpoints are this customer's history
    identity_version: int  # the identity map version the answer was read at


Refusal = tuple[str, dict[str, str]]  # why a merge is not allowed: a REFUSALS code, its params


@dataclass(frozen=True)
class MergePlan:
    survivor_id: str
    absorbed_id: str
    allowed: bool
    refusals: tuple[Refusal, ...]  # why not, when not allowed: codes of reasons.REFUSALS
    members: tuple[str, ...]  # customers the survivor stands for after the merge
    identifiers: tuple[Identifier, ...]  # identifiers of the survivor after the merge
    conflicts: tuple[str, ...] = ()  # unique kinds with different values on each side
    merge_id: str | None = None  # set once carried out

    @property
    def reasons(self) -> tuple[str, ...]:
        """Each refusal in English, in order (the API's `reasons`, a refused merge's message)."""
        return tuple(REFUSALS[code].format(**params) for code, params in self.refusals)


@dataclass(frozen=True)
class SplitOutcome:
    merge_id: str
    survivor_id: str
    absorbed_id: str
    survivor_members: tuple[str, ...]
    absorbed_members: tuple[str, ...]


# An identifier's status on a customer: active, saturated (shared by too many: links nobody) or
# erased. The console names each in the reader's language.
IdentityStatus = Literal["active", "saturated", "erased"]


@dataclass(frozen=True)
class IdentityView:
    """One identifier as an agent sees it on a customer."""

    kind: str
    value: str
    held_by: (
        str  # the member customer that linked it (the requested customer or one merged into it)
    )
    source: str
    rule: str
    evidence_event_id: str | None
    actor: str
    linked_at: datetime
    holders: int  # how many customers share it
    status: IdentityStatus
    # When the touchpoint that linked it happened (`linked_at` is when identity filed it: for a
    # history imported later, the import's time); None when that touchpoint's time is unknown.
    seen_at: datetime | None = None


@dataclass(frozen=True)
class CustomerIdentities:
    requested_id: str
    customer_id: str  # the survivor the requested id redirects to, or itself
    members: tuple[str, ...]
    identities: tuple[IdentityView, ...]


@dataclass(frozen=True)
class AuditEntry:
    """One identity event of a customer: link, unlink, merge, split ... with who and why."""

    at: datetime
    customer_id: str
    version: int
    action: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CandidateView:
    candidate_id: str
    first_id: str
    second_id: str
    proposer_id: str
    reason: str
    identifiers: tuple[str, ...]
    evidence_event_id: str | None
    status: str  # open, accepted or rejected
    proposed_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision_reason: str | None = None
    merge_id: str | None = None
