"""`GET /v1/audit/access`: who read which customer's data, when (admins only).

Entries are written by `kernel.access_audit.record_access` on every read of one customer's data.
The tenant comes from the admin's credential: another tenant's entries are never listed (S01).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from kernel.api_errors import ApiError
from kernel.auth import AUTHENTICATED, CAN_READ_AUDIT, UNAUTHENTICATED, require
from kernel.ports import AccessAudit, AccessEntry, AccessQuery, Principal
from kernel.processing import to_micros
from services.projections.timeline import Cursor, encode_cursor, from_micros
from services.query_api.exports import (
    DOWNLOAD_RESPONSES,
    ExportFormat,
    Format,
    HeaderLanguage,
    download_items,
)
from services.query_api.params import (
    INSTANT_HELP,
    Instant,
    cursor_position,
    invalid_cursor,
    ordered_range,
)

router = APIRouter(tags=["audit"], responses=AUTHENTICATED)
logger = logging.getLogger(__name__)

MAX_PAGE = 1000


class AccessEntryOut(BaseModel):
    entry_id: str
    at: datetime
    actor_kind: str = Field(description="key or user")
    actor_id: str = Field(description="the key's id, or the person's user id")
    actor_email: str | None = Field(description="the person's email; null for a key")
    role: str
    customer_id: str = Field(description="the customer the read resolved to")
    requested_id: str = Field(description="the id or identifier key the caller sent")
    resource: str = Field(examples=["timeline", "stream", "profile", "identities", "alerts"])
    request_id: str | None = Field(description="the caller's X-Request-ID, when sent")


class AccessPage(BaseModel):
    entries: list[AccessEntryOut]
    next_cursor: str | None = Field(
        None, description="pass as `cursor` for the next (older) page; null on the last page"
    )


COLUMNS = list(AccessEntryOut.model_fields)


def _out(entry: AccessEntry) -> AccessEntryOut:
    fields = vars(entry) | {
        "actor_email": entry.actor_email or None,
        "request_id": entry.request_id or None,
    }
    return AccessEntryOut.model_validate(fields)


def _before(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    position = cursor_position(cursor)
    try:
        return from_micros(position.derived_at), position.event_id
    except OverflowError:  # a forged position past the calendar's range is as invalid
        raise invalid_cursor("the cursor's time is out of range") from None


def _next_cursor(page: list[AccessEntry], more: bool) -> str | None:
    if not more or not page:
        return None
    return encode_cursor(Cursor(to_micros(page[-1].at), page[-1].entry_id))


def _entries(request: Request, query: AccessQuery) -> list[AccessEntry]:
    audit: AccessAudit | None = getattr(request.app.state, "access_audit", None)
    try:
        if audit is None:
            raise LookupError("no access audit configured")
        return audit.entries(query)
    except Exception as exc:  # a store that fails to read is down for this request, whatever failed
        logger.exception("access audit unavailable for listing")
        message = "the access audit does not answer right now; retry later"
        raise ApiError(503, "audit_unavailable", message, headers={"Retry-After": "5"}) from exc


@router.get(
    "/v1/audit/access",
    response_model=AccessPage,
    responses={
        **DOWNLOAD_RESPONSES,
        **UNAUTHENTICATED,
        403: {"description": "not an admin"},
        422: {
            "description": "a bad cursor, instant, limit or format, or since ≥ until, with the "
            "violated path"
        },
        503: {"description": "the access audit store is unavailable; retry later"},
    },
)
def list_access(
    request: Request,
    principal: Annotated[Principal, Depends(require(CAN_READ_AUDIT))],
    customer_id: Annotated[
        str | None, Query(min_length=1, max_length=400, description="the resolved customer id")
    ] = None,
    actor: Annotated[
        str | None, Query(min_length=1, max_length=320, description="a key id, user id or email")
    ] = None,
    since: Annotated[Instant | None, Query(description=f"inclusive; {INSTANT_HELP}")] = None,
    until: Annotated[Instant | None, Query(description=f"exclusive; {INSTANT_HELP}")] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    format: Format = ExportFormat.json,
    lang: HeaderLanguage = None,
) -> AccessPage | Response:
    """Reads of single customers' data in the caller's tenant, newest first."""
    ordered_range(since, until)
    query = AccessQuery(
        tenant_id=principal.tenant_id,
        customer_id=customer_id,
        actor=actor,
        since=since,
        until=until,
        before=_before(cursor),
        limit=limit + 1,  # one more tells whether another page follows
    )
    found = _entries(request, query)
    page, more = found[:limit], len(found) > limit
    entries = [_out(entry) for entry in page]
    if format != ExportFormat.json:
        return download_items(entries, COLUMNS, "access-audit", format, lang)
    return AccessPage(entries=entries, next_cursor=_next_cursor(page, more))
