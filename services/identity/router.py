"""HTTP API of customer identity: identities, identity history, merge (with preview), split, unlink,
and the review of merge candidates. Reads need an agent key or better; every change needs a manager
or admin key. The resolver is `app.state.identity`, set by the composition root.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kernel.access_audit import AUDITED_READ_RESPONSES, record_access
from kernel.api_errors import ApiError
from kernel.auth import AUTHENTICATED, CAN_READ_CUSTOMERS, require
from kernel.ports import Principal, WarehouseUnavailable
from kernel.request_body import BODY_RESPONSES, json_body, openapi_body
from services.identity.audit import NAME_RECORDED
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
from services.identity.models import CandidateView, MergePlan
from services.identity.reasons import reason_code
from services.identity.resolver import IdentityResolver
from services.projections.profile import Profile
from services.projections.search import written_spellings
from services.projections.sql import read_profile

CAN_CURATE_IDENTITY = frozenset({"manager", "admin"})
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
# Customer ids are names (naming.py): free text; the longest, an email key, is 326 characters.
CustomerId = Annotated[str, StringConstraints(min_length=1, max_length=400)]
CandidateId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
KIND_PATTERN = r"^(customer_id|email|phone|anonymous_id|external:[a-z0-9][a-z0-9_.\-]{0,63})$"

router = APIRouter(prefix="/v1", tags=["identity"], responses=AUTHENTICATED)
# The state-changing routes: their body, the customers or candidate they name, the rules' refusals.
_CHANGE: dict[int | str, dict[str, Any]] = {
    **BODY_RESPONSES,
    404: {"description": "no such customer, candidate, or identifier linked to the customer"},
    409: {
        "description": "refused: ambiguous customer, merge or split refused (`erased_group_split`:"
        " two customers one erasure took together; `merge_refused`: the rules refuse it, and for a"
        " call's caller, a manager kept them apart, either was erased, or the caller does not"
        " hold the line), already decided (`candidate_erased`: a candidate one of whose customers"
        " was erased since may only be rejected)"
    },
    503: {"description": "the identity store does not answer, or this deployment has none"},
}
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {503: _CHANGE[503]}
Reader = Annotated[Principal, Depends(require(CAN_READ_CUSTOMERS))]
Curator = Annotated[Principal, Depends(require(CAN_CURATE_IDENTITY))]
# Every identity change is a few short fields. Bodies are read only after the key is checked
# (the Curator dependency comes first in each route), within this limit, by the strict parser.
MAX_BODY_BYTES = 16 * 1024

# What a read of one customer's identity answers besides its 200 and 422.
_CUSTOMER_READ: dict[int | str, dict[str, Any]] = {
    **AUDITED_READ_RESPONSES,
    404: {"description": "no such customer for the caller's tenant"},
    409: {"description": "an identifier key that several customers hold: name one by its id"},
}

# Each domain error has one status and code; nothing else leaks out of the identity service.
_ERRORS: dict[type[IdentityError], tuple[int, str]] = {
    CustomerNotFound: (404, "not_found"),
    AmbiguousCustomer: (409, "ambiguous_customer"),
    CandidateNotFound: (404, "not_found"),
    IdentifierNotLinked: (404, "identifier_not_linked"),
    MergeRefused: (409, "merge_refused"),
    SplitRefused: (409, "split_refused"),
    ErasedGroupSplit: (409, "erased_group_split"),
    CandidateAlreadyDecided: (409, "candidate_already_decided"),
    CandidateErased: (409, "candidate_erased"),
    IdentityBusy: (503, "identity_busy"),
}


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    survivor_id: CustomerId
    absorbed_id: CustomerId
    reason: Reason
    preview: bool = False


class CallerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    caller_id: CustomerId = Field(description="the customer who says they are calling")


class CallerOut(BaseModel):
    customer_id: str = Field(description="the caller's customer, which now holds the call")
    merge_id: str | None = Field(
        description="the merge that filed the call there (split undoes it)"
    )


class SplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    absorbed_id: CustomerId
    reason: Reason


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["accept", "reject"]
    reason: Reason
    survivor_id: CustomerId | None = None


class UnlinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Annotated[str, StringConstraints(pattern=KIND_PATTERN)]
    value: Annotated[str, StringConstraints(min_length=1, max_length=320)]
    reason: Reason
    erase: bool = False


class IdentifierOut(BaseModel):
    kind: str
    value: str


class SideImpact(BaseModel):
    """What one side's history holds: what its views count now, or would after the merge."""

    members: list[str]
    events: int
    orders: int
    survey_responses: int
    latest_csat: int | None
    latest_nps: int | None
    latest_ces: int | None
    open_cases: int


