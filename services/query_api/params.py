"""Query parameters every read route spells the same way.

- Instants: RFC 3339 with an offset, or a date alone (`2026-11-23`), read as midnight UTC.
- Repeated filters mean "any of": `channel=phone&channel=email`.
- Event types: exact (`call.ended`) or a prefix ending in `.*` (`call.*`: every `call.` type).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Query, Request
from pydantic import AwareDatetime, BeforeValidator, StringConstraints

from kernel.api_errors import ApiError
from services.projections.timeline import Cursor, InvalidCursor, Language, decode_cursor

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TYPE_FILTER_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$"
INSTANT_HELP = "RFC 3339 with an offset (2026-11-23T10:00:00Z), or a date: midnight UTC"


def _date_only_as_midnight_utc(value: Any) -> Any:
    if isinstance(value, str) and _DATE_ONLY.match(value):
        return f"{date.fromisoformat(value).isoformat()}T00:00:00Z"
    return value


TypeFilter = Annotated[str, StringConstraints(max_length=100, pattern=TYPE_FILTER_PATTERN)]
# A datetime, or a bare date read as midnight UTC; the route checks it carries an offset.
Moment = Annotated[datetime, BeforeValidator(_date_only_as_midnight_utc)]
# An aware instant; a bare date is midnight UTC of that day (a naive time stays an error: 422).
Instant = Annotated[AwareDatetime, BeforeValidator(_date_only_as_midnight_utc)]


# The language of a timeline entry's `summary`: English (the default) is the one stored with the
# event; `es` words it again from the stored payload (services/projections/timeline.py `worded`).
SummaryLanguage = Annotated[
    Language,
    Query(description="the language of each entry's `summary`: en (as stored, default) or es"),
]


def any_of(values: list[Any] | None) -> tuple[str, ...]:
    """Distinct filter values in the order given (enum members as their values)."""
    seen = dict.fromkeys(getattr(v, "value", v) for v in values or ())
    return tuple(str(v) for v in seen)


def invalid_cursor(message: str) -> ApiError:
    """The 422 for a `cursor` query parameter this API did not hand out."""
    detail = {"code": "invalid_cursor", "message": message, "path": "query.cursor"}
    return ApiError(422, "invalid_cursor", message, [detail])


def invalid_range() -> ApiError:
    """The 422 for a `since` at or after `until`, naming both parameters."""
    details = [
        {"code": "invalid_range", "message": "must be before until", "path": "query.since"},
        {"code": "invalid_range", "message": "must be after since", "path": "query.until"},
    ]
    return ApiError(422, "invalid_range", "since must be before until", details)


def ordered_range(since: datetime | None, until: datetime | None) -> None:
    """Refuses (`invalid_range`) a range with nothing in it: `since` at or after `until`. Either
    may be absent (open-ended); both are aware instants."""
    if since is not None and until is not None and since >= until:
        raise invalid_range()


def cursor_position(cursor: str) -> Cursor:
    """A page's `cursor` parameter as its position (a `timeline` cursor); 422 when invalid."""
    try:
        return decode_cursor(cursor)
    except InvalidCursor as exc:
        raise invalid_cursor(str(exc)) from None


__all__ = [
    "INSTANT_HELP",
    "TYPE_FILTER_PATTERN",
    "Instant",
    "Moment",
    "TypeFilter",
    "any_of",
    "cursor_position",
    "invalid_cursor",
    "invalid_range",
    "ordered_range",
]


def now(request: Request) -> datetime:
    """The app's clock when the composition root set one (tests control it), else the system's."""
    clock = getattr(request.app.state, "clock", None)
    current: datetime = clock.now() if clock is not None else datetime.now(UTC)
    return current.astimezone(UTC)
