"""At-risk customer alerts, newest first, for the agent console and the CX dashboard.

`?customer_id=` addresses a customer the way the customers routes do (`members_of`): with the
identity service, any id or identifier key of a customer answers with the alerts of every member
of its group (an absorbed id answers for its survivor). Each alert keeps the `customer_id` it was
filed under, a member of that group, which `GET /v1/customers/{id}` resolves to the group.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from kernel.access_audit import AUDITED_READ_RESPONSES, record_access
from kernel.api_errors import ApiError
from kernel.auth import AUTHENTICATED, CAN_READ_AGGREGATES, require
from kernel.ports import Principal
from kernel.processing import to_micros
from schemas.envelope import Channel
from services.projections.timeline import Cursor, encode_cursor
from services.query_api.exports import (
    DOWNLOAD_RESPONSES,
    ExportFormat,
    Format,
    HeaderLanguage,
    download_items,
)
from services.query_api.params import INSTANT_HELP, Moment, any_of, cursor_position, ordered_range
from services.query_api.routers.customers import members_of
from services.query_api.routers.satisfaction import TouchpointName, now, utc
from services.satisfaction.alerts import RULE_SET, text_of
from services.satisfaction.drift import DEFINITION as DRIFT_DEFINITION
from services.satisfaction.drift_sql import drift_of, read_alerts_with_drift
from services.satisfaction.lifecycle import Status
from services.satisfaction.lifecycle_sql import AlertState, read_states
from services.satisfaction.sql import NO_END, AlertQuery

router = APIRouter(tags=["alerts"], responses=AUTHENTICATED)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PAGE = 100  # alerts per page when none is asked for
EXPORT_MAX = 100_000  # alerts in one whole download
EXPORT_PAGE = 1000  # alerts read at a time for it


class DriftOut(BaseModel):
    """A touchpoint's metric fell below its own baseline (drift@1, docs/metrics.md)."""

    definition: str = DRIFT_DEFINITION
    definition_key: str = Field(description="the metric that fell: csat@1, nps@1 or ces@1")
    test: str = Field(description="two_proportion_z (CSAT%) or welch_t (NPS, CES means)")
    period_start: datetime = Field(description="the UTC day that fell (its answers)")
    period_end: datetime
    baseline_start: datetime = Field(description="the baseline: the 28 days before the period")
    period_value: float
    period_n: int
    baseline_value: float
    baseline_n: int
    drop: float = Field(description="baseline − period, in `unit`")
    drop_interval: tuple[float, float] = Field(description="95% confidence interval of the drop")
    unit: str
    p_value: float = Field(description="one-sided; the alert needs < 0.01")
    answers: list[str] = Field(
        description="event ids of the period's answers that pull the metric down (at most 100)"
    )
    answers_total: int = Field(description="how many such answers the period holds")


class AlertOut(BaseModel):
    alert_id: str
    customer_id: str = Field(description="'' on a drift alert: it is about a touchpoint")
    rule: str = Field(examples=["at_risk.csat"])
    severity: Literal["high", "medium"]
    metric: str = Field(
        description="survey kind: nps, csat or ces; or sentiment (score × 100, scale -100-100)"
    )
    score: int
    scale: str
    touchpoint: str = Field(description="attributed touchpoint (of the rated interaction)")
    channel: str
    agent: str | None = Field(description="agent of the rated interaction, when known")
    queue: str | None
    event_id: str = Field(description="the survey answer or customer text that raised the alert")
    correlation_id: str | None
    raised_at: datetime
    message: str = Field(description="what the alert says, in English")
    message_code: str | None = Field(
        None,
        description="the same text as a stable code (at_risk.score, at_risk.sentiment, "
        "drift.drop) for a page to say in its reader's language; null when the alert was "
        "stored worded otherwise",
        examples=["at_risk.score"],
    )
    message_params: dict[str, str] = Field(
        default_factory=dict,
        description="the values the code's text is filled with, formatted as in `message`; "
        "`where` and `unit` are codes of words",
        examples=[{"metric": "CSAT", "score": "1", "scale": "1-5", "at_most": "2"}],
    )
    status: Status = Field(Status.open, description="open, assigned, acknowledged or resolved")
    assignee: str | None = Field(None, description="who the alert is assigned to")
    note: str | None = Field(None, description="the latest note of a manager's action")
    drift: DriftOut | None = Field(
        None, description="on a drift alert (rule drift.*): the period, drop and answers"
    )


class AlertList(BaseModel):
    rule_set: str = Field(examples=[RULE_SET])
    alerts: list[AlertOut]
    next_cursor: str | None = Field(
        None, description="pass as `cursor` for the next (older) page; null on the last page"
    )


def _from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def alert_out(row: dict[str, Any], state: AlertState | None = None) -> AlertOut:
    # '' is how the warehouse stores "unknown" (no Nullable columns); the API says null.
    optional = {name: row[name] or None for name in ("agent", "queue", "correlation_id")}
    raised_at = _from_micros(int(row["raised_at"]))
    lifecycle = vars(state) if state is not None else {}
    drift = _drift_out(row["drift"]) if row.get("drift") else None
    return AlertOut.model_validate(
        {**row, **optional, **_said(row), "raised_at": raised_at, **lifecycle, "drift": drift}
    )


def _said(row: dict[str, Any]) -> dict[str, Any]:
    """The message's code and parameters: a drift alert's row carries them, a stored at-risk
    alert's are rebuilt from it."""
    if "message_code" in row:
        return {}
    text = text_of(row)
    return {"message_code": text.code, "message_params": text.params} if text else {}


def _drift_out(detail: dict[str, Any]) -> DriftOut:
    moments = ("period_start", "period_end", "baseline_start")
    return DriftOut.model_validate(
        {**detail, **{m: datetime.fromtimestamp(detail[m], UTC) for m in moments}}
    )


