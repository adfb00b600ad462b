"""Customers: timeline, profile and lookup by identifier.

The tenant always comes from the caller's key, never from the request: another tenant's customer is
indistinguishable from one that does not exist (S01).

A customer's history is that of every member of it (itself and the customers merged into it), as of
the current identity version: the identity service (`app.state.identity`) says who the members are,
the warehouse holds what each was filed. Any id a user knows addresses the customer: its own id,
an id merged into it (answered for the survivor), or the key of an identifier it holds or was seen
with (`cust-1`, `email:ana@x.io`, `phone:+34600000001`, `anon:…`, `ext:shop:1`). Without an
identity service, an id is exactly the key events were filed under.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from kernel.access_audit import AUDITED_READ_RESPONSES, record_access
from kernel.api_errors import ApiError
from kernel.auth import AUTHENTICATED, CAN_READ_CUSTOMERS, require
from kernel.customer_key import normalise_phone
from kernel.ports import Principal, Warehouse
from schemas.envelope import Channel
from services.identity.app_rules import identity_rules_of
from services.identity.errors import AmbiguousCustomer, CustomerNotFound
from services.identity.models import LocatedCustomer
from services.identity.normalise import lookup_spellings, normalise_one, phone_readings
from services.identity.resolver import IdentityResolver
from services.identity.rules import TenantRules
from services.projections.arrivals import LatestPositions, Positions, encode_positions
from services.projections.lookup import (
    CustomerLookup,
    CustomerMatch,
    InvalidLookup,
    combine_matches,
    key_lookup,
    lookup_key,
    matches_from_rows,
)
from services.projections.repeat_contact_sql import read_repeat_contact
from services.projections.sql import find_customers, read_profile, sightings_of
from services.projections.timeline import (
    DEFAULT_PAGE,
    MAX_PAGE,
    InvalidFilter,
    TimelineFilter,
    TimelinePage,
    worded,
)
from services.projections.timeline_page_sql import read_flagged_page
from services.projections.value import ValuedProfile
from services.projections.value_sql import with_value
from services.query_api.params import (
    INSTANT_HELP,
    Instant,
    SummaryLanguage,
    TypeFilter,
    cursor_position,
    ordered_range,
)
from services.query_api.routers.satisfaction import now
from services.query_api.stream import StreamHub

router = APIRouter(tags=["customers"], responses=AUTHENTICATED)

Reader = Annotated[Principal, Depends(require(CAN_READ_CUSTOMERS))]
# `:path` because customer ids are free text and may contain "/"; the timeline route is declared
# first so that ".../timeline" is never read as part of an id.
CustomerId = Annotated[str, Path(min_length=1, max_length=400)]
# A hub's watermark at most this old starts a first page's stream without a query (the hub polls
# every 200 ms while streams are open; a staler start sends more of the page's entries again).
HUB_FRESH_S = 0.5
# What a read of one customer (resolved by `members_of`, recorded by the access audit) answers.
CUSTOMER_READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUDITED_READ_RESPONSES,
    404: {"description": "no such customer for the caller's tenant"},
    409: {"description": "an identifier key that several customers hold: name one by its id"},
}


def _warehouse(request: Request) -> Warehouse:
    warehouse: Warehouse = request.app.state.warehouse
    return warehouse


def identity_of(request: Request) -> IdentityResolver | None:
    """The app's identity resolver; None where the app runs without one."""
    identity: IdentityResolver | None = getattr(request.app.state, "identity", None)
    return identity


def _not_found() -> ApiError:
    # The same answer for an unknown id and another tenant's id, so ids cannot be probed (S01).
    return ApiError(404, "not_found", "no such customer")


def _ambiguous(exc: AmbiguousCustomer) -> ApiError:
    details = [
        {"code": "candidate_customer", "message": customer_id, "path": "path.customer_id"}
        for customer_id in exc.customer_ids
    ]
    message = f"{exc}: address one of them by its customer id"
    return ApiError(409, "ambiguous_customer", message, details)


def _locate(
    request: Request, identity: IdentityResolver, tenant_id: str, requested: str
) -> LocatedCustomer:
    try:
        return identity.locate(tenant_id, requested)
    except CustomerNotFound:
        # A key of an identifier identity never links (a placeholder email) that events carried.
        seen = find_customers(_warehouse(request), tenant_id, *key_lookup(requested))
        return identity.group_of(tenant_id, [m.customer_id for m in seen], requested)


