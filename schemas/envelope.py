"""The v1 event envelope: what a channel system sends (`EventIn`) and what the log stores (`Event`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# How far ahead of the server clock a corrected timestamp may be before it is absurd.
MAX_FUTURE = timedelta(hours=1)
_SECONDS_LIMIT = 10**11  # below this a number is epoch seconds (until year 5138)
_MILLIS_LIMIT = 10**14  # below this (and above the seconds limit) it is epoch milliseconds
_RFC3339_START = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


class Channel(StrEnum):
    web = "web"
    mobile_app = "mobile_app"
    email = "email"
    phone = "phone"
    chat = "chat"
    sms = "sms"
    social = "social"
    store = "store"
    survey = "survey"
    other = "other"


def _no_control_chars(value: str) -> str:
    # NUL and lone surrogates cannot be stored byte-identically in every engine: reject them.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode (no lone surrogates)") from exc
    return value


SafeStr = Annotated[
    str, BeforeValidator(lambda v: _no_control_chars(v) if isinstance(v, str) else v)
]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _no_control_in_id(value: Any) -> Any:
    # An id holding a newline or another control character is stored, then unreachable: no URL,
    # form or console search can type it back. Free text (messages, comments) may hold them.
    if isinstance(value, str) and _CONTROL.search(value):
        raise ValueError("must not contain control characters (U+0000-U+001F, U+007F-U+009F)")
    return value


IdStr = Annotated[SafeStr, BeforeValidator(_no_control_in_id)]
"""Text that names something (an id, an email, a queue): safe, and without control characters."""
NAME_MAX = 200
Name = Annotated[IdStr, StringConstraints(min_length=1, max_length=NAME_MAX)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$")]
EventType = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$", max_length=100)
]


def parse_timestamp(value: Any) -> Any:
    """Normalise a timestamp by the documented rule.

    Strings are RFC 3339 and must carry a UTC offset. Numbers are epoch time: below 1e11 seconds,
    below 1e14 milliseconds; anything larger is rejected.
    """
    if isinstance(value, bool):
        raise ValueError("must be an RFC 3339 string or an epoch number")
    if isinstance(value, int | float):
        if abs(value) >= _MILLIS_LIMIT:
            raise ValueError("epoch number too large: use seconds or milliseconds")
        seconds = value if abs(value) < _SECONDS_LIMIT else value / 1000
        return datetime.fromtimestamp(seconds, tz=UTC)
    if isinstance(value, str):
        value = _no_control_chars(value)
        if not _RFC3339_START.match(value):
            raise ValueError("must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z")
    return value


def require_aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must include a UTC offset (naive timestamps are ambiguous)")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC: no datetime holds it
        raise ValueError("is outside the years 0001 to 9999 once converted to UTC") from None


Timestamp = Annotated[datetime, BeforeValidator(parse_timestamp)]


def _blank_is_absent(value: Any) -> Any:
    # CRMs and forms send "" or spaces for a field nobody filled in: that is no identifier.
    return None if isinstance(value, str) and not value.strip() else value


class CustomerRef(BaseModel):
    """Identifiers of the customer; at least one is required (blank ones count as absent)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    _blank = field_validator("customer_id", "email", "phone", "anonymous_id", mode="before")(
        lambda cls, v: _blank_is_absent(v)
    )

    customer_id: Name | None = None
    # Emails and phones are kept as sent, whatever their spelling: identity normalises them, and
    # one it cannot read (`no tiene`, a placeholder) is ignored with a note, so the touchpoint is
    # never lost for it (RELIABILITY D01). Only the size is bounded here.
    email: Annotated[SafeStr, StringConstraints(max_length=320)] | None = None
    phone: Annotated[SafeStr, StringConstraints(max_length=40)] | None = None
    anonymous_id: Name | None = None
    external_ids: dict[Slug, Name] = Field(default_factory=dict, max_length=20)

    @model_validator(mode="after")
    def _at_least_one(self) -> CustomerRef:
        if not (
            self.customer_id or self.email or self.phone or self.anonymous_id or self.external_ids
        ):
            raise ValueError(
                "needs at least one identifier: customer_id, email, phone, anonymous_id or external_ids"
            )
        return self


class EventIn(BaseModel):
    """An event as a channel system sends it. Server-owned fields are not accepted here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID
    source_id: Slug = "http"
    channel: Channel
    type: EventType
    touchpoint: Slug | None = None
    customer: CustomerRef
    occurred_at: Timestamp
    sent_at: Timestamp | None = None
    correlation_id: Name | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    schema_version: Literal[1] = 1

    _aware = field_validator("occurred_at", "sent_at")(
        lambda cls, v: require_aware(v) if v is not None else v
    )


class Event(BaseModel):
    """An accepted event as stored in the log: the envelope plus server-owned fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID
    tenant_id: Slug
    source_id: Slug
    channel: Channel
    type: EventType
    touchpoint: Slug
    customer: CustomerRef
    occurred_at: datetime
    sent_at: datetime | None = None
    received_at: datetime
    derived_at: datetime
    clock_corrected: bool = False
    correlation_id: Name | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    schema_version: Literal[1] = 1


def derive_time(occurred_at: datetime, sent_at: datetime | None, received_at: datetime) -> datetime:
    """derived_at = received_at − (sent_at − occurred_at) when sent_at is given, else occurred_at."""
    if sent_at is None:
        return occurred_at
    return received_at - (sent_at - occurred_at)