class MergeImpact(BaseModel):
    survivor: SideImpact
    absorbed: SideImpact
    merged: SideImpact


class RefusalOut(BaseModel):
    code: str
    params: dict[str, str]


class MergeOut(BaseModel):
    preview: bool
    allowed: bool
    survivor_id: str
    absorbed_id: str
    merge_id: str | None
    reasons: list[str]
    refusals: list[RefusalOut] = Field(
        default_factory=list,
        description="each of `reasons`, in order, as a code (services/identity/reasons.py "
        "REFUSALS) and its parameters, for a page to say it in its reader's language",
    )
    conflicts: list[str]
    members: list[str]
    identifiers: list[IdentifierOut]
    impact: MergeImpact | None = None  # with preview, where the deployment has a warehouse


class CandidateOut(BaseModel):
    candidate_id: str
    first_id: str
    second_id: str
    proposer_id: str
    reason: str
    # The rules' reason (`share`, `share_hold_different`) as a code and parameters, for a page in
    # another language (services/identity/reasons.py); absent for a reason worded otherwise.
    reason_code: str | None = None
    reason_params: dict[str, str] | None = None
    identifiers: list[str]
    evidence_event_id: str | None
    status: str
    proposed_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None
    merge_id: str | None


@contextmanager
def _domain_errors() -> Iterator[None]:
    try:
        yield
    except IdentityError as exc:
        status, code = _ERRORS.get(type(exc), (400, "identity_error"))
        reasons = exc.reasons if isinstance(exc, MergeRefused) else []
        details = [{"code": code, "message": r, "path": ""} for r in reasons]
        raise ApiError(status, code, str(exc), details) from exc


def _identity(request: Request) -> IdentityResolver:
    resolver: IdentityResolver | None = getattr(request.app.state, "identity", None)
    if resolver is None:
        raise ApiError(503, "identity_unavailable", "this deployment has no identity service")
    return resolver


def _actor(principal: Principal) -> str:
    return f"key:{principal.key_id}"


class LineCustomer(BaseModel):
    customer_id: str
    name: str | None = Field(description="the name the customer's touchpoints give, if any")


class HouseholdLineOut(BaseModel):
    kind: str
    value: str
    customers: list[LineCustomer] = Field(description="the other customers holding the line")


class HouseholdLines(BaseModel):
    """A call's customer: the household lines it called from alone, and who holds each."""

    customer_id: str
    lines: list[HouseholdLineOut]


@router.get(
    "/customers/{customer_id:path}/household-lines",
    response_model=HouseholdLines,
    responses=_CUSTOMER_READ,
)
def get_household_lines(customer_id: CustomerId, request: Request, who: Reader) -> HouseholdLines:
    """A call from a household's line alone is filed under a customer of its own (anyone at
    home may have called): the line, and the customers holding it by name, to ask who is
    calling and name them (`POST …/caller`). Empty for any other customer, and for a line more
    customers hold than a household has."""
    resolver = _identity(request)
    with _domain_errors():
        customer_id_now = resolver.customer_for(who.tenant_id, customer_id)
        found = resolver.household_lines(who.tenant_id, customer_id_now)
    canonical = resolver.canonical_id(who.tenant_id, customer_id_now)
    record_access(request, who, canonical, "household_lines", customer_id)
    groups = list({g.canonical_id: g for line in found for g in line.holders}.values())
    written = _written_names(request, who.tenant_id, groups)
    return HouseholdLines(
        customer_id=canonical,
        lines=[
            HouseholdLineOut(
                kind=line.line.kind,
                value=line.line.value,
                customers=[
                    LineCustomer(customer_id=g.canonical_id, name=written.get(g.canonical_id))
                    for g in line.holders
                ],
            )
            for line in found
        ],
    )