def members_of(request: Request, tenant_id: str, requested: str) -> list[str]:
    """Every customer id whose rows are the requested customer's history, canonical first."""
    identity = identity_of(request)
    if identity is None:
        return [requested]
    try:
        return list(_locate(request, identity, tenant_id, requested).members)
    except CustomerNotFound:
        raise _not_found() from None
    except AmbiguousCustomer as exc:
        raise _ambiguous(exc) from None


def latest_arrivals(request: Request) -> LatestPositions:
    """The app's reader of the latest arrivals (it remembers how far they went), made on first
    use and again if the app's warehouse was replaced."""
    latest: LatestPositions | None = getattr(request.app.state, "latest_arrivals", None)
    if latest is None or latest.warehouse is not _warehouse(request):
        latest = LatestPositions(_warehouse(request))
        request.app.state.latest_arrivals = latest
    return latest


def stream_start(request: Request) -> Positions:
    """Where a first page's live stream starts, from memory where the app knows it: the embedded
    projections tell it each arrival they store (`LatestPositions.told`); a stream hub that polled
    within `HUB_FRESH_S` holds a watermark every arrival up to which is visible. Else read."""
    latest = latest_arrivals(request)
    hub: StreamHub | None = getattr(request.app.state, "stream_hub", None)
    recent = hub.recent(HUB_FRESH_S) if hub is not None and not latest.told else None
    return recent if recent is not None else latest()


def profile_of(
    warehouse: Warehouse, tenant_id: str, members: list[str], as_of: datetime
) -> ValuedProfile:
    """The members' profile with its latest repeat contact, and its value and churn risk as of a
    moment; 404 when none of them has an event."""
    profile = read_profile(warehouse, tenant_id, members)
    if profile is None:
        raise _not_found()
    repeat = read_repeat_contact(warehouse, tenant_id, members)
    profile = profile.model_copy(update={"repeat_contact": repeat})
    return with_value(warehouse, tenant_id, members, profile, as_of)


def _invalid(code: str, exc: ValueError, path: str) -> ApiError:
    detail = {"code": code, "message": str(exc), "path": path}
    return ApiError(422, "invalid_request", str(exc), [detail])


@router.get(
    "/v1/customers/{customer_id:path}/timeline",
    response_model=TimelinePage,
    responses={
        **CUSTOMER_READ_RESPONSES,
        422: {
            "description": "a bad filter, instant, cursor, limit or lang, or since ≥ until "
            "(invalid_range), with the violated path"
        },
    },
)
def get_timeline(
    request: Request,
    principal: Reader,
    customer_id: CustomerId,
    channel: Annotated[
        list[Channel] | None, Query(description="repeat for any of several channels")
    ] = None,
    type: Annotated[
        list[TypeFilter] | None,
        Query(
            max_length=20,
            description="an event type (call.ended) or a prefix (call.*); repeat for any of several",
        ),
    ] = None,
    since: Annotated[Instant | None, Query(description=f"inclusive; {INSTANT_HELP}")] = None,
    until: Annotated[Instant | None, Query(description=f"exclusive; {INSTANT_HELP}")] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    lang: SummaryLanguage = "en",
) -> TimelinePage:
    """The customer's events across every channel, newest first, one page at a time."""
    ordered_range(since, until)
    try:
        filters = TimelineFilter.of(channel or (), type or (), since, until)
    except InvalidFilter as exc:
        raise _invalid("invalid_filter", exc, "query.since") from None
    position = cursor_position(cursor) if cursor else None
    members = members_of(request, principal.tenant_id, customer_id)
    warehouse, tenant_id = _warehouse(request), principal.tenant_id
    # Where the live stream must start for a reader of the first page: taken before the page is
    # read, so an event stored while it is read is in the page or after the cursor, never lost.
    live_from = None if position else encode_positions(stream_start(request))
    page = read_flagged_page(warehouse, tenant_id, members, filters, position, limit)
    if page is None:
        raise _not_found()
    entries = [worded(entry, lang) for entry in page.entries]
    page = page.model_copy(update={"entries": entries, "stream_cursor": live_from})
    record_access(request, principal, members[0], "timeline", customer_id)
    return page


