"""One touchpoint by its id: the event as stored and the customer it is filed under.

`GET /v1/events/{event_id}` answers which customer an event went to: `filed_under` is the customer
it was filed under when it was resolved (never changes), `customer_id` the customer that is now
(the survivor of any merge since). Identifiers the event carried that identity ignored (invalid,
placeholders, blocked values) are listed with why, whichever way the event arrived (HTTP or
Kafka). The tenant comes from the caller's key; another tenant's event is a 404 like a missing one.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from kernel.access_audit import AUDITED_READ_RESPONSES, record_access
from kernel.api_errors import ApiError
from kernel.auth import AUTHENTICATED, CAN_READ_CUSTOMERS, require
from kernel.ports import Principal, Warehouse
from services.identity.models import FiledTouchpoint
from services.identity.normalise import explanation_of
from services.identity.resolver import IdentityResolver
from services.projections.sql import read_event
from services.projections.timeline import TimelineEntry

router = APIRouter(tags=["events"], responses=AUTHENTICATED)

Reader = Annotated[Principal, Depends(require(CAN_READ_CUSTOMERS))]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **AUDITED_READ_RESPONSES,
    404: {"description": "no such event for the caller's tenant"},
}


class IgnoredIdentifierOut(BaseModel):
    path: str = Field(description="where the event carried it, e.g. customer.email")
    reason: str = Field(description="invalid, placeholder or blocked")
    message: str


class FiledEvent(BaseModel):
    """A stored touchpoint and whose history it is part of."""

    event: TimelineEntry
    customer_id: str = Field(description="the customer it belongs to now (following merges)")
    filed_under: str = Field(description="the customer it was filed under when resolved")
    ignored_identifiers: list[IgnoredIdentifierOut]


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "no such event")


@router.get("/v1/events/{event_id}", response_model=FiledEvent, responses=_NOT_FOUND)
def get_event(
    request: Request, principal: Reader, event_id: Annotated[str, Path(max_length=64)]
) -> FiledEvent:
    """The event and the customer it is filed under."""
    try:
        canonical_id = str(UUID(event_id))
    except ValueError:
        raise _not_found() from None
    identity: IdentityResolver | None = getattr(request.app.state, "identity", None)
    filing = identity.filing_of(principal.tenant_id, canonical_id) if identity else None
    warehouse: Warehouse = request.app.state.warehouse
    home = filing.home_id if filing else None
    found = read_event(warehouse, principal.tenant_id, canonical_id, home)
    if found is None:
        raise _not_found()
    filed_under, entry = found
    customer_id = filing.customer_id if filing else filed_under
    # One customer's touchpoint, payload included: audited like the timeline (fails closed).
    record_access(request, principal, customer_id, "event", canonical_id)
    return FiledEvent(
        event=entry,
        customer_id=customer_id,
        filed_under=filed_under,
        ignored_identifiers=_ignored(filing),
    )


def _ignored(filing: FiledTouchpoint | None) -> list[IgnoredIdentifierOut]:
    if filing is None:
        return []
    return [
        IgnoredIdentifierOut(path=i.path, reason=i.reason, message=explanation_of(i.reason))
        for i in filing.ignored
    ]
