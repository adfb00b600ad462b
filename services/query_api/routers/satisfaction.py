"""Satisfaction per touchpoint: CSAT, NPS and CES over time, by channel, with sample sizes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, StringConstraints

from kernel.api_errors import ApiError
from kernel.auth import AUTHENTICATED, CAN_READ_AGGREGATES, require
from kernel.ports import Principal
from kernel.processing import to_micros
from schemas.envelope import Channel
from services.query_api.exports import (
    DOWNLOAD_RESPONSES,
    ExportFormat,
    Format,
    HeaderLanguage,
    download_items,
    touchpoint_columns,
)
from services.query_api.params import INSTANT_HELP, Moment, any_of, now, ordered_range
from services.query_api.routers.settings import TimeZoneQuery, zone_of, zoned
from services.satisfaction.metrics import DEFINITIONS, MIN_CONFIDENT_N, Definition, MetricValue
from services.satisfaction.sentiment import DEFINITION as SENTIMENT_DEFINITION
from services.satisfaction.sentiment_sql import (
    SentimentCounts,
    TouchpointSentiment,
    read_touchpoint_sentiment,
)
from services.satisfaction.sql import (
    TouchpointMetrics,
    TouchpointQuery,
    read_touchpoint_metrics,
)

router = APIRouter(tags=["satisfaction"], responses=AUTHENTICATED)

Bucket = Literal["hour", "day", "week", "month", "total"]
DEFAULT_WINDOW = timedelta(days=30)
# The shortest length of each bucket, to bound how many a range spans; `total` is always one.
BUCKET_LENGTH: dict[str, timedelta] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=28),
}
# Bounds the response: a range may span at most this many buckets (e.g. ~1 year of hours).
MAX_BUCKETS = 10_000
TOUCHPOINT_PATTERN = r"^[a-z0-9][a-z0-9_.\-]{0,63}$"
TouchpointName = Annotated[str, StringConstraints(pattern=TOUCHPOINT_PATTERN, max_length=64)]
# The period of a read through `window`: [since, until), by default the last 30 days.
Since = Annotated[
    Moment | None, Query(description=f"inclusive; default until − 30 days; {INSTANT_HELP}")
]
Until = Annotated[Moment | None, Query(description=f"exclusive; default now; {INSTANT_HELP}")]


class DefinitionOut(BaseModel):
    """A published metric definition; values below refer to it by `key`."""

    key: str = Field(examples=["nps@1"])
    name: str
    version: int
    kind: str
    scale: str
    description: str
    interval: str = Field(description="how the confidence interval of its values is computed")


class MetricOut(BaseModel):
    value: float | None = Field(description="null when no response was in the sample")
    n: int = Field(description="responses the value was computed from")
    low_confidence: bool = Field(description=f"n < {MIN_CONFIDENT_N}")
    interval: tuple[float, float] | None = Field(
        description="95% confidence interval [low, high] (method in the definition); null "
        "when the sample cannot give one"
    )


class ResponseCounts(BaseModel):
    nps: int
    csat: int
    ces: int


class SentimentFigures(BaseModel):
    n: int = Field(description="texts scored (messages, email replies, survey comments)")
    negative_share: float | None = Field(description="share labelled negative; null when n = 0")
    positive_share: float | None = Field(description="share labelled positive; null when n = 0")
    mean_score: float | None = Field(description="mean score in [−1, 1]; null when n = 0")


class SentimentOut(SentimentFigures):
    """Sentiment of the texts customers wrote on this touchpoint and channel in this bucket."""

    by_language: dict[str, SentimentFigures] = Field(
        default_factory=dict,
        description="the same per detected language (en, es, und): the models differ in "
        "accuracy, see docs/metrics.md",
    )


NO_SENTIMENT = SentimentOut(n=0, negative_share=None, positive_share=None, mean_score=None)


class TouchpointBucket(BaseModel):
    touchpoint: str = Field(description="attributed touchpoint (of the rated interaction)")
    channel: str = Field(description="attributed channel")
    bucket_start: datetime = Field(
        description="start of the bucket, written with the offset of the answer's `time_zone` "
        "(a Madrid day: `2026-12-02T00:00:00+01:00`); for `total`, `since`"
    )
    responses: ResponseCounts
    metrics: dict[str, MetricOut] = Field(description="by definition key, e.g. `nps@1`")
    sentiment: SentimentOut = Field(
        default=NO_SENTIMENT,
        description=f"`{SENTIMENT_DEFINITION}` of the texts written on this touchpoint and "
        "channel (their own, not attributed); a cell with texts but no answer has n = 0 metrics",
    )


class TouchpointSatisfaction(BaseModel):
    tenant_id: str
    since: datetime
    until: datetime
    bucket: Bucket
    time_zone: str = Field(default="UTC", description="whose midnights start the buckets")
    min_confident_n: int
    definitions: list[DefinitionOut]
    sentiment_definition: str = Field(
        default=SENTIMENT_DEFINITION, description="see docs/metrics.md"
    )
    buckets: list[TouchpointBucket]


def utc(name: str, value: datetime | None) -> datetime | None:
    """Query timestamps must carry an offset: a naive one is ambiguous (422, as at the edge)."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise _invalid(name, "must include a UTC offset, e.g. 2026-01-31T00:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise _invalid(name, "is out of range") from None


def _invalid(name: str, message: str, code: str = "invalid_parameter") -> ApiError:
    details = [{"code": code, "message": message, "path": f"query.{name}"}]
    return ApiError(422, code, f"{name} {message}", details)


