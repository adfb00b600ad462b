"""`POST /v1/customers/{id}/erase`: erase one customer's personal data (GDPR, issue 11).

Admins only, with a reason. The request is itself an event: a `customer.erased` naming the
customer's opaque id (`cem:customer:<id>`), the reason and the actor, no personal data, appended
to the log through the same publisher as ingest and alert actions, so it survives a replay and
is acknowledged before the answer (202, with its event id). The filing stage carries it out when
it files it (`cem.erasure`): the customer's identifiers unlinked and suppressed, its data keys
destroyed, its warehouse rows deleted. `GET /v1/customers/{id}/export` then says it was erased.

What the erasure reaches depends on whether the log was sealed (`CEM_SEAL_PERSONAL_DATA`): sealed,
the customer's events in the log open without their personal fields from then on, so `cem
replay` rebuilds their rows anonymous; not sealed, the log still holds them in clear and a replay
brings the personal fields back. The answer says which (`log_sealed`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kernel.access_audit import record_access
from kernel.api_errors import ApiError
from kernel.auth import AUTHENTICATED, CAN_EXPORT_SUBJECT, UNAUTHENTICATED, require
from kernel.ports import Principal
from kernel.request_body import json_body, openapi_body
from schemas.envelope import IdStr
from schemas.families import ERASURE_TYPE, MAX_ERASURE_MEMBERS, Note, filed_subject
from services.identity.erasure import ErasurePlan, recorded_members
from services.identity.errors import CustomerNotFound
from services.identity.reasons import reason_code
from services.identity.resolver import IdentityResolver
from services.projections.sql import read_profile
from services.query_api.platform_events import record_event
from services.query_api.routers.customers import (
    CUSTOMER_READ_RESPONSES,
    CustomerId,
    members_of,
)
from services.query_api.routers.satisfaction import now

router = APIRouter(tags=["customers"], responses=AUTHENTICATED)

# Who may erase: whoever may export everything about a customer (admins).
Eraser = Annotated[Principal, Depends(require(CAN_EXPORT_SUBJECT))]
MAX_BODY_BYTES = 16 * 1024  # a reason at most: the key is checked first, then this much is read
SOURCE_ID = "cem-erasure"
TOUCHPOINT = "erasure"

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed JSON"},
    **UNAUTHENTICATED,
    403: {"description": "not an admin, or no CSRF token with a session cookie"},
    404: {"description": "no such customer for the caller's tenant"},
    409: {
        "description": "an identifier key that several customers hold (name one by its id), "
        "a customer already erased (`already_erased`), a live customer merged into an erased "
        "one since (`merged_into_erased`: split it off, then erase it), or a group that is no "
        "longer the `members` given (`group_changed`)"
    },
    413: {"description": f"body over {MAX_BODY_BYTES} bytes"},
    422: {"description": "invalid body or customer id, with every violated path"},
    503: {"description": "the event log or the identity store cannot answer now; retry later"},
}


class EraseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Note = Field(
        description="why (a ticket or request reference): kept readable as the record of the "
        "erasure, so it must not hold the person's data",
        examples=["GDPR art. 17 request #4711"],
    )
    members: list[Annotated[IdStr, StringConstraints(min_length=1, max_length=400)]] | None = Field(
        default=None,
        max_length=MAX_ERASURE_MEMBERS,
        description="the group as `GET /v1/customers/{id}/erasure` showed it (its `members`): "
        "when given, the erasure is refused (409 `group_changed`) if the customer's group is "
        "no longer exactly these customers (a merge or split since the preview)",
    )


class MemberOut(BaseModel):
    customer_id: str
    merge_reason: str | None = Field(
        description="why it was merged into the group (identity's rule or the person's "
        "reason); null for the canonical customer"
    )
    reason_code: str | None = Field(
        default=None, description="`merge_reason` as a code, when identity wrote it itself"
    )
    reason_params: dict[str, str] | None = None
    events: int | None = Field(
        description="its touchpoints in the timeline (the profile's events); null without a "
        "warehouse"
    )


class PlannedIdentifierOut(BaseModel):
    kind: str
    value: str
    held_by: str = Field(
        description="the member that holds it, or that carried it again, or (`carried_skipped`) "
        "had events sealed under it"
    )
    key_destroyed: bool = Field(
        description="whether its data key goes; false when a customer outside the group that is "
        "not erased holds it, was released from it or presented it (a shared line, a recycled "
        "number): it is then only unlinked from the group; false too when such a customer had a "
        "touchpoint sealed under it that did not link it (a call from a home line alone): it is "
        "then suppressed (`suppressed`), and its key stays for that customer's events"
    )
    suppressed: bool = Field(
        description="whether it stops linking anyone once erased; false when a customer outside "
        "the group that is not erased holds it, was released from it or presented it, and for "
        "one the group only carried while skipped (`carried_skipped`)",
    )
    carried_again: bool = Field(
        description="erased with an earlier customer and carried again by this member's "
        "touchpoints since (not linked to it)"
    )
    carried_skipped: bool = Field(
        description="not this member's: a touchpoint of its was sealed under it while identity "
        "skipped it (a call from a home line alone); never unlinked or suppressed by this "
        "erasure, its key goes only once an erasure of its holders suppressed it and no one "
        "else may need it (`key_destroyed`). Kind `phone_readings`: a national number valid in "
        "several regions, alone on a touchpoint, its readings joined by `|`; nobody holds it, "
        "and its key goes once one of its readings is suppressed (by this erasure or an earlier "
        "one) and no live customer outside the group holds, held, presented or carried a "
        "reading or carried it"
    )


class ErasurePreview(BaseModel):
    customer_id: str = Field(description="the canonical customer of the group")
    erased: bool
    erasure_event_id: str | None = Field(description="the erasure's event, once erased")
    completed: bool = Field(
        description="its keys recorded gone; the warehouse's rows go once the projections "
        "stored what was filed before the erasure (the export's `removed` counts both)"
    )
    members: list[MemberOut] = Field(
        description="every customer the erasure takes: the canonical one and each merged into "
        "it, automatic merges included; split a stranger off before erasing"
    )
    identifiers: list[PlannedIdentifierOut] = Field(
        description="what the erasure would unlink (empty once erased, or without identity)"
    )
    merged_since: list[str] = Field(
        default_factory=list,
        description="once erased: customers merged into the group after its erasure, which it "
        "did not take and are not erased; split each off to erase it",
    )
    log_sealed: bool


class ErasureAccepted(BaseModel):
    customer_id: str = Field(description="the customer erased (the canonical one of its group)")
    event_id: str = Field(description="the `customer.erased` event recorded on the log")
    log_sealed: bool = Field(
        description="whether the log holds this deployment's personal data sealed, so that "
        "`cem replay` rebuilds the customer without it; false when sealing is off "
        "(CEM_SEAL_PERSONAL_DATA=false) or the data was written in clear before sealing became "
        "the default (its identity store is still in clear): the log keeps those events in "
        "clear and a replay brings their personal fields back"
    )


def raw_erasure(
    named: str, reason: str, actor: str, at: datetime, members: list[str] | None = None
) -> dict[str, Any]:
    """The `customer.erased` event as a producer would send it (validated by the same `accept`
    as ingest); `named` is the customer's `filed_subject`, `members` the group as confirmed (the
    filing stage checks it again when it carries the erasure out)."""
    payload: dict[str, Any] = {"erasure_reason": reason, "actor": actor}
    if members is not None:
        payload["members"] = members
    return {
        "event_id": str(uuid.uuid4()),
        "source_id": SOURCE_ID,
        "channel": "other",
        "type": ERASURE_TYPE,
        "touchpoint": TOUCHPOINT,
        "customer": {"customer_id": named},
        "occurred_at": at.isoformat(),
        "payload": payload,
    }


def _erasure_record(
    request: Request, tenant_id: str, canonical: str
) -> tuple[IdentityResolver | None, dict[str, Any] | None]:
    """Identity (None in rule mode) and the erasure recorded on the customer's group, if any; a
    customer only the warehouse knows (a placeholder's key) has none."""
    identity: IdentityResolver | None = getattr(request.app.state, "identity", None)
    if identity is None:
        return None, None
    try:
        return identity, identity.erasure_of(tenant_id, canonical)
    except CustomerNotFound:
        return identity, None


def _customer(
    request: Request, tenant_id: str, requested: str, expected: list[str] | None = None
) -> str:
    """The canonical customer the id names; 404 when unknown, 409 when already erased, or when
    `expected` (the group as previewed) is not its group now."""
    members = members_of(request, tenant_id, requested)
    identity, erased = _erasure_record(request, tenant_id, members[0])
    if identity is None and read_profile(request.app.state.warehouse, tenant_id, members) is None:
        raise ApiError(404, "not_found", "no such customer")  # a customer is its events' key
    if erased is not None:
        assert identity is not None
        live = identity.merged_since_erasure(tenant_id, members[0])
        if live:
            message = (
                f"{', '.join(live)} was merged into {members[0]} after its erasure and is not "
                f"erased: split it off (POST /v1/customers/{members[0]}/split), then erase it"
            )
            raise ApiError(409, "merged_into_erased", message)
        message = f"the customer was erased already (event {erased['erasure_event_id']})"
        raise ApiError(409, "already_erased", message)
    if expected is not None and sorted(set(expected)) != sorted(members):
        message = (
            f"the customer's group is not the members given: it is {len(members)} customer(s) "
            "now; preview it again"
        )
        raise ApiError(409, "group_changed", message)
    return members[0]


@router.post(
    "/v1/customers/{customer_id:path}/erase",
    status_code=202,
    response_model=ErasureAccepted,
    responses=_RESPONSES,
    openapi_extra=openapi_body(EraseBody),
)
def erase_customer(
    request: Request,
    principal: Eraser,
    customer_id: CustomerId,
    body: Annotated[EraseBody, Depends(json_body(EraseBody, MAX_BODY_BYTES))],
) -> ErasureAccepted:
    """Erase the customer's personal data (and that of every customer merged into it)."""
    tenant_id = principal.tenant_id
    customer = _customer(request, tenant_id, customer_id, body.members)
    named = filed_subject(customer)
    if named is None:  # only a readable key of the rule mode runs that long
        raise ApiError(422, "invalid_request", "this customer id is too long to be erased")
    at = now(request)
    raw = raw_erasure(named, body.reason, principal.record_id, at, body.members)
    event = record_event(request, raw, tenant_id, at, "erasure")
    return ErasureAccepted(
        customer_id=customer,
        event_id=str(event.event_id),
        log_sealed=bool(getattr(request.app.state, "log_sealed", False)),
    )


_PREVIEW_RESPONSES: dict[int | str, dict[str, Any]] = {
    **CUSTOMER_READ_RESPONSES,
    403: {"description": "not an admin"},
    422: {"description": "invalid customer id"},
}


@router.get(
    "/v1/customers/{customer_id:path}/erasure",
    response_model=ErasurePreview,
    responses=_PREVIEW_RESPONSES,
)
def preview_erasure(request: Request, principal: Eraser, customer_id: CustomerId) -> ErasurePreview:
    """What erasing the customer would take, changing nothing (or what its erasure took): every
    customer of its group, automatic merges included, with why each joined and its events, and
    each identifier with whether its data key would go. Pass the `members` to the erase request
    to erase exactly this group. A read of the customer's data: recorded in the access audit."""
    tenant_id = principal.tenant_id
    members = members_of(request, tenant_id, customer_id)
    identity, record = _erasure_record(request, tenant_id, members[0])
    planned = None
    if identity is not None and record is None:
        try:  # the group as identity's aggregates hold it: the very list `erase` carries out
            planned = identity.erasure_plan(tenant_id, members[0])
            members = list(planned.members)
        except CustomerNotFound:  # known to the warehouse only (a placeholder's key)
            planned = None
    unknown = planned is None and record is None  # to identity: a customer is its events' key
    if unknown and read_profile(request.app.state.warehouse, tenant_id, members) is None:
        raise ApiError(404, "not_found", "no such customer")
    merged_since: list[str] = []
    if record is not None:
        assert identity is not None
        merged_since = identity.merged_since_erasure(tenant_id, members[0])
        members = recorded_members(record) or members
    record_access(request, principal, members[0], "erasure_preview", customer_id)
    return ErasurePreview(
        customer_id=members[0],
        erased=record is not None,
        erasure_event_id=record["erasure_event_id"] if record is not None else None,
        completed=record is not None and record["completed"] is not None,
        members=_members(request, tenant_id, members, planned),
        identifiers=_identifiers(planned),
        merged_since=merged_since,
        log_sealed=bool(getattr(request.app.state, "log_sealed", False)),
    )


def _members(
    request: Request, tenant_id: str, members: list[str], planned: ErasurePlan | None
) -> list[MemberOut]:
    warehouse = getattr(request.app.state, "warehouse", None)
    found: list[MemberOut] = []
    for member in members:
        reason = planned.joined.get(member) if planned is not None else None
        coded = reason_code(reason) if reason else None
        events = None
        if warehouse is not None:
            profile = read_profile(warehouse, tenant_id, [member])
            events = profile.events if profile is not None else 0
        found.append(
            MemberOut(
                customer_id=member,
                merge_reason=reason,
                reason_code=coded[0] if coded else None,
                reason_params=coded[1] if coded else None,
                events=events,
            )
        )
    return found


def _identifiers(planned: ErasurePlan | None) -> list[PlannedIdentifierOut]:
    if planned is None:
        return []
    return [
        PlannedIdentifierOut(
            kind=p.identifier.kind,
            value=p.identifier.value,
            held_by=p.member,
            key_destroyed=not p.key_kept,
            suppressed=p.suppressed,
            carried_again=p.carried_again,
            carried_skipped=p.carried_skipped,
        )
        for p in planned.identifiers
    ]
