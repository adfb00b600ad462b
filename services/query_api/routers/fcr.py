"""First-contact resolution per touchpoint: `GET /v1/service/fcr` (fcr@1, docs/metrics.md).

Computed when read, as of the request's moment: a resolved first contact less than 7 days old is
provisional, and the answer says so per bucket and in its counts. A merged customer is one
customer: the identity map's redirects (absorbed id -> survivor) gather its members' contacts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, StringConstraints

from kernel.api_errors import WAREHOUSE_UNAVAILABLE, ApiError
from kernel.auth import AUTHENTICATED, CAN_READ_ANSWERS, require
from kernel.ports import Principal
from kernel.processing import to_micros
from schemas.envelope import Channel
from services.identity.resolver import IdentityResolver
from services.projections.contact_events import Backfilled
from services.projections.repeat_contact import WINDOW_DAYS
from services.query_api.exports import (
    DOWNLOAD_RESPONSES,
    ExportFormat,
    Format,
    HeaderLanguage,
    download_items,
)
from services.query_api.params import any_of
from services.query_api.routers.satisfaction import (
    Bucket,
    MetricOut,
    Since,
    TouchpointName,
    Until,
    metric_out,
    now,
    window,
)
from services.query_api.routers.service import NAME_PATTERN
from services.query_api.routers.settings import TimeZoneQuery, zone_of, zoned
from services.satisfaction.fcr import DEFINITION, REPEAT_RATE_DEFINITION
from services.satisfaction.fcr_cells import FcrCell
from services.satisfaction.fcr_sql import RangeTooBusy, read_fcr
from services.satisfaction.metrics import MIN_CONFIDENT_N

router = APIRouter(tags=["service"], responses=AUTHENTICATED)
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=200)]

DEFINITIONS = {
    DEFINITION: "100 × FCR contacts / resolved first contacts: a resolved contact with no "
    f"contact of the same customer about the same topic on any channel, and no reopen of its "
    f"case, within {WINDOW_DAYS} days, provisional until they pass; a merged customer's members "
    "are one customer (docs/metrics.md)",
    REPEAT_RATE_DEFINITION: "100 × contacts that repeat one of the same customer at most "
    f"{WINDOW_DAYS} days earlier, whatever the topic (repeat_contact@1) / contacts",
}
COUNT_FIELDS = (
    "contacts",
    "repeat_contacts",
    "resolved_first_contacts",
    "fcr_final",
    "fcr_provisional",
    "repeated",
)


class FcrCounts(BaseModel):
    contacts: int = Field(description="contacts whose first inbound event is in the bucket")
    repeat_contacts: int = Field(description="of those, repeats of an earlier contact")
    resolved_first_contacts: int = Field(description="fcr@1's denominator")
    fcr_final: int = Field(description="FCR, the window closed")
    fcr_provisional: int = Field(description="FCR so far, the window still open")
    repeated: int = Field(
        description="not FCR: the customer came back about it, or its case was reopened (final)"
    )


class FcrBucket(BaseModel):
    touchpoint: str = Field(description="of the contact's first inbound event")
    channel: str
    queue: str = Field(description="the latest its conversation names; '' when none")
    agent: str = Field(description="the latest its conversation names; '' when none")
    bucket_start: datetime = Field(description="start of the bucket; for `total`, `since`")
    status: Literal["final", "provisional"] = Field(
        description="provisional while any of its resolved first contacts is under 7 days old"
    )
    counts: FcrCounts
    metrics: dict[str, MetricOut] = Field(
        description="`fcr@1` and `repeat_contact_rate@1`, percentages with Wilson intervals"
    )


class FcrReport(BaseModel):
    tenant_id: str
    since: datetime
    until: datetime
    as_of: datetime = Field(description="the moment the figures hold at (provisional or final)")
    bucket: Bucket
    time_zone: str = Field(default="UTC", description="whose midnights start the buckets")
    window_days: int = WINDOW_DAYS
    min_confident_n: int = MIN_CONFIDENT_N
    definitions: dict[str, str]
    buckets: list[FcrBucket]


def _bucket_out(cell: FcrCell, zone: str = "UTC") -> FcrBucket:
    counts = {name: getattr(cell, name) for name in COUNT_FIELDS}
    return FcrBucket(
        touchpoint=cell.touchpoint,
        channel=cell.channel,
        queue=cell.queue,
        agent=cell.agent,
        bucket_start=zoned(cell.bucket_start, zone),
        status="final" if cell.final else "provisional",
        counts=FcrCounts(**counts),
        metrics={
            DEFINITION: metric_out(cell.fcr),
            REPEAT_RATE_DEFINITION: metric_out(cell.repeat_contact_rate),
        },
    )


def _columns() -> list[str]:
    metrics = [
        f"metrics.{key}.{field}"
        for key in DEFINITIONS
        for field in ("value", "n", "low_confidence", "interval")
    ]
    counts = [f"counts.{name}" for name in COUNT_FIELDS]
    where = ["touchpoint", "channel", "queue", "agent", "bucket_start", "status"]
    return [*where, *counts, *metrics]


def _redirects(request: Request, tenant_id: str) -> dict[str, str]:
    """None without the identity service: every customer then stands for itself."""
    identity: IdentityResolver | None = getattr(request.app.state, "identity", None)
    return identity.redirects(tenant_id) if identity is not None else {}


def _contact_events_ready(request: Request) -> bool:
    """Whether the contact events are backfilled, asked of the app's warehouse until they are
    (`Backfilled`, kept by the app and made again if its warehouse was replaced)."""
    warehouse = request.app.state.warehouse
    ready: Backfilled | None = getattr(request.app.state, "contact_events_backfilled", None)
    if ready is None or ready.warehouse is not warehouse:
        ready = request.app.state.contact_events_backfilled = Backfilled(warehouse)
    return ready()


def _wanted(cell: FcrCell, filters: dict[str, tuple[str, ...]]) -> bool:
    return all(not values or getattr(cell, name) in values for name, values in filters.items())


@router.get(
    "/v1/service/fcr",
    response_model=FcrReport,
    responses={
        **DOWNLOAD_RESPONSES,
        403: {"description": "the key's role may not read per-agent figures (managers, admins)"},
        422: {
            "description": "a bad parameter, since ≥ until (invalid_range), or a range with "
            "too many contacts to read (range_too_large)"
        },
        **WAREHOUSE_UNAVAILABLE,
    },
)
def first_contact_resolution(
    request: Request,
    # Per-agent resolution figures are performance data: managers and admins, as raw answers.
    principal: Principal = Depends(require(CAN_READ_ANSWERS)),
    since: Since = None,
    until: Until = None,
    channel: list[Channel] | None = Query(None, max_length=50, description="any of several"),
    touchpoint: list[TouchpointName] | None = Query(None, max_length=50),
    queue: list[Name] | None = Query(None, max_length=50),
    agent: list[Name] | None = Query(None, max_length=50),
    bucket: Bucket = Query("total", description="hour, day, week (from Monday), month or total"),
    tz: TimeZoneQuery = None,
    format: Format = ExportFormat.json,
    lang: HeaderLanguage = None,
) -> FcrReport | Response:
    """fcr@1 and the repeat-contact rate per touchpoint × channel × queue × agent × bucket."""
    start, end = window(request, since, until, bucket)
    as_of = now(request)
    zone = zone_of(request, principal.tenant_id, tz)
    try:
        cells = read_fcr(
            request.app.state.warehouse,
            principal.tenant_id,  # from the credential only (S01)
            to_micros(start),
            to_micros(end),
            bucket,
            to_micros(as_of),
            _redirects(request, principal.tenant_id),
            # An earlier release's data is read from the timeline until its contact events are.
            timeline=not _contact_events_ready(request),
            zone=zone,
        )
    except RangeTooBusy as exc:
        details = [{"code": "range_too_large", "message": str(exc), "path": "query.since"}]
        raise ApiError(422, "range_too_large", str(exc), details) from None
    filters = {
        "channel": any_of(channel),
        "touchpoint": any_of(touchpoint),
        "queue": any_of(queue),
        "agent": any_of(agent),
    }
    buckets = [_bucket_out(c, zone) for c in cells if _wanted(c, filters)]
    if format != ExportFormat.json:
        return download_items(buckets, _columns(), "fcr", format, lang)
    return FcrReport(
        tenant_id=principal.tenant_id,
        since=start,
        until=end,
        as_of=as_of,
        bucket=bucket,
        time_zone=zone,
        definitions=DEFINITIONS,
        buckets=buckets,
    )
