"""The customer timeline: one row per event, newest first, with a one-line summary for agents.

Pure: rows, summaries, cursors and filters. The SQL that stores and pages them is in `sql.py`.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from pydantic import BaseModel, Field

from kernel.customer_key import customer_key, event_identifiers
from kernel.processing import to_micros
from schemas import families as f
from schemas.envelope import Channel, Event
from schemas.families import parse_payload

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_PAGE = 50
MAX_PAGE = 500
_QUOTE_CHARS = 60
_PART_CHARS = 80
_SEP = " · "
_CENT = Decimal("0.01")


def from_micros(micros: int) -> datetime:
    """The inverse of `kernel.processing.to_micros`; exact, unlike a float division."""
    return EPOCH + timedelta(microseconds=micros)


# --- rows ------------------------------------------------------------------------------------
def to_timeline_rows(event: Event, customer_id: str | None = None) -> list[dict[str, Any]]:
    """The one timeline row of an event, filed under `customer_id` (default: its customer key)."""
    return [
        {
            "tenant_id": event.tenant_id,
            "customer_id": customer_id or customer_key(event.customer),
            "derived_at": to_micros(event.derived_at),
            "event_id": str(event.event_id),
            "channel": event.channel.value,
            "type": event.type,
            "touchpoint": event.touchpoint,
            "source_id": event.source_id,
            "correlation_id": event.correlation_id or "",
            "occurred_at": to_micros(event.occurred_at),
            "received_at": to_micros(event.received_at),
            "clock_corrected": int(event.clock_corrected),
            "summary": summarise(event),
            # Sorted keys: a replayed event yields byte-identical rows (F13).
            "payload_json": orjson.dumps(event.payload, option=orjson.OPT_SORT_KEYS).decode(),
            "identifiers": [f"{kind}:{value}" for kind, value in event_identifiers(event)],
        }
    ]


# --- summaries -------------------------------------------------------------------------------
def duration(seconds: float) -> str:
    """7m12s, 45s, 1h02m: compact enough for a one-line summary."""
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    return f"{total // 3600}h{total % 3600 // 60:02d}m"


def clip(text: str | None, limit: int = _PART_CHARS) -> str:
    """Free text on one line, cut with an ellipsis past the limit (urls and titles run long)."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def quote(text: str | None) -> str:
    """A short quotation of free text; empty when there is no text."""
    flat = clip(text, _QUOTE_CHARS)
    return f"“{flat}”" if flat else ""


def amount_text(amount: Decimal) -> str:
    """An exact decimal with at least cents and no trailing zeros beyond: 129.90, 0.1234, -3.00."""
    cents = amount.quantize(_CENT)
    return f"{cents if cents == amount else amount.normalize():f}"


def money(amount: Decimal, currency: str) -> str:
    return f"{amount_text(amount)} {currency}"


def _items(count: int) -> str:
    return f"{count} item" if count == 1 else f"{count} items"


def _labelled(label: str, value: str | None) -> str:
    return f"{label} {value}" if value else ""


def _call_offered(p: f.CallOffered) -> list[str]:
    return [
        "Call offered",
        _labelled("queue", p.queue),
        "outbound" if p.direction == "outbound" else "",
    ]


def _call_answered(p: f.CallAnswered) -> list[str]:
    waited = f"waited {duration(p.queue_wait_s)}" if p.queue_wait_s else ""
    return ["Call answered", _labelled("agent", p.agent), waited]


def _call_held(p: f.CallHeld) -> list[str]:
    return ["Call on hold", f"{duration(p.hold_s)} hold", _labelled("agent", p.agent)]


def _call_transferred(p: f.CallTransferred) -> list[str]:
    return [
        "Call transferred",
        _labelled("from", p.from_agent),
        _labelled("to", p.to_agent or p.to_queue),
    ]


def _call_ended(p: f.CallEnded) -> list[str]:
    if p.abandoned:
        return ["Call abandoned", f"waited {duration(p.queue_wait_s)}", _labelled("queue", p.queue)]
    outcome = {True: "resolved", False: "not resolved", None: ""}[p.resolved]
    return ["Call ended", f"{duration(p.talk_s)} talk", _labelled("agent", p.agent), outcome]