def window(
    request: Request, since: datetime | None, until: datetime | None, bucket: str
) -> tuple[datetime, datetime]:
    """[since, until) in UTC: by default the last 30 days, at most MAX_BUCKETS buckets (the
    satisfaction and service APIs alike)."""
    end = utc("until", until) or now(request)
    try:
        start = utc("since", since) or end - DEFAULT_WINDOW
    except OverflowError:
        raise _invalid("until", "is too early for the default window") from None
    ordered_range(start, end)
    if bucket in BUCKET_LENGTH and (end - start) / BUCKET_LENGTH[bucket] > MAX_BUCKETS:
        message = f"spans more than {MAX_BUCKETS} {bucket} buckets; narrow the range"
        raise _invalid("since", message, "range_too_large")
    return start, end


def _definition_out(d: Definition) -> DefinitionOut:
    return DefinitionOut(
        key=d.key,
        name=d.name,
        version=d.version,
        kind=d.kind,
        scale=d.scale,
        description=d.description,
        interval=d.interval_description,
    )


def metric_out(value: MetricValue) -> MetricOut:
    return MetricOut(
        value=value.value, n=value.n, low_confidence=value.low_confidence, interval=value.interval
    )


def _bucket_out(row: TouchpointMetrics, zone: str = "UTC") -> TouchpointBucket:
    return TouchpointBucket(
        touchpoint=row.touchpoint,
        channel=row.channel,
        bucket_start=zoned(row.bucket_start, zone),
        responses=ResponseCounts(**row.responses),
        metrics={key: metric_out(value) for key, value in row.metrics.items()},
    )


def _figures(counts: SentimentCounts) -> dict[str, Any]:
    return {
        "n": counts.n,
        "negative_share": counts.negative_share,
        "positive_share": counts.positive_share,
        "mean_score": counts.mean_score,
    }


def _sentiment_out(row: TouchpointSentiment) -> SentimentOut:
    languages = {lang: SentimentFigures(**_figures(c)) for lang, c in row.by_language.items()}
    return SentimentOut(**_figures(row), by_language=languages)


def _no_answers(row: TouchpointSentiment, zone: str = "UTC") -> TouchpointBucket:
    return TouchpointBucket(
        touchpoint=row.touchpoint,
        channel=row.channel,
        bucket_start=zoned(row.bucket_start, zone),
        responses=ResponseCounts(nps=0, csat=0, ces=0),
        metrics={d.key: metric_out(d.with_interval(None, 0, 0.0)) for d in DEFINITIONS},
    )


def with_sentiment(
    metrics: list[TouchpointMetrics], sentiment: list[TouchpointSentiment], zone: str = "UTC"
) -> list[TouchpointBucket]:
    """One bucket per cell that has answers or texts, oldest first, sentiment beside the metrics."""
    cells = {(r.bucket_start, r.touchpoint, r.channel): _bucket_out(r, zone) for r in metrics}
    for row in sentiment:
        key = (row.bucket_start, row.touchpoint, row.channel)
        bucket = cells.get(key) or _no_answers(row, zone)
        cells[key] = bucket.model_copy(update={"sentiment": _sentiment_out(row)})
    return [cells[key] for key in sorted(cells)]


@router.get(
    "/v1/satisfaction/touchpoints",
    response_model=TouchpointSatisfaction,
    responses={
        **DOWNLOAD_RESPONSES,
        422: {
            "description": "a bad parameter, since ≥ until (invalid_range), more buckets than "
            "one answer holds (range_too_large), or an unknown tz (invalid_time_zone), with the "
            "violated path"
        },
        503: {"description": "the warehouse or the tenant settings' store cannot answer now"},
    },
)
def touchpoint_satisfaction(
    request: Request,
    principal: Principal = Depends(require(CAN_READ_AGGREGATES)),
    since: Since = None,
    until: Until = None,
    channel: list[Channel] | None = Query(
        None, description="attributed channel; repeat for any of several"
    ),
    touchpoint: list[TouchpointName] | None = Query(
        None, max_length=50, description="attributed touchpoint; repeat for any of several"
    ),
    bucket: Bucket = Query(
        "day", description="hour, day, week (from Monday), month, or total: the whole range"
    ),
    tz: TimeZoneQuery = None,
    format: Format = ExportFormat.json,
    lang: HeaderLanguage = None,
) -> TouchpointSatisfaction | Response:
    """Responses and every metric definition per touchpoint × channel × bucket, oldest first,
    each value with its n and 95% confidence interval."""
    start, end = window(request, since, until, bucket)
    # The tenant comes only from the credential, never from the request (S01).
    query = TouchpointQuery(
        tenant_id=principal.tenant_id,
        since=to_micros(start),
        until=to_micros(end),
        bucket=bucket,
        channels=any_of(channel),
        touchpoints=any_of(touchpoint),
        time_zone=zone_of(request, principal.tenant_id, tz),
    )
    rows = read_touchpoint_metrics(request.app.state.warehouse, query)
    texts = read_touchpoint_sentiment(request.app.state.warehouse, query)
    buckets = with_sentiment(rows, texts, query.time_zone)
    if format != ExportFormat.json:
        return download_items(
            buckets, touchpoint_columns(), "satisfaction-touchpoints", format, lang
        )
    return TouchpointSatisfaction(
        tenant_id=principal.tenant_id,
        since=start,
        until=end,
        bucket=bucket,
        time_zone=query.time_zone,
        min_confident_n=MIN_CONFIDENT_N,
        definitions=[_definition_out(d) for d in DEFINITIONS],
        buckets=buckets,
    )