def _written_names(request: Request, tenant_id: str, groups: list[Any]) -> dict[str, str]:
    """The name each group's profile shows (`Profile.name`: the one its touchpoints give most
    often, as written), as the console heads the customer once opened; none while the
    warehouse is unavailable or a group's touchpoints gave none."""
    warehouse = getattr(request.app.state, "warehouse", None)
    if warehouse is None:
        return {}
    names: dict[str, str] = {}
    with suppress(WarehouseUnavailable):
        for group in groups:
            members = [group.canonical_id, *sorted(group.members - {group.canonical_id})]
            profile = read_profile(warehouse, tenant_id, members)
            if profile is not None and profile.name:
                names[group.canonical_id] = profile.name
    return names


@router.get("/customers/{customer_id:path}/identities", responses=_CUSTOMER_READ)
def get_identities(customer_id: CustomerId, request: Request, who: Reader) -> dict[str, Any]:
    """Every identifier of the customer, its own and those of customers merged into it. An absorbed
    id answers for its survivor (`customer_id` differs from `requested_id`)."""
    resolver = _identity(request)
    with _domain_errors():
        found = resolver.identities(
            who.tenant_id, resolver.customer_for(who.tenant_id, customer_id)
        )
    record_access(request, who, found.customer_id, "identities", customer_id)
    return {
        "requested_id": found.requested_id,
        "customer_id": found.customer_id,
        "redirected": found.requested_id != found.customer_id,
        "members": list(found.members),
        "identity_version": resolver.identity_version(who.tenant_id),
        "identities": [asdict(view) for view in found.identities],
    }


@router.get("/customers/{customer_id:path}/identity-history", responses=_CUSTOMER_READ)
def get_identity_history(customer_id: CustomerId, request: Request, who: Reader) -> dict[str, Any]:
    """Audit of every registration, link, unlink, merge and split, with who and why."""
    resolver, requested = _identity(request), customer_id
    with _domain_errors():
        customer_id = resolver.customer_for(who.tenant_id, customer_id)
        entries = resolver.history(who.tenant_id, customer_id)
    canonical = resolver.canonical_id(who.tenant_id, customer_id)
    record_access(request, who, canonical, "identity_history", requested)
    shown = [asdict(entry) for entry in entries]
    return {"customer_id": canonical, "entries": _names_as_written(request, who.tenant_id, shown)}


