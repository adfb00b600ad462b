"""`GET|PUT /v1/settings/calendar`: the tenant's service calendar (time zone, opening hours,
holidays; `services/service_metrics/calendar.py`).

Its time zone places the day, week and month buckets of satisfaction, service and FCR figures on
the tenant's midnights (a `tz` query parameter chooses another for one request); its opening
hours and holidays give the business-hours first response times. Every reader of aggregates may
see it; admins set it. A tenant that never set one is in UTC and always open.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from kernel.api_errors import ApiError
from kernel.auth import AUTHENTICATED, CAN_READ_AGGREGATES, CAN_SET_SETTINGS, require
from kernel.ports import Principal
from kernel.request_body import BODY_RESPONSES, json_body, openapi_body
from services.query_api.params import now
from services.service_metrics.calendar import (
    UTC_ALWAYS_OPEN,
    WEEKDAYS,
    Calendar,
    CalendarError,
    CalendarStore,
    StoredCalendar,
    check_zone,
)

router = APIRouter(tags=["settings"], responses=AUTHENTICATED)
Reader = Annotated[Principal, Depends(require(CAN_READ_AGGREGATES))]
Admin = Annotated[Principal, Depends(require(CAN_SET_SETTINGS))]
MAX_BODY_BYTES = 64 * 1024  # a week of hours and a thousand holidays fit many times over
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# The pattern is documented, and checked by `Calendar.from_json`, which words a bad time as the
# CLI and the settings page do (`hours.mon[0]: '9' is not a time written HH:MM`), not pydantic.
Clock = Annotated[str, Field(examples=["09:00"], json_schema_extra={"pattern": r"^\d\d:\d\d$"})]

_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "the settings store cannot answer now; retry later"}
}


class CalendarBody(BaseModel):
    """A tenant's calendar. A weekday left out of `hours` is closed; `hours` left out altogether
    is open all the time."""

    model_config = ConfigDict(extra="forbid")
    time_zone: str = Field(
        default="UTC",
        description="IANA time zone name: buckets start at its midnights and opening hours "
        "are its wall-clock times",
        examples=["Europe/Madrid"],
    )
    hours: dict[Weekday, list[tuple[Clock, Clock]]] | None = Field(
        default=None,
        description="opening intervals per weekday, [opens, closes) as HH:MM local time "
        "(24:00 is midnight at the end of the day), sorted or not, never overlapping",
        examples=[{"mon": [["09:00", "14:00"], ["15:00", "18:00"]], "sat": [["10:00", "13:00"]]}],
    )
    holidays: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="local dates YYYY-MM-DD closed all day",
        examples=[["2026-12-08", "2026-12-25"]],
    )
    # What GET answers beside the calendar, so that a client may PUT back what it read, edited.
    always_open: bool | None = Field(default=None, description="read-only: ignored")
    set_at: datetime | None = Field(default=None, description="read-only: ignored")
    set_by: str | None = Field(default=None, max_length=400, description="read-only: ignored")


class CalendarOut(BaseModel):
    time_zone: str
    hours: dict[str, list[list[str]]] = Field(description=f"every weekday ({', '.join(WEEKDAYS)})")
    holidays: list[str]
    always_open: bool = Field(description="open all the time: business hours equal wall-clock")
    set_at: datetime | None = Field(description="when it was set; null: never (the default)")
    set_by: str | None = Field(description="the key or person that set it")


def calendar_store(request: Request) -> CalendarStore | None:
    store: CalendarStore | None = getattr(request.app.state, "calendars", None)
    return store


def calendar_of(request: Request, tenant_id: str) -> Calendar:
    """The tenant's calendar; UTC and always open when it set none (or the app has no store).
    The app's store keeps what it read a few seconds (`CachedCalendars`)."""
    store = calendar_store(request)
    stored = store.get(tenant_id) if store is not None else None
    return stored.calendar if stored is not None else UTC_ALWAYS_OPEN


def zoned(seconds: int, zone: str) -> datetime:
    """An instant as the zone writes it (`2026-12-02T00:00:00+01:00`, a Madrid bucket's start):
    the same instant as in UTC, readable as the day it starts; UTC stays `Z`."""
    return datetime.fromtimestamp(seconds, UTC if zone == "UTC" else ZoneInfo(zone))


def zone_of(
    request: Request, tenant_id: str, tz: str | None, calendar: Calendar | None = None
) -> str:
    """The time zone buckets are drawn in: `tz` when given (422 if unknown), else the tenant's
    (from `calendar` when the caller read it already)."""
    if tz is None:
        return (calendar or calendar_of(request, tenant_id)).time_zone
    try:
        return check_zone(tz)
    except CalendarError as exc:
        message = f"tz: {exc}".replace("time_zone: ", "")
        detail = {"path": "query.tz", "code": "unknown_time_zone", "message": message}
        raise ApiError(422, "invalid_time_zone", message, [detail]) from None


def _out(stored: StoredCalendar | None) -> CalendarOut:
    calendar = stored.calendar if stored is not None else UTC_ALWAYS_OPEN
    return CalendarOut(
        **calendar.to_json(),
        always_open=calendar.always_open,
        set_at=stored.set_at if stored is not None else None,
        set_by=stored.set_by if stored is not None else None,
    )


@router.get(
    "/v1/settings/calendar",
    response_model=CalendarOut,
    summary="The tenant's time zone, opening hours and holidays",
    responses=_UNAVAILABLE,
)
def get_calendar(request: Request, principal: Reader) -> CalendarOut:
    store = calendar_store(request)
    return _out(store.get(principal.tenant_id) if store is not None else None)


@router.put(
    "/v1/settings/calendar",
    response_model=CalendarOut,
    summary="Set the tenant's time zone, opening hours and holidays (admins)",
    responses={**BODY_RESPONSES, **_UNAVAILABLE},
    openapi_extra=openapi_body(CalendarBody),
)
def put_calendar(
    request: Request,
    principal: Admin,
    body: Annotated[CalendarBody, Depends(json_body(CalendarBody, MAX_BODY_BYTES))],
) -> CalendarOut:
    store = calendar_store(request)
    if store is None:
        raise ApiError(503, "settings_unavailable", "this deployment keeps no tenant settings")
    given = body.model_dump(exclude_none=True, exclude={"always_open", "set_at", "set_by"})
    try:
        calendar = Calendar.from_json(given)
    except CalendarError as exc:
        detail = {"path": f"body.{exc.path}", "code": exc.code, "message": str(exc)}
        raise ApiError(422, "invalid_calendar", str(exc), [detail]) from None
    # Who: the key's id, or the person's email (a person's principal names it), as the page shows.
    stored = StoredCalendar(principal.tenant_id, calendar, now(request), principal.key_id)
    store.set(stored)
    return _out(stored)


TimeZoneQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        description="IANA time zone whose midnights start the day, week and month buckets; "
        "default: the tenant's calendar's (`GET /v1/settings/calendar`), else UTC",
        examples=["Europe/Madrid"],
    ),
]
