"""Customer search for the agent console: results as the agent types (`GET /v1/customers/search`).

Its own router, included before the customers router, whose `/v1/customers/{id:path}` would
otherwise read `search` as a customer id. Tenant from the caller only; matches of customers merged
into one are answered once, under the surviving customer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from kernel.api_errors import WAREHOUSE_UNAVAILABLE
from kernel.auth import AUTHENTICATED, CAN_READ_CUSTOMERS, UNAUTHENTICATED, require
from kernel.ports import Principal, Warehouse
from services.identity.resolver import IdentityResolver
from services.projections.search import (
    MAX_RESULTS,
    MIN_QUERY,
    Hit,
    last_contacts,
    search_hits,
)

router = APIRouter(tags=["customers"], responses=AUTHENTICATED)


class Match(BaseModel):
    kind: str = Field(examples=["email", "phone", "order"])
    value: str


class SearchResult(BaseModel):
    customer_id: str
    last_seen: datetime = Field(
        description="the customer's last touchpoint (any member's, any channel), as its "
        "profile's last_seen; what matched may have been seen earlier"
    )
    matched: list[Match] = Field(description="what matched the query, most recent first")


class SearchResults(BaseModel):
    query: str
    customers: list[SearchResult] = Field(
        description=f"at most {MAX_RESULTS}: those whose match was seen most recently, the "
        "most recent last touchpoint first"
    )


def group_hits(hits: list[Hit], canonical: dict[str, str]) -> list[SearchResult]:
    grouped: dict[str, SearchResult] = {}
    for hit in hits:  # most recent first, so a customer's first hit is its last_seen
        customer_id = canonical.get(hit.customer_id, hit.customer_id)
        result = grouped.setdefault(
            customer_id, SearchResult(customer_id=customer_id, last_seen=hit.last_at, matched=[])
        )
        match = Match(kind=hit.kind, value=hit.value)
        if match not in result.matched:
            result.matched.append(match)
    return list(grouped.values())[:MAX_RESULTS]


def with_last_contacts(
    request: Request, tenant_id: str, results: list[SearchResult]
) -> list[SearchResult]:
    """The results dated by each customer's last touchpoint (every member's), most recent first;
    a result whose customer has none keeps its match's date."""
    if not results:
        return results
    identity: IdentityResolver | None = getattr(request.app.state, "identity", None)
    version = identity.identity_version(tenant_id) if identity is not None else None
    groups = {  # the identity map: an id it does not know (a placeholder's key) is its own
        r.customer_id: identity.members(tenant_id, r.customer_id, version)
        if identity is not None
        else [r.customer_id]
        for r in results
    }
    last = last_contacts(request.app.state.warehouse, tenant_id, groups)
    dated = [
        r.model_copy(update={"last_seen": last.get(r.customer_id, r.last_seen)}) for r in results
    ]
    return sorted(dated, key=lambda r: r.last_seen, reverse=True)


def canonical_ids(request: Request, tenant_id: str, hits: list[Hit]) -> dict[str, str]:
    identity: IdentityResolver | None = getattr(request.app.state, "identity", None)
    if identity is None:
        return {}
    version = identity.identity_version(tenant_id)
    homes = {hit.customer_id for hit in hits}
    return {home: identity.canonical_id(tenant_id, home, version) for home in homes}


@router.get(
    "/v1/customers/search",
    response_model=SearchResults,
    responses={
        **UNAUTHENTICATED,
        403: {"description": "the credential's role may not read customers"},
        422: {"description": "an invalid query, with every violated path"},
        **WAREHOUSE_UNAVAILABLE,
    },
)
def search_customers(
    request: Request,
    principal: Annotated[Principal, Depends(require(CAN_READ_CUSTOMERS))],
    q: Annotated[str, Query(min_length=MIN_QUERY, max_length=200, description="what to look for")],
) -> SearchResults:
    """Customers whose email, phone, external id or order number contains `q`."""
    warehouse: Warehouse = request.app.state.warehouse
    hits = search_hits(warehouse, principal.tenant_id, q)
    customers = group_hits(hits, canonical_ids(request, principal.tenant_id, hits))
    customers = with_last_contacts(request, principal.tenant_id, customers)
    return SearchResults(query=q, customers=customers)