def _names_as_written(
    request: Request, tenant_id: str, entries: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The names the entries recorded as the touchpoints wrote them (`María García`), not as
    identity compares them (`maria garcia`), where the warehouse's profile has the spelling: the
    member's own, else another member's. Folded as recorded without a warehouse, while it is
    unavailable, or for a name it does not have (yet)."""
    warehouse = getattr(request.app.state, "warehouse", None)
    recorded = [
        e
        for e in entries
        if e["action"] == NAME_RECORDED and isinstance(e["details"].get("name"), str)
    ]
    if warehouse is None or not recorded:
        return entries
    members = {e["customer_id"] for e in recorded}
    names = {e["details"]["name"] for e in recorded}
    try:
        written = written_spellings(warehouse, tenant_id, members, names)
    except WarehouseUnavailable:
        return entries
    anyone = {name: spelling for (_, name), spelling in sorted(written.items())}
    for entry in recorded:
        name = entry["details"]["name"]
        spelling = written.get((entry["customer_id"], name)) or anyone.get(name)
        if spelling:
            entry["details"] = {**entry["details"], "name": spelling}
    return entries


@router.post("/customers/merge", openapi_extra=openapi_body(MergeIn), responses=_CHANGE)
def merge_customers(
    who: Curator,
    body: Annotated[MergeIn, Depends(json_body(MergeIn, MAX_BODY_BYTES))],
    request: Request,
) -> MergeOut:
    """Merge absorbed into survivor; with `preview` only say what would happen."""
    resolver = _identity(request)
    with _domain_errors():
        plan = resolver.merge(
            who.tenant_id,
            resolver.customer_for(who.tenant_id, body.survivor_id),
            resolver.customer_for(who.tenant_id, body.absorbed_id),
            body.reason,
            _actor(who),
            preview=body.preview,
        )
        impact = _impact(request, who.tenant_id, plan) if body.preview else None
    return _merge_out(plan, body.preview, impact)


@router.post(
    "/customers/{customer_id:path}/caller",
    openapi_extra=openapi_body(CallerIn),
    response_model=CallerOut,
    responses=_CHANGE,
)
def name_the_caller(
    customer_id: CustomerId,
    who: Reader,
    body: Annotated[CallerIn, Depends(json_body(CallerIn, MAX_BODY_BYTES))],
    request: Request,
) -> CallerOut:
    """On a call from a household's line alone (its own customer: anyone at home may have
    called), the agent heard who is calling: `caller_id`, a customer holding that line, absorbs
    the call's customer. Any role that reads customers; a manager can split it back. 409
    `merge_refused` unless this customer holds no identifier and called from a line the caller
    holds."""
    resolver = _identity(request)
    with _domain_errors():
        plan = resolver.name_caller(
            who.tenant_id,
            resolver.customer_for(who.tenant_id, customer_id),
            resolver.customer_for(who.tenant_id, body.caller_id),
            _actor(who),
        )
    return CallerOut(customer_id=plan.survivor_id, merge_id=plan.merge_id)


@router.post(
    "/customers/{customer_id:path}/split", openapi_extra=openapi_body(SplitIn), responses=_CHANGE
)
def split_customer(
    customer_id: CustomerId,
    who: Curator,
    body: Annotated[SplitIn, Depends(json_body(SplitIn, MAX_BODY_BYTES))],
    request: Request,
) -> dict[str, Any]:
    """Reverse the merge that brought `absorbed_id` into this customer: both sides get back exactly
    the identifiers and history they had, and are never merged again automatically."""
    resolver = _identity(request)
    with _domain_errors():
        outcome = resolver.split(
            who.tenant_id,
            resolver.customer_for(who.tenant_id, customer_id),
            resolver.customer_for(who.tenant_id, body.absorbed_id),
            body.reason,
            _actor(who),
        )
    return asdict(outcome)


@router.post(
    "/customers/{customer_id:path}/unlink", openapi_extra=openapi_body(UnlinkIn), responses=_CHANGE
)
def unlink_identifier(
    customer_id: CustomerId,
    who: Curator,
    body: Annotated[UnlinkIn, Depends(json_body(UnlinkIn, MAX_BODY_BYTES))],
    request: Request,
) -> dict[str, Any]:
    """Take an identifier off the customer (a recycled number, a wrong link). It never links back
    to this customer automatically; with `erase` it never links anyone again, whatever is replayed."""
    resolver = _identity(request)
    with _domain_errors():
        customer_id = resolver.customer_for(who.tenant_id, customer_id)
        held_by = resolver.unlink(
            who.tenant_id, customer_id, body.kind, body.value, body.reason, _actor(who), body.erase
        )
    return {
        "customer_id": resolver.canonical_id(who.tenant_id, customer_id),
        "held_by": held_by,
        "kind": body.kind,
        "erased": body.erase,
    }


@router.get("/merge-candidates", responses=_UNAVAILABLE)
def list_merge_candidates(
    request: Request,
    who: Reader,
    status: Literal["open", "accepted", "rejected", "all"] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Pairs of customers that may be one person, oldest first, for review."""
    found = _identity(request).candidates(who.tenant_id, None if status == "all" else status)
    page = found[offset : offset + limit]
    return {
        "candidates": [_candidate_out(c) for c in page],
        "total": len(found),
        "next_offset": offset + limit if offset + limit < len(found) else None,
    }


