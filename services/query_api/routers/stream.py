"""`GET /v1/customers/{id}/stream`: a customer's new touchpoints, live, as Server-Sent Events.

Same access rules as the timeline (agent, manager, admin; another tenant's customer is a 404).
Each message is `id: <cursor>`, `event: touchpoint`, `data: <one timeline entry>`; a client that
reconnects with `Last-Event-ID` (or `?last_event_id=`) first gets what arrived after that cursor,
then live messages, and nothing twice. `?lang=es` words each entry's summary in Spanish, as the
timeline's `lang` does. The cursor follows arrival into the warehouse, not event
time, so a late event (old `occurred_at`) is delivered like any other.

A customer erased while the stream is open gets one `event: erased` message (`data: {}`), and the
stream ends: a page showing the customer's history must stop showing it. (The rows go from the
warehouse in their own time; the page is told within `ERASURE_CHECK_S`.) Any member of the group
it opened on counts (one split off, then erased, was shown on the page), erased before the stream
opened too (between the first page and the stream, or while a browser was away), except the
erased members of a group a live customer was merged into since: that page is the live one's.

A customer merged with another, or one split off, while the stream is open gets one
`event: regrouped` message (`data: {}`), and the stream ends: it feeds the members it opened on,
so the page reads the customer's history again, every member's, and opens a new stream on them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from kernel.access_audit import record_access
from kernel.api_errors import ApiError
from kernel.auth import still_authorised
from kernel.ports import Principal
from services.projections.arrivals import InvalidStreamCursor, Positions, decode_positions
from services.projections.sql import customer_exists
from services.query_api.params import SummaryLanguage
from services.query_api.routers.customers import (
    CUSTOMER_READ_RESPONSES,
    CustomerId,
    Reader,
    identity_of,
    members_of,
)
from services.query_api.stream import CustomerStream, StreamHub

router = APIRouter(tags=["customers"])
logger = logging.getLogger(__name__)

_STREAM_EXAMPLE = (
    'id: MDoxMiwxOjQ\nevent: touchpoint\ndata: {"event_id": "…", "channel": "chat", …}\n\n'
    ": keep-alive\nid: MDoxMiwxOjQ\n\n"
    "id: MDoxMiwxOjU\nevent: erased\ndata: {}\n\n"
)
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "a `text/event-stream`: an `event: touchpoint` per new timeline entry "
        "(its data the entry), `: keep-alive` comments when idle; when the customer is erased "
        "meanwhile, one `event: erased` (data `{}`) and the stream ends (a client closes it: "
        "a reconnection is told the same at once); when it is merged with another customer or "
        "one is split off meanwhile, one `event: regrouped` (data `{}`) and the stream ends (a "
        "client reads the customer again and opens a new stream)",
        "content": {
            "text/event-stream": {"schema": {"type": "string"}, "example": _STREAM_EXAMPLE}
        },
    },
    **CUSTOMER_READ_RESPONSES,
    422: {
        "description": "a Last-Event-ID this API did not hand out (invalid_cursor), or a lang "
        "other than en or es, with the violated path"
    },
}


def stream_hub(request: Request) -> StreamHub:
    """The app's one hub, made on the first stream (the app's warehouse is set by then)."""
    hub: StreamHub | None = getattr(request.app.state, "stream_hub", None)
    if hub is None:
        # Embedded, the projections run in this process and wake the hub when they store
        # arrivals (`arrivals_stored`); distributed, the hub polls.
        wakeup = getattr(request.app.state, "arrivals_stored", None)
        hub = StreamHub(request.app.state.warehouse, wakeup=wakeup)
        request.app.state.stream_hub = hub
    return hub


def _cursor(header: str | None, query: str | None) -> Positions | None:
    given = header or query
    if not given:
        return None
    try:
        return decode_positions(given)
    except InvalidStreamCursor as exc:
        path = "header.last-event-id" if header else "query.last_event_id"
        detail = {"code": "invalid_cursor", "message": str(exc), "path": path}
        raise ApiError(422, "invalid_cursor", str(exc), [detail]) from None


def _existing_members(request: Request, principal: Principal, customer_id: str) -> list[str]:
    members = members_of(request, principal.tenant_id, customer_id)
    if not customer_exists(request.app.state.warehouse, principal.tenant_id, members):
        raise ApiError(404, "not_found", "no such customer")
    record_access(request, principal, members[0], "stream", customer_id)
    return members


def _erasure_watch(
    request: Request, tenant_id: str, members: list[str]
) -> Callable[[], bool] | None:
    """Whether a member of the group the stream opened on is erased, read on demand; None
    without an identity store. Any erased member is news, whenever the page read it (an erasure
    between the first page and the stream, or while a browser was away and reconnects), except
    those erased before a live customer was merged in (`erased_before_merge`: the live
    customer's page is not to be emptied)."""
    identity = identity_of(request)
    if identity is None:
        return None
    older = identity.erased_before_merge(tenant_id, members)
    failing = False

    def erased() -> bool:
        nonlocal failing
        try:
            news = bool(identity.erased_among(tenant_id, members) - older)
        except Exception:  # noqa: BLE001 — the store briefly unavailable: the stream goes on
            if not failing:
                logger.warning("stream: could not read whether its customer was erased; retrying")
            failing = True
            return False
        failing = False
        return news

    return erased


def _regroup_watch(
    request: Request, tenant_id: str, customer_id: str, members: list[str]
) -> Callable[[], bool] | None:
    """Whether the customer the stream was opened for has other members than `members` now (a
    merge or a split since), read on demand; None without an identity store. A failing read
    (the store briefly unavailable, the customer gone) is no change: the erasure check and the
    page's own reads say what they find."""
    if identity_of(request) is None:
        return None
    opened = set(members)
    failing = False

    def regrouped() -> bool:
        nonlocal failing
        try:
            now = set(members_of(request, tenant_id, customer_id))
        except Exception:  # noqa: BLE001 — the stream goes on as it is
            if not failing:
                logger.warning("stream: could not read its customer's members; retrying")
            failing = True
            return False
        failing = False
        return now != opened

    return regrouped


@router.get(
    "/v1/customers/{customer_id:path}/stream",
    response_class=StreamingResponse,
    responses=_RESPONSES,
)
async def stream_customer(
    request: Request,
    principal: Reader,
    customer_id: CustomerId,
    last_event_id: Annotated[
        str | None, Query(max_length=2000, description="as the Last-Event-ID header")
    ] = None,
    last_event_id_header: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=2000)
    ] = None,
    lang: SummaryLanguage = "en",
) -> StreamingResponse:
    """New touchpoints of the customer (every merged member's), live; resumable."""
    cursor = _cursor(last_event_id_header, last_event_id)
    tenant_id = principal.tenant_id
    # Blocking reads (identity store, warehouse) off the event loop that serves every stream.
    members = await asyncio.to_thread(_existing_members, request, principal, customer_id)
    erased = await asyncio.to_thread(_erasure_watch, request, tenant_id, members)
    regrouped = _regroup_watch(request, tenant_id, customer_id, members)
    stream = CustomerStream(
        stream_hub(request), tenant_id, members, cursor, lang=lang, erased=erased,
        regrouped=regrouped, authorised=still_authorised(request), watch_header=True,
    )  # fmt: skip
    # no-store: personal data; X-Accel-Buffering: a proxy must pass each message on at once.
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream.messages(), media_type="text/event-stream", headers=headers)