def _message(title: str) -> Callable[[f.Message], list[str]]:
    def parts(p: f.Message) -> list[str]:
        who = {"customer": "", "bot": "bot", "agent": _labelled("agent", p.agent) or "agent"}
        return [title, who[p.sender], quote(p.text)]

    return parts


def _email(title: str) -> Callable[[f.Email], list[str]]:
    return lambda p: [title, quote(p.subject) or _labelled("campaign", p.campaign)]


def _email_clicked(p: f.EmailClicked) -> list[str]:
    return ["Email link clicked", p.url]


def _email_bounced(p: f.EmailBounced) -> list[str]:
    return ["Email bounced", "hard bounce" if p.hard else "soft bounce", p.reason or ""]


def _email_replied(p: f.EmailReplied) -> list[str]:
    return ["Email reply", quote(p.text) or quote(p.subject)]


def _order(title: str) -> Callable[[f.Order], list[str]]:
    return lambda p: [title, money(p.amount, p.currency), _items(p.items), f"order {p.order_id}"]


def _order_returned(p: f.OrderReturned) -> list[str]:
    return ["Order returned", money(p.amount, p.currency), f"order {p.order_id}", p.reason or ""]


def _store_purchased(p: f.StorePurchased) -> list[str]:
    return ["Store purchase", money(p.amount, p.currency), _items(p.items), f"store {p.store_id}"]


def _case_opened(p: f.CaseOpened) -> list[str]:
    priority = f"{p.priority} priority" if p.priority != "normal" else ""
    return ["Case opened", f"case {p.case_id}", quote(p.subject) or p.topic or "", priority]


def _case_resolved(p: f.CaseResolved) -> list[str]:
    return ["Case resolved", f"case {p.case_id}", quote(p.resolution)]


def _survey_answered(p: f.SurveyAnswered) -> list[str]:
    high = f.SCALES[p.kind][1]
    return [f"{p.kind.upper()} {p.score}/{high}", quote(p.comment)]


_SUMMARIES: dict[str, Callable[[Any], list[str]]] = {
    "call.offered": _call_offered,
    "call.answered": _call_answered,
    "call.held": _call_held,
    "call.transferred": _call_transferred,
    "call.ended": _call_ended,
    "message.received": _message("Message received"),
    "message.sent": _message("Message sent"),
    "email.sent": _email("Email sent"),
    "email.delivered": _email("Email delivered"),
    "email.opened": _email("Email opened"),
    "email.clicked": _email_clicked,
    "email.bounced": _email_bounced,
    "email.replied": _email_replied,
    "page.viewed": lambda p: ["Page viewed", p.title or p.url],
    "action.performed": lambda p: ["Action", p.name],
    "order.placed": _order("Order placed"),
    "order.returned": _order_returned,
    "store.visited": lambda p: ["Store visit", f"store {p.store_id}"],
    "store.purchased": _store_purchased,
    "case.opened": _case_opened,
    "case.resolved": _case_resolved,
    "case.reopened": lambda p: ["Case reopened", f"case {p.case_id}"],
    "survey.sent": lambda p: [f"{p.kind.upper()} survey sent"],
    "survey.answered": _survey_answered,
    "alert.assigned": lambda p: ["Alert assigned", _labelled("to", p.assignee), quote(p.note)],
    "alert.acknowledged": lambda p: ["Alert acknowledged", _labelled("by", p.actor), quote(p.note)],
    "alert.resolved": lambda p: ["Alert resolved", _labelled("by", p.actor), quote(p.note)],
}


def summarise(event: Event) -> str:
    """A short human-readable line: what happened · where · the details an agent needs first."""
    parts = _SUMMARIES.get(event.type, lambda _: [event.type])(
        parse_payload(event.type, event.payload)
    )
    return _SEP.join(clip(p) for p in [parts[0], event.touchpoint, *parts[1:]] if p)


# --- cursors ---------------------------------------------------------------------------------
class InvalidCursor(ValueError):
    """A cursor that this API did not hand out."""


@dataclass(frozen=True)
class Cursor:
    """The position after which the next (older) page starts: the last row's sort key."""

    derived_at: int
    event_id: str