def _customers(request: Request, tenant_id: str, customer_id: str | None) -> tuple[str, ...] | None:
    """The customer ids whose alerts answer the filter: None (every customer), or the members."""
    if customer_id is None:
        return None
    try:
        return tuple(members_of(request, tenant_id, customer_id))
    except ApiError as exc:
        if exc.status != 404:
            raise  # an identifier several customers hold: 409, as on the customers routes
        # Unknown to identity: exactly that id, as without identity (a filter finding nothing).
        return (customer_id,)


@router.get(
    "/v1/alerts",
    response_model=AlertList,
    responses={
        200: {
            **DOWNLOAD_RESPONSES[200],
            "headers": {
                "X-Next-Cursor": {
                    "description": "on a download that does not hold every alert that matches "
                    "(a `limit`, or more than the whole-download bound): the cursor of the rest",
                    "schema": {"type": "string"},
                }
            },
        },
        **AUDITED_READ_RESPONSES,
        503: {
            "description": "the warehouse is unavailable, or (one customer's alerts, an audited "
            "read) the access audit cannot record the read; retry later (Retry-After)"
        },
        409: {"description": "a customer_id several customers hold: name one by its id"},
        422: {
            "description": "a bad cursor, instant, limit or format, or since ≥ until "
            "(invalid_range), with the violated path"
        },
    },
)
def list_alerts(
    request: Request,
    principal: Principal = Depends(require(CAN_READ_AGGREGATES)),
    since: Moment | None = Query(
        None, description=f"raised at or after; default all; {INSTANT_HELP}"
    ),
    until: Moment | None = Query(None, description=f"raised before; default none; {INSTANT_HELP}"),
    cursor: str | None = Query(None, max_length=400, description="next_cursor of a previous page"),
    customer_id: str | None = Query(
        None,
        min_length=1,
        max_length=400,
        description="a customer id or identifier key; a merged customer's alerts are its members'",
    ),
    touchpoint: list[TouchpointName] | None = Query(
        None, max_length=50, description="attributed touchpoint; repeat for any of several"
    ),
    channel: list[Channel] | None = Query(
        None, max_length=50, description="attributed channel; repeat for any of several"
    ),
    limit: int | None = Query(
        None,
        ge=1,
        le=1000,
        description=f"alerts per page (default {PAGE}); a download (format xlsx, csv or parquet) "
        f"without it holds every alert that matches, up to {EXPORT_MAX:,} (then "
        "X-Next-Cursor says where the rest start)",
    ),
    format: Format = ExportFormat.json,
    lang: HeaderLanguage = None,
) -> AlertList | Response:
    """At-risk customer alerts of the caller's tenant, newest first."""
    whole = format != ExportFormat.json and limit is None
    start, end = utc("since", since), utc("until", until)
    ordered_range(start, end)
    size = limit or (EXPORT_PAGE if whole else PAGE)
    # The tenant comes only from the credential: another tenant's customer id finds nothing (S01).
    # One query over every member: newest first, one row per alert, at most `limit`.
    query = AlertQuery(
        tenant_id=principal.tenant_id,
        since=to_micros(start) if start else 0,
        customers=_customers(request, principal.tenant_id, customer_id),
        touchpoints=any_of(touchpoint),
        channels=any_of(channel),
        limit=size + 1,  # one more tells whether another page follows
        until=to_micros(end) if end else NO_END,
        before=_position(cursor),
    )
    alerts: list[AlertOut] = []
    next_cursor: str | None = None
    as_of = to_micros(now(request))
    # The drift alerts of the range, evaluated once for every page of a whole download.
    drift = drift_of(request.app.state.warehouse, query, as_of) if whole else None
    # A page; a whole download reads page after page (each lifecycle lookup bounded by a page).
    while True:
        page, next_cursor = _alerts_page(request, query, size, as_of, drift)
        alerts += page
        if not (whole and next_cursor and len(alerts) < EXPORT_MAX):
            break
        query = replace(query, before=_position(next_cursor))
    if customer_id is not None and query.customers:  # one customer's alerts: audited
        record_access(request, principal, query.customers[0], "alerts", customer_id)
    if format != ExportFormat.json:
        response = download_items(alerts, list(AlertOut.model_fields), "alerts", format, lang)
        if next_cursor:  # not every alert that matches: where the rest start
            response.headers["X-Next-Cursor"] = next_cursor
        return response
    return AlertList(rule_set=RULE_SET, alerts=alerts, next_cursor=next_cursor)


def _alerts_page(
    request: Request,
    query: AlertQuery,
    size: int,
    as_of: int,
    drift: list[dict[str, Any]] | None = None,
) -> tuple[list[AlertOut], str | None]:
    """Up to `size` alerts from the query's position as of `as_of` (epoch micros; `drift`: the
    range's drift alerts, when already evaluated), with their lifecycle states, and the cursor
    of the next page (None: no more)."""
    rows = read_alerts_with_drift(request.app.state.warehouse, query, as_of, drift)
    page, more = rows[:size], len(rows) > size
    last = page[-1] if page else None
    next_cursor = (
        encode_cursor(Cursor(int(last["raised_at"]), last["alert_id"])) if more and last else None
    )
    states = read_states(
        request.app.state.warehouse, query.tenant_id, [r["alert_id"] for r in page]
    )
    return [alert_out(row, states.get(row["alert_id"])) for row in page], next_cursor


def _position(cursor: str | None) -> tuple[int, str]:
    """Where the page starts: after the cursor's alert, or from the newest."""
    if cursor is None:
        return (NO_END, "")
    position = cursor_position(cursor)
    return (position.derived_at, position.event_id)
