"""`GET /v1/satisfaction/responses`: the survey answers behind a dashboard cell (drill-down).

The filters are the cell's: attributed touchpoint and channel, the period, and a metric — a kind
(`csat`, counted in `responses.csat`) or a definition key (`csat@1`, counted in that metric's `n`).
The rows are exactly the answers the cell counts (`services/satisfaction/drilldown.py`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from kernel.api_errors import WAREHOUSE_UNAVAILABLE, ApiError
from kernel.auth import AUTHENTICATED, CAN_READ_ANSWERS, UNAUTHENTICATED, require
from kernel.ports import Principal
from kernel.processing import to_micros
from schemas.envelope import Channel
from services.projections.timeline import from_micros
from services.query_api.exports import (
    DOWNLOAD_RESPONSES,
    ExportFormat,
    Format,
    HeaderLanguage,
    download,
)
from services.query_api.routers.satisfaction import TOUCHPOINT_PATTERN, Since, Until, window
from services.satisfaction.drilldown import (
    DEFAULT_PAGE,
    MAX_PAGE,
    InvalidResponsesCursor,
    ResponsesCursor,
    ResponsesQuery,
    read_responses,
)
from services.satisfaction.metrics import BY_KEY
from services.satisfaction.sql import KINDS

router = APIRouter(tags=["satisfaction"], responses=AUTHENTICATED)

METRICS = sorted(KINDS) + sorted(BY_KEY)


class SurveyResponseOut(BaseModel):
    event_id: str = Field(description="the survey answer")
    customer_id: str = Field(description="the customer it was filed under")
    answered_at: datetime
    metric: str = Field(description="survey kind: nps, csat or ces")
    scale: str
    score: int
    verbatim: str | None = Field(description="the customer's comment, when they wrote one")
    touchpoint: str = Field(description="attributed touchpoint (of the rated interaction)")
    channel: str = Field(description="attributed channel")
    rated_event_id: str | None = Field(
        description="the interaction the answer is attributed to (null: its own touchpoint)"
    )
    correlation_id: str | None


class SurveyResponsePage(BaseModel):
    responses: list[SurveyResponseOut]
    next_cursor: str | None = Field(description="pass back as `cursor` for the next (older) page")


COLUMNS = list(SurveyResponseOut.model_fields)


def _invalid(name: str, message: str, code: str = "invalid_parameter") -> ApiError:
    details = [{"code": code, "message": message, "path": f"query.{name}"}]
    return ApiError(422, code, f"{name} {message}", details)


def _kind_and_scale(metric: str | None) -> tuple[str, str]:
    if not metric:
        return "", ""
    if metric in KINDS:
        return metric, ""
    definition = BY_KEY.get(metric)
    if definition is None:
        raise _invalid("metric", f"must be one of {', '.join(METRICS)}")
    return definition.kind, definition.scale


def _period(request: Request, since: datetime | None, until: datetime | None) -> tuple[int, int]:
    start, end = window(request, since, until, "total")
    return to_micros(start), to_micros(end)


def _cursor(text: str | None) -> ResponsesCursor | None:
    try:
        return ResponsesCursor.decode(text) if text else None
    except InvalidResponsesCursor as exc:
        raise _invalid("cursor", str(exc), "invalid_cursor") from None


def answer_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The fields of a stored survey answer every answer model shares (drill-down, export)."""
    return {
        "event_id": row["event_id"],
        "customer_id": row["customer_id"],
        "answered_at": from_micros(int(row["answered_at"])),
        "metric": row["kind"],
        "scale": row["scale"],
        "score": int(row["score"]),
        "verbatim": row["comment"] or None,
        "touchpoint": row["touchpoint"],
        "channel": row["channel"],
        "correlation_id": row["correlation_id"] or None,
    }


def _response_out(row: dict[str, Any]) -> SurveyResponseOut:
    return SurveyResponseOut(**answer_fields(row), rated_event_id=row["rated_event_id"] or None)


@router.get(
    "/v1/satisfaction/responses",
    response_model=SurveyResponsePage,
    responses={
        **DOWNLOAD_RESPONSES,
        **UNAUTHENTICATED,
        403: {"description": "not a manager or admin (raw answers name customers)"},
        422: {
            "description": "an invalid filter, period or cursor, or since ≥ until "
            "(invalid_range), with every violated path"
        },
        **WAREHOUSE_UNAVAILABLE,
    },
)
def survey_responses(
    request: Request,
    principal: Annotated[Principal, Depends(require(CAN_READ_ANSWERS))],
    since: Since = None,
    until: Until = None,
    touchpoint: Annotated[str | None, Query(pattern=TOUCHPOINT_PATTERN, max_length=64)] = None,
    channel: Annotated[Channel | None, Query(description="attributed channel")] = None,
    metric: Annotated[str | None, Query(max_length=40, description=", ".join(METRICS))] = None,
    cursor: Annotated[str | None, Query(max_length=600)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    format: Format = ExportFormat.json,
    lang: HeaderLanguage = None,
) -> SurveyResponsePage | Response:
    """Survey answers of the caller's tenant, newest first, attributed like the dashboard."""
    kind, scale = _kind_and_scale(metric)
    start, end = _period(request, since, until)
    query = ResponsesQuery(
        tenant_id=principal.tenant_id,
        since=start,
        until=end,
        touchpoint=touchpoint or "",
        channel=channel.value if channel else "",
        kind=kind,
        scale=scale,
        cursor=_cursor(cursor),
        limit=limit,
    )
    page = read_responses(request.app.state.warehouse, query)
    responses = [_response_out(row) for row in page.rows]
    next_cursor = page.next_cursor.encode() if page.next_cursor else None
    if format != ExportFormat.json:
        # A download holds the page asked for, like the JSON (raise `limit` for more rows).
        rows = [r.model_dump() for r in responses]
        return download(rows, COLUMNS, "survey-responses", format, lang)
    return SurveyResponsePage(responses=responses, next_cursor=next_cursor)
