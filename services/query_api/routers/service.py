"""Service metrics per touchpoint: response times, handle time, service level and survey response
rate, per channel, queue and agent, over time, each with its sample size."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from kernel.api_errors import WAREHOUSE_UNAVAILABLE, ApiError
from kernel.auth import AUTHENTICATED, CAN_READ_AGGREGATES, UNAUTHENTICATED, require
from kernel.ports import Principal
from kernel.processing import to_micros
from schemas.envelope import Channel
from services.query_api.exports import (
    DOWNLOAD_RESPONSES,
    ExportFormat,
    Format,
    HeaderLanguage,
    download_items,
)
from services.query_api.routers.satisfaction import (
    TOUCHPOINT_PATTERN,
    MetricOut,
    Since,
    Until,
    window,
)
from services.query_api.routers.settings import TimeZoneQuery, calendar_of, zone_of, zoned
from services.satisfaction.metrics import MIN_CONFIDENT_N, MetricValue
from services.service_metrics.definitions import (
    DEFAULT_SERVICE_LEVEL_S,
    SERVICE_DEFINITIONS,
    ServiceDefinition,
)
from services.service_metrics.sql import (
    COUNTS,
    DIMENSIONS,
    ServiceMetrics,
    ServiceQuery,
    read_service_metrics,
)

router = APIRouter(tags=["service"], responses=AUTHENTICATED)

# The buckets the service SQL knows (services/service_metrics/sql.py BUCKETS).
Bucket = Literal["hour", "day", "total"]
# A dimension of a cell; `tenant` alone groups by none of them (the tenant's whole figures).
GroupBy = Literal["touchpoint", "channel", "queue", "agent", "tenant"]

NAME_PATTERN = r"^[^\x00-\x1f\x7f]{1,200}$"
_ERRORS: dict[int | str, dict[str, Any]] = {
    **UNAUTHENTICATED,
    403: {"description": "the key's role may not read aggregates (agents, managers, admins may)"},
    422: {"description": "a bad parameter, e.g. a timestamp without an offset or since ≥ until"},
    **WAREHOUSE_UNAVAILABLE,
}


class ServiceDefinitionOut(BaseModel):
    """A published service metric definition; values below refer to it by `key`."""

    key: str = Field(examples=["frt_p50@1"])
    name: str
    version: int
    unit: str
    description: str


class ServiceCounts(BaseModel):
    calls: int = Field(description="calls ended in the bucket")
    conversations: int = Field(description="conversations whose first inbound message is in it")
    unanswered: int = Field(description="of those, without a human agent reply yet")
    surveys_sent: int


class ServiceBucket(BaseModel):
    touchpoint: str = Field(description="'' when not grouped by it (every touchpoint)")
    channel: str = Field(description="'' when not grouped by it")
    queue: str = Field(description="'' when the contact names none, or when not grouped by it")
    agent: str = Field(
        description="the handling agent; for FRT, the first replying agent; '' for none, or "
        "when not grouped by it"
    )
    bucket_start: datetime
    counts: ServiceCounts
    metrics: dict[str, MetricOut] = Field(description="by definition key, e.g. `aht@1`")


class TouchpointService(BaseModel):
    tenant_id: str
    since: datetime
    until: datetime
    bucket: Bucket
    time_zone: str = Field(default="UTC", description="whose midnights start the day buckets")
    group_by: list[str] = Field(description="the dimensions of each cell; the others are totalled")
    service_level_s: float
    min_confident_n: int
    definitions: list[ServiceDefinitionOut]
    buckets: list[ServiceBucket]


def _definition_out(d: ServiceDefinition) -> ServiceDefinitionOut:
    return ServiceDefinitionOut(
        key=d.key, name=d.name, version=d.version, unit=d.unit, description=d.description
    )


def _metric_out(value: MetricValue) -> MetricOut:
    # No interval yet for service metrics (percentiles and durations): null, as the model allows.
    return MetricOut(
        value=value.value, n=value.n, low_confidence=value.low_confidence, interval=None
    )


def _bucket_out(row: ServiceMetrics, zone: str = "UTC") -> ServiceBucket:
    return ServiceBucket(
        touchpoint=row.touchpoint,
        channel=row.channel,
        queue=row.queue,
        agent=row.agent,
        bucket_start=zoned(row.bucket_start, zone),
        counts=ServiceCounts(**row.counts),
        metrics={key: _metric_out(value) for key, value in row.metrics.items()},
    )


def service_columns() -> list[str]:
    """The columns of a service metrics export, also when it has no rows."""
    metrics = [
        f"metrics.{d.key}.{field}"
        for d in SERVICE_DEFINITIONS
        for field in ("value", "n", "low_confidence")
    ]
    counts = [f"counts.{name}" for name in COUNTS]
    return [*DIMENSIONS, "bucket_start", *counts, *metrics]


def _dimensions(group_by: list[GroupBy] | None) -> tuple[str, ...]:
    chosen = set(group_by or DIMENSIONS)
    if "tenant" in chosen and len(chosen) > 1:  # it would be dropped silently: refuse it
        message = "tenant means no dimension: name it alone"
        details = [{"code": "invalid_parameter", "message": message, "path": "query.group_by"}]
        raise ApiError(422, "invalid_parameter", f"group_by {message}", details)
    return tuple(d for d in DIMENSIONS if d in chosen)


@router.get(
    "/v1/service/touchpoints",
    response_model=TouchpointService,
    responses=_ERRORS | DOWNLOAD_RESPONSES,
)
def touchpoint_service(
    request: Request,
    principal: Principal = Depends(require(CAN_READ_AGGREGATES)),
    since: Since = None,
    until: Until = None,
    channel: Channel | None = Query(None),
    touchpoint: str | None = Query(None, pattern=TOUCHPOINT_PATTERN, max_length=64),
    queue: str | None = Query(None, pattern=NAME_PATTERN),
    agent: str | None = Query(None, pattern=NAME_PATTERN),
    bucket: Bucket = Query("day", description="hour or day (of `tz`), or total: the whole range"),
    group_by: list[GroupBy] | None = Query(
        None,
        max_length=5,
        description="the dimensions of a cell, repeat for several (default all four); "
        "`tenant` alone: none, the tenant's whole figures per bucket",
    ),
    service_level_s: float = Query(
        DEFAULT_SERVICE_LEVEL_S, gt=0, le=3600, description="the service level's threshold T"
    ),
    tz: TimeZoneQuery = None,
    format: Format = ExportFormat.json,
    lang: HeaderLanguage = None,
) -> TouchpointService | Response:
    """Every service metric per cell (touchpoint × channel × queue × agent, or the dimensions
    of `group_by`) × bucket, oldest first, each value with its n."""
    start, end = window(request, since, until, bucket)
    dimensions = _dimensions(group_by)
    calendar = calendar_of(request, principal.tenant_id)
    # The tenant comes only from the credential, never from the request (S01).
    query = ServiceQuery(
        tenant_id=principal.tenant_id,
        since=to_micros(start),
        until=to_micros(end),
        bucket=bucket,
        channel=channel.value if channel else "",
        touchpoint=touchpoint or "",
        queue=queue or "",
        agent=agent or "",
        threshold_s=service_level_s,
        group_by=dimensions,
        time_zone=zone_of(request, principal.tenant_id, tz, calendar),
        calendar=calendar,
    )
    rows = read_service_metrics(request.app.state.warehouse, query)
    buckets = [_bucket_out(row, query.time_zone) for row in rows]
    if format != ExportFormat.json:
        return download_items(buckets, service_columns(), "service-touchpoints", format, lang)
    return TouchpointService(
        tenant_id=principal.tenant_id,
        since=start,
        until=end,
        bucket=bucket,
        time_zone=query.time_zone,
        group_by=list(dimensions),
        service_level_s=service_level_s,
        min_confident_n=MIN_CONFIDENT_N,
        definitions=[_definition_out(d) for d in SERVICE_DEFINITIONS],
        buckets=buckets,
    )
