"""Customers: timeline, profile and lookup by identifier.

The tenant always comes from the caller's key, never from the request: another tenant's customer is
indistinguishable from one that does not exist (S01).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AwareDatetime

from cem.api_errors import ApiError
from cem.auth import CAN_READ_CUSTOMERS, require
from cem.ports import Principal, Warehouse
from schemas.envelope import Channel
from services.projections.lookup import CustomerLookup, InvalidLookup, lookup_key
from services.projections.profile import Profile
from services.projections.sql import find_customers, read_profile, read_timeline
from services.projections.timeline import (
    DEFAULT_PAGE,
    MAX_PAGE,
    InvalidCursor,
    InvalidFilter,
    TimelineFilter,
    TimelinePage,
    decode_cursor,
)

router = APIRouter(tags=["customers"])

Reader = Annotated[Principal, Depends(require(CAN_READ_CUSTOMERS))]
# `:path` because customer ids are free text and may contain "/"; the timeline route is declared
# first so that ".../timeline" is never read as part of an id.
CustomerId = Annotated[str, Path(min_length=1, max_length=200)]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such customer for the caller's tenant"}
}


def _warehouse(request: Request) -> Warehouse:
    warehouse: Warehouse = request.app.state.warehouse
    return warehouse


def _not_found() -> ApiError:
    # The same answer for an unknown id and another tenant's id, so ids cannot be probed (S01).
    return ApiError(404, "not_found", "no such customer")


def _invalid(code: str, exc: ValueError, path: str) -> ApiError:
    detail = {"code": code, "message": str(exc), "path": path}
    return ApiError(422, "invalid_request", str(exc), [detail])


@router.get(
    "/v1/customers/{customer_id:path}/timeline", response_model=TimelinePage, responses=_NOT_FOUND
)
def get_timeline(
    request: Request,
    principal: Reader,
    customer_id: CustomerId,
    channel: Channel | None = None,
    type: Annotated[
        str | None, Query(max_length=100, pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
    ] = None,
    since: Annotated[AwareDatetime | None, Query(description="inclusive, ISO 8601")] = None,
    until: Annotated[AwareDatetime | None, Query(description="exclusive, ISO 8601")] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> TimelinePage:
    """The customer's events across every channel, newest first, one page at a time."""
    try:
        filters = TimelineFilter.of(channel, type, since, until)
    except InvalidFilter as exc:
        raise _invalid("invalid_filter", exc, "query.since") from None
    try:
        position = decode_cursor(cursor) if cursor else None
    except InvalidCursor as exc:
        raise _invalid("invalid_cursor", exc, "query.cursor") from None
    page = read_timeline(
        _warehouse(request), principal.tenant_id, customer_id, filters, position, limit
    )
    if page is None:
        raise _not_found()
    return page


@router.get("/v1/customers/{customer_id:path}", response_model=Profile, responses=_NOT_FOUND)
def get_profile(request: Request, principal: Reader, customer_id: CustomerId) -> Profile:
    """What is known about the customer: activity, channels, orders, satisfaction, open cases."""
    profile = read_profile(_warehouse(request), principal.tenant_id, customer_id)
    if profile is None:
        raise _not_found()
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
    matches = find_customers(_warehouse(request), principal.tenant_id, kind, value)
    return CustomerLookup(kind=kind, value=value, customers=matches)
