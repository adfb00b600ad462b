"""Read models computed from a customer's own events: its identities and its identity history."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.identity.changes import SYSTEM_ACTOR
from services.identity.domain import Customer
from services.identity.models import (
    AuditEntry,
    CandidateView,
    CustomerIdentities,
    IdentityStatus,
    IdentityView,
)
from services.identity.reasons import reason_code, reason_text
from services.identity.rules import Identifier
from services.identity.state import IdentityState

_ENVELOPE = {"originator_id", "originator_version", "timestamp", "originator_topic"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _events(state: IdentityState, customer_id: str) -> list[Any]:
    return list(state.repository.event_store.get(state.customer(customer_id).id))


def identities(state: IdentityState, customer_id: str) -> CustomerIdentities:
    """Every identifier the customer holds, its own or through the customers merged into it."""
    canonical = state.canonical(customer_id)
    members = state.members(canonical)
    views = [view for member in members for view in _member_identities(state, member)]
    return CustomerIdentities(
        requested_id=state.customer(customer_id).customer_id,
        customer_id=canonical,
        members=tuple(members),
        identities=tuple(sorted(views, key=lambda v: (v.linked_at, v.kind, v.value))),
    )


def _member_identities(state: IdentityState, member: str) -> list[IdentityView]:
    linked: dict[Identifier, Any] = {}
    for event in _events(state, member):
        if isinstance(event, Customer.IdentifierLinked):
            linked[Identifier(event.kind, event.value)] = event
        elif isinstance(event, Customer.IdentifierUnlinked):
            linked.pop(Identifier(event.kind, event.value), None)
    return [_view(state, member, identifier, event) for identifier, event in linked.items()]


def _view(state: IdentityState, member: str, identifier: Identifier, event: Any) -> IdentityView:
    index = state.index(identifier)
    status: IdentityStatus = "active"
    if index is not None and index.suppressed:
        status = "erased"
    elif index is not None and index.saturated:
        status = "saturated"
    return IdentityView(
        kind=identifier.kind,
        value=identifier.value,
        held_by=member,
        source=event.source,
        rule=event.rule,
        evidence_event_id=event.evidence_event_id,
        actor=event.actor,
        linked_at=event.timestamp,
        holders=len(index.holders) if index else 1,
        status=status,
        seen_at=_readable("seen_at", getattr(event, "seen_at", 0)),
    )


def history(state: IdentityState, customer_id: str) -> list[AuditEntry]:
    """Every identity event of the customer and of the customers merged into it, oldest first."""
    canonical = state.canonical(customer_id)
    members = state.members(canonical)
    erased = state.customer(canonical).erasure is not None
    entries = [
        _entry(member, event, erased) for member in members for event in _events(state, member)
    ]
    return sorted(entries, key=lambda e: (e.at, e.customer_id, e.version))


def _entry(member: str, event: Any, erased: bool = False) -> AuditEntry:
    details = {k: _readable(k, v) for k, v in vars(event).items() if k not in _ENVELOPE}
    if erased:
        personal = _PERSONAL_DETAILS | (
            {"name"} if isinstance(event, Customer.NameRecorded) else set()
        )
        details |= {k: REDACTED for k in personal & details.keys() if details[k]}
    coded = reason_code(details["reason"]) if isinstance(details.get("reason"), str) else None
    if coded is not None:  # a reason identity wrote itself: its code, for a page's language
        details |= {"reason_code": coded[0], "reason_params": coded[1]}
    if erased and not isinstance(event, Customer.Erased):  # the erasure's own reason stays
        details |= _erased_reason(details.get("reason"), coded)
    return AuditEntry(
        at=event.timestamp,
        customer_id=member,
        version=event.originator_version,
        action=_snake(type(event).__name__),
        details=details,
    )


def without_erased(found: list[CandidateView], erased: set[str]) -> list[CandidateView]:
    """Merge candidates as listed, those with an erased customer without the identifiers their
    reason and list name (`share phone=…`; a review found them listed after the erasure), nor
    the reason a person typed for the decision."""
    shown = []
    for candidate in found:
        if not {candidate.first_id, candidate.second_id} & erased:
            shown.append(candidate)
            continue
        said = _erased_reason(candidate.reason, reason_code(candidate.reason))
        shown.append(
            replace(
                candidate,
                reason=said.get("reason", candidate.reason),
                identifiers=tuple(
                    f"{i.split('=', 1)[0]}={REDACTED}" for i in candidate.identifiers
                ),
                decision_reason=_decision(candidate),
            )
        )
    return shown


def _decision(candidate: CandidateView) -> str | None:
    """Why it was decided: identity's own words stay (`a customer of the pair was erased`), a
    person's, which may name anyone, are hidden."""
    if not candidate.decision_reason or candidate.decided_by == SYSTEM_ACTOR:
        return candidate.decision_reason
    return REDACTED


def _erased_reason(reason: Any, coded: tuple[str, dict[str, str]] | None) -> dict[str, Any]:
    """An erased customer's reason without the identifiers identity wrote into it (`both hold
    email=…`, `used anonymous_id=… before`; a review found them readable after the erasure),
    its kind kept; a reason a person typed, which may name anyone, hidden whole."""
    if not isinstance(reason, str) or not reason:
        return {}
    if coded is None:
        return {"reason": REDACTED}
    code, params = coded
    hidden = {
        name: value.split("=", 1)[0] + "=" + REDACTED if name in _IDENTIFIER_PARAMS else value
        for name, value in params.items()
    }
    return {"reason": reason_text(code, **hidden), "reason_params": hidden}


def _readable(name: str, value: Any) -> Any:
    """Times in responses are RFC 3339 strings like everywhere else in the API; the events keep
    epoch microseconds (`seen_at`), 0 meaning unknown (null here)."""
    if name.endswith("_at") and isinstance(value, int) and not isinstance(value, bool):
        return _EPOCH + timedelta(microseconds=value) if value else None
    return value


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# The `action` of every entry a customer's history can hold (its `Customer` events), for readers
# that name them: the console's identity panel names each in the reader's language.
ACTIONS = tuple(
    _snake(event.__name__)
    for event in (
        Customer.Registered,
        Customer.IdentifierLinked,
        Customer.IdentifierUnlinked,
        Customer.NameRecorded,
        Customer.ErasedIdentifierPresented,
        Customer.SkippedIdentifierCarried,
        Customer.CustomersMerged,
        Customer.MergedIntoSurvivor,
        Customer.CustomersSplit,
        Customer.RestoredBySplit,
        Customer.Erased,
        Customer.NamesForgotten,
        Customer.ErasureCompleted,
        Customer.ErasedRowsDeleted,
    )
)
NAME_RECORDED = _snake(Customer.NameRecorded.__name__)
# What an erased customer's history no longer shows: the identifiers' values, what it was first
# seen with and the names its touchpoints carried (the events keep them, sealed at rest with
# CEM_SEAL_PERSONAL_DATA; docs/erasure.md). A registration's `name` is the opaque id: shown.
REDACTED = "(erased)"
_PERSONAL_DETAILS = frozenset({"value", "seed"})
# The parameters of identity's own reasons that are identifiers (`kind=value`).
_IDENTIFIER_PARAMS = frozenset({"identifier", "hub"})