@router.get(
    "/v1/customers/{customer_id:path}",
    response_model=ValuedProfile,
    responses=CUSTOMER_READ_RESPONSES,
)
def get_profile(request: Request, principal: Reader, customer_id: CustomerId) -> ValuedProfile:
    """What is known about the customer: activity, channels, orders, satisfaction, open cases,
    the latest repeat contact, and its value and churn risk now (value@1, churn_risk@1)."""
    members = members_of(request, principal.tenant_id, customer_id)
    profile = profile_of(_warehouse(request), principal.tenant_id, members, now(request))
    record_access(request, principal, members[0], "profile", customer_id)
    return profile


@router.get("/v1/customers", response_model=CustomerLookup)
def find_by_identifier(
    request: Request,
    principal: Reader,
    email: Annotated[str | None, Query(max_length=320)] = None,
    phone: Annotated[str | None, Query(max_length=40)] = None,
    anonymous_id: Annotated[str | None, Query(max_length=200)] = None,
    external_id: Annotated[str | None, Query(max_length=300, description="namespace:value")] = None,
) -> CustomerLookup:
    """Customers an identifier was seen on; exactly one identifier must be given."""
    try:
        kind, value = lookup_key(email, phone, anonymous_id, external_id)
    except InvalidLookup as exc:
        raise _invalid("invalid_lookup", exc, exc.path) from None
    tenant_id, identity = principal.tenant_id, identity_of(request)
    raw = email if kind == "email" else phone
    spellings = _spellings(request, tenant_id, kind, value, raw)
    found = [m for v in spellings for m in find_customers(_warehouse(request), tenant_id, kind, v)]
    if identity is not None and raw is not None:
        found += _held_matches(request, identity, tenant_id, kind, raw, found)
    matches = combine_matches(found, lambda customer_id: customer_id)
    if identity is not None:
        version = identity.identity_version(tenant_id)
        matches = combine_matches(
            matches, lambda home: identity.canonical_id(tenant_id, home, version)
        )
    return CustomerLookup(kind=kind, value=spellings[0], customers=matches)


def _held_matches(
    request: Request,
    identity: IdentityResolver,
    tenant_id: str,
    kind: str,
    raw: str,
    found: list[CustomerMatch],
) -> list[CustomerMatch]:
    """Sightings, on the customers identity says hold the identifier, of spellings no search
    above could guess (`Ana.Lopez@gmail.com` for `analopez+x@gmail.com`): those that identity
    reads as the same identifier."""
    rules = identity.rules.for_tenant(tenant_id)
    # A national number with several readings: whoever holds one of them (`phone_readings`).
    wanted = set(phone_readings(raw, rules)) if kind == "phone" else {raw}
    holders = [
        h
        for value in sorted(wanted)
        for h in identity.holders_of(tenant_id, kind, value)
        if h not in {m.customer_id for m in found}
    ]
    rows = sightings_of(_warehouse(request), tenant_id, kind, list(dict.fromkeys(holders)))
    return matches_from_rows([r for r in rows if _read_alike(kind, r["value"], raw, wanted, rules)])


def _read_alike(kind: str, value: str, raw: str, wanted: set[str], rules: TenantRules) -> bool:
    """A sighting's spelling is the query's identifier as identity reads both: one of the
    numbers both may be, or the same normalised identifier."""
    if kind == "phone":
        return bool(wanted & set(phone_readings(value, rules)))
    return normalise_one(kind, value, rules) == normalise_one(kind, raw, rules)


def _spellings(
    request: Request, tenant_id: str, kind: str, stored: str, raw: str | None
) -> list[str]:
    """The values to search: an email or phone as identity reads it (the tenant's region, a `+`
    that the URL turned into a space, provider rules) in every spelling it may have been sent
    with, as stored; other kinds, and text identity cannot read, exactly as given. A national
    number with several readings (`316 951 3292`) is searched in each, as given first: the
    lookup's `value` names no one reading."""
    if raw is None:
        return [stored]
    rules = identity_rules_of(request.app).for_tenant(tenant_id)
    spellings = [
        normalise_phone(s) if kind == "phone" else s.strip().lower()
        for s in lookup_spellings(kind, raw, rules)
    ]
    one = kind != "phone" or len(phone_readings(raw, rules)) <= 1
    return list(dict.fromkeys([*spellings, stored] if one else [stored, *spellings]))