def encode_cursor(cursor: Cursor) -> str:
    raw = f"1:{cursor.derived_at}:{cursor.event_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """Parse an opaque cursor; raises InvalidCursor for anything this API did not produce."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        version, micros, event_id = raw.split(":")
        if version != "1":
            raise ValueError(version)
        return Cursor(_int64(micros), str(uuid.UUID(event_id)))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor("invalid cursor: pass next_cursor from a previous page") from exc


def _int64(text: str) -> int:
    # The warehouse compares it as an Int64: a wider number would wrap around there.
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError("cursor position outside the 64-bit range")
    return value


# --- pages -----------------------------------------------------------------------------------
class InvalidFilter(ValueError):
    """A timeline filter that can match nothing by construction."""


@dataclass(frozen=True)
class TimelineFilter:
    """What a timeline page is restricted to; times are epoch micros, since inclusive, until not.
    Each tuple means "any of" (empty: no restriction); a type matches one of `types` exactly or
    starts with one of `type_prefixes` (`call.` from the filter `call.*`)."""

    channels: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    type_prefixes: tuple[str, ...] = ()
    since: int | None = None
    until: int | None = None

    @classmethod
    def of(
        cls,
        channels: Sequence[Channel | str] = (),
        types: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> TimelineFilter:
        """From request values: `types` may hold prefixes written `call.*`."""
        if since is not None and until is not None and since >= until:
            raise InvalidFilter("since must be earlier than until")
        return cls(
            tuple(dict.fromkeys(getattr(c, "value", c) for c in channels)),
            tuple(dict.fromkeys(t for t in types if not t.endswith(".*"))),
            tuple(dict.fromkeys(t[:-1] for t in types if t.endswith(".*"))),
            to_micros(since) if since else None,
            to_micros(until) if until else None,
        )


class TimelineEntry(BaseModel):
    """One event on a customer's timeline."""

    event_id: str
    derived_at: datetime = Field(description="when it happened, corrected for device clock skew")
    occurred_at: datetime
    received_at: datetime
    clock_corrected: bool
    channel: str
    type: str
    touchpoint: str
    source_id: str
    correlation_id: str | None
    summary: str
    payload: dict[str, Any]
    identifiers: list[str] = Field(description="the customer identifiers the event carried")
    repeat_of: str | None = Field(
        default=None,
        description="on a contact that came within 7 days after an earlier contact "
        "(repeat_contact@1, docs/metrics.md): the earlier contact's event id, which may be on "
        "another page; set on timeline pages, the live stream and the export",
    )


class TimelinePage(BaseModel):
    """A page of a timeline, newest first; pass next_cursor back to get the next (older) page."""

    entries: list[TimelineEntry]
    next_cursor: str | None
    stream_cursor: str | None = Field(
        default=None,
        description="on the first page: pass as `last_event_id` to "
        "GET /v1/customers/{customer_id}/stream to receive every event stored after this page "
        "was read, none missed in between (entries the page already holds may come again)",
    )


def entry_from_row(row: dict[str, Any]) -> TimelineEntry:
    return TimelineEntry(
        event_id=row["event_id"],
        derived_at=from_micros(row["derived_at"]),
        occurred_at=from_micros(row["occurred_at"]),
        received_at=from_micros(row["received_at"]),
        clock_corrected=bool(row["clock_corrected"]),
        channel=row["channel"],
        type=row["type"],
        touchpoint=row["touchpoint"],
        source_id=row["source_id"],
        correlation_id=row["correlation_id"] or None,
        summary=row["summary"],
        payload=orjson.loads(row["payload_json"]),
        identifiers=list(row["identifiers"]),
    )


def page_from_rows(rows: Sequence[dict[str, Any]], limit: int) -> TimelinePage:
    """Rows come newest first, one more than the page when there is a next page."""
    page = list(rows[:limit])
    more = len(rows) > limit and bool(page)
    cursor = Cursor(page[-1]["derived_at"], page[-1]["event_id"]) if more else None
    return TimelinePage(
        entries=[entry_from_row(r) for r in page],
        next_cursor=encode_cursor(cursor) if cursor else None,
    )
