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
        description=f"at most {MAX_RESULTS}, the most recent last touchpoint first"
    )


def group_hits(hits: list[Hit], groups: dict[str, list[str]]) -> list[SearchResult]:
    """One result per customer (the canonical of each hit's home, by `groups`: home → members,
    canonical first), dated by its latest hit until `dated` reads its last touchpoint."""
    grouped: dict[str, SearchResult] = {}
    for hit in hits:  # most recent first, so a customer's first hit is its latest
        customer_id = groups.get(hit.customer_id, [hit.customer_id])[0]
        result = grouped.setdefault(
            customer_id, SearchResult(customer_id=customer_id, last_seen=hit.last_at, matched=[])
        )
        match = Match(kind=hit.kind, value=hit.value)
        if match not in result.matched:
            result.matched.append(match)
    return list(grouped.values())


def dated(
    request: Request, tenant_id: str, results: list[SearchResult], groups: dict[str, list[str]]
) -> list[SearchResult]:
    """The `MAX_RESULTS` customers last in touch, each dated by its last touchpoint over all its
    members (one read for every customer a hit found, so the customer who called yesterday is
    not cut for one whose email was seen later); a customer without any keeps its match's date."""
    members = {group[0]: group for group in groups.values()}
    last = last_contacts(
        request.app.state.warehouse,
        tenant_id,
        {r.customer_id: members.get(r.customer_id, [r.customer_id]) for r in results},
    )
    found = [
        r.model_copy(update={"last_seen": last.get(r.customer_id, r.last_seen)}) for r in results
    ]
    return sorted(found, key=lambda r: r.last_seen, reverse=True)[:MAX_RESULTS]


def hit_groups(request: Request, tenant_id: str, hits: list[Hit]) -> dict[str, list[str]]:
    """Each hit's home → the members of the customer it stands for now (canonical first), in
    one read of the identity map; each home alone without identity."""
    homes = sorted({hit.customer_id for hit in hits})
    identity: IdentityResolver | None = getattr(request.app.state, "identity", None)
    if identity is None:
        return {home: [home] for home in homes}
    # As the map stands (one version for all); an id it does not know (a placeholder's key) is
    # a group of its own.
    return identity.groups(tenant_id, homes)


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
    groups = hit_groups(request, principal.tenant_id, hits)
    customers = dated(request, principal.tenant_id, group_hits(hits, groups), groups)
    return SearchResults(query=q, customers=customers)