@router.post(
    "/merge-candidates/{candidate_id}/decision",
    openapi_extra=openapi_body(DecisionIn),
    responses=_CHANGE,
)
def decide_merge_candidate(
    candidate_id: CandidateId,
    who: Curator,
    body: Annotated[DecisionIn, Depends(json_body(DecisionIn, MAX_BODY_BYTES))],
    request: Request,
) -> CandidateOut:
    """Accept (merge the pair, the proposer surviving unless `survivor_id` says otherwise) or reject
    (the pair is never proposed or merged automatically again)."""
    with _domain_errors():
        decided = _identity(request).decide_candidate(
            who.tenant_id,
            candidate_id,
            accept=body.decision == "accept",
            reason=body.reason,
            actor=_actor(who),
            survivor_id=body.survivor_id,
        )
    return _candidate_out(decided)


def _impact(request: Request, tenant_id: str, plan: MergePlan) -> MergeImpact | None:
    """Events, orders, satisfaction and open cases of each side and of the merged customer, read
    from the warehouse over each side's members as of now."""
    warehouse = getattr(request.app.state, "warehouse", None)
    if warehouse is None:
        return None
    resolver = _identity(request)
    survivor = resolver.members(tenant_id, plan.survivor_id)
    absorbed = resolver.members(tenant_id, plan.absorbed_id)
    merged = list(dict.fromkeys(survivor + absorbed))

    def side(members: list[str]) -> SideImpact:
        return _side(members, read_profile(warehouse, tenant_id, members))

    return MergeImpact(survivor=side(survivor), absorbed=side(absorbed), merged=side(merged))


def _side(members: list[str], profile: Profile | None) -> SideImpact:
    if profile is None:
        return SideImpact(
            members=members,
            events=0,
            orders=0,
            survey_responses=0,
            latest_csat=None,
            latest_nps=None,
            latest_ces=None,
            open_cases=0,
        )
    scores = profile.satisfaction
    answered = [s for s in (scores.csat, scores.nps, scores.ces) if s is not None]
    return SideImpact(
        members=members,
        events=profile.events,
        orders=profile.orders.count,
        survey_responses=sum(s.responses for s in answered),
        latest_csat=scores.csat.score if scores.csat else None,
        latest_nps=scores.nps.score if scores.nps else None,
        latest_ces=scores.ces.score if scores.ces else None,
        open_cases=len(profile.open_cases),
    )


def _merge_out(plan: MergePlan, preview: bool, impact: MergeImpact | None = None) -> MergeOut:
    return MergeOut(
        preview=preview,
        allowed=plan.allowed,
        survivor_id=plan.survivor_id,
        absorbed_id=plan.absorbed_id,
        merge_id=plan.merge_id,
        reasons=list(plan.reasons),
        refusals=[RefusalOut(code=code, params=params) for code, params in plan.refusals],
        conflicts=list(plan.conflicts),
        members=list(plan.members),
        identifiers=[IdentifierOut(kind=i.kind, value=i.value) for i in plan.identifiers],
        impact=impact,
    )


def _candidate_out(view: CandidateView) -> CandidateOut:
    fields = asdict(view)
    fields["identifiers"] = list(view.identifiers)
    coded = reason_code(view.reason)
    if coded is not None:
        fields["reason_code"], fields["reason_params"] = coded
    return CandidateOut(**fields)
