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
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field, ValidationError

from kernel.customer_key import customer_key
from kernel.processing import to_micros
from schemas import families as f
from schemas.envelope import Channel, Event
from schemas.families import parse_payload
from services.identity.rules import TenantRules
from services.projections.identifiers import event_identifiers

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
def to_timeline_rows(
    event: Event, customer_id: str | None = None, rules: TenantRules | None = None
) -> list[dict[str, Any]]:
    """The one timeline row of an event, filed under `customer_id` (default: its customer key),
    with the identifiers identity reads with the tenant's `rules` (`identifiers.py`)."""
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
            "identifiers": [f"{kind}:{value}" for kind, value in event_identifiers(event, rules)],
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


# The words of a summary in each language the console speaks. Titles are keyed by event type;
# `{}` takes a value (a duration, a name, an id) that is the same in every language. Free text the
# customer or an agent wrote (quotes, urls, titles, reasons, names) is never translated.
Language = Literal["en", "es"]  # what the API's `lang` takes: a key of `_WORDS` and `CHANNEL_NAMES`
_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "call.offered": "Call offered",
        "call.answered": "Call answered",
        "call.held": "Call on hold",
        "call.transferred": "Call transferred",
        "call.ended": "Call ended",
        "message.received": "Message received",
        "message.sent": "Message sent",
        "email.sent": "Email sent",
        "email.delivered": "Email delivered",
        "email.opened": "Email opened",
        "email.clicked": "Email link clicked",
        "email.bounced": "Email bounced",
        "email.replied": "Email reply",
        "page.viewed": "Page viewed",
        "action.performed": "Action",
        "order.placed": "Order placed",
        "order.returned": "Order returned",
        "store.visited": "Store visit",
        "store.purchased": "Store purchase",
        "case.opened": "Case opened",
        "case.resolved": "Case resolved",
        "case.reopened": "Case reopened",
        "survey.sent": "{} survey sent",
        "survey.answered": "{} {}/{}",
        "survey.sent:title": "Survey sent",
        "survey.answered:title": "Survey answered",
        "alert.assigned": "Alert assigned",
        "alert.acknowledged": "Alert acknowledged",
        "alert.resolved": "Alert resolved",
        "customer.erased": "Personal data erased",
        "call_abandoned": "Call abandoned",
        "queue": "queue {}",
        "agent": "agent {}",
        "agent_sender": "agent",
        "bot": "bot",
        "outbound": "outbound",
        "waited": "waited {}",
        "hold": "{} hold",
        "talk": "{} talk",
        "resolved": "resolved",
        "not_resolved": "not resolved",
        "from": "from {}",
        "to": "to {}",
        "by": "by {}",
        "campaign": "campaign {}",
        "hard_bounce": "hard bounce",
        "soft_bounce": "soft bounce",
        "item": "{} item",
        "items": "{} items",
        "order": "order {}",
        "store": "store {}",
        "case": "case {}",
        "priority_low": "low priority",
        "priority_high": "high priority",
        "priority_urgent": "urgent priority",
    },
    "es": {
        "call.offered": "Llamada ofrecida",
        "call.answered": "Llamada atendida",
        "call.held": "Llamada en espera",
        "call.transferred": "Llamada transferida",
        "call.ended": "Llamada finalizada",
        "message.received": "Mensaje recibido",
        "message.sent": "Mensaje enviado",
        "email.sent": "Correo enviado",
        "email.delivered": "Correo entregado",
        "email.opened": "Correo abierto",
        "email.clicked": "Enlace del correo pulsado",
        "email.bounced": "Correo rebotado",
        "email.replied": "Respuesta por correo",
        "page.viewed": "Página vista",
        "action.performed": "Acción",
        "order.placed": "Pedido realizado",
        "order.returned": "Pedido devuelto",
        "store.visited": "Visita a tienda",
        "store.purchased": "Compra en tienda",
        "case.opened": "Caso abierto",
        "case.resolved": "Caso resuelto",
        "case.reopened": "Caso reabierto",
        "survey.sent": "Encuesta {} enviada",
        "survey.answered": "{} {}/{}",
        "survey.sent:title": "Encuesta enviada",
        "survey.answered:title": "Encuesta respondida",
        "alert.assigned": "Alerta asignada",
        "alert.acknowledged": "Alerta recibida",
        "alert.resolved": "Alerta resuelta",
        "customer.erased": "Datos personales borrados",
        "call_abandoned": "Llamada abandonada",
        "queue": "cola {}",
        "agent": "agente {}",
        "agent_sender": "agente",
        "bot": "bot",
        "outbound": "saliente",
        "waited": "esperó {}",
        "hold": "{} en espera",
        "talk": "{} de conversación",
        "resolved": "resuelta",
        "not_resolved": "no resuelta",
        "from": "de {}",
        "to": "a {}",
        "by": "por {}",
        "campaign": "campaña {}",
        "hard_bounce": "rebote permanente",
        "soft_bounce": "rebote temporal",
        "item": "{} artículo",
        "items": "{} artículos",
        "order": "pedido {}",
        "store": "tienda {}",
        "case": "caso {}",
        "priority_low": "prioridad baja",
        "priority_high": "prioridad alta",
        "priority_urgent": "prioridad urgente",
    },
}

# A channel's name, where a page or a summary names it (the console's icons, filters, header;
# a summary whose touchpoint is its channel's name).
CHANNEL_NAMES: dict[str, dict[str, str]] = {
    "en": {
        "web": "web",
        "mobile_app": "mobile app",
        "email": "email",
        "phone": "phone",
        "chat": "chat",
        "sms": "SMS",
        "social": "social",
        "store": "store",
        "survey": "survey",
        "other": "other",
    },
    "es": {
        "web": "web",
        "mobile_app": "app móvil",
        "email": "correo",
        "phone": "teléfono",
        "chat": "chat",
        "sms": "SMS",
        "social": "redes sociales",
        "store": "tienda",
        "survey": "encuesta",
        "other": "otro",
    },
}


@dataclass(frozen=True)
class _Say:
    """The words of one language: `say(key, value)` fills the key's `{}`."""

    lang: Language

    def __call__(self, key: str, *values: object) -> str:
        return _WORDS[self.lang][key].format(*values)

    def labelled(self, key: str, value: str | None) -> str:
        return self(key, value) if value else ""

    def items(self, count: int) -> str:
        return self("item" if count == 1 else "items", count)


Parts = Callable[[Any, _Say], list[str]]


def _call_offered(p: f.CallOffered, say: _Say) -> list[str]:
    return [
        say("call.offered"),
        say.labelled("queue", p.queue),
        say("outbound") if p.direction == "outbound" else "",
    ]


def _call_answered(p: f.CallAnswered, say: _Say) -> list[str]:
    waited = say("waited", duration(p.queue_wait_s)) if p.queue_wait_s else ""
    return [say("call.answered"), say.labelled("agent", p.agent), waited]


def _call_held(p: f.CallHeld, say: _Say) -> list[str]:
    return [say("call.held"), say("hold", duration(p.hold_s)), say.labelled("agent", p.agent)]


def _call_transferred(p: f.CallTransferred, say: _Say) -> list[str]:
    return [
        say("call.transferred"),
        say.labelled("from", p.from_agent),
        say.labelled("to", p.to_agent or p.to_queue),
    ]


def _call_ended(p: f.CallEnded, say: _Say) -> list[str]:
    if p.abandoned:
        waited = say("waited", duration(p.queue_wait_s))
        return [say("call_abandoned"), waited, say.labelled("queue", p.queue)]
    outcome = {True: say("resolved"), False: say("not_resolved"), None: ""}[p.resolved]
    talk = say("talk", duration(p.talk_s))
    return [say("call.ended"), talk, say.labelled("agent", p.agent), outcome]


def _message(event_type: str) -> Parts:
    def parts(p: f.Message, say: _Say) -> list[str]:
        agent = say.labelled("agent", p.agent) or say("agent_sender")
        who = {"customer": "", "bot": say("bot"), "agent": agent}
        return [say(event_type), who[p.sender], quote(p.text)]

    return parts


def _email(event_type: str) -> Parts:
    return lambda p, say: [
        say(event_type),
        quote(p.subject) or say.labelled("campaign", p.campaign),
    ]


def _email_clicked(p: f.EmailClicked, say: _Say) -> list[str]:
    return [say("email.clicked"), p.url]


def _email_bounced(p: f.EmailBounced, say: _Say) -> list[str]:
    bounce = say("hard_bounce") if p.hard else say("soft_bounce")
    return [say("email.bounced"), bounce, p.reason or ""]


def _email_replied(p: f.EmailReplied, say: _Say) -> list[str]:
    return [say("email.replied"), quote(p.text) or quote(p.subject)]


def _order(event_type: str) -> Parts:
    return lambda p, say: [
        say(event_type),
        money(p.amount, p.currency),
        say.items(p.items),
        say("order", p.order_id),
    ]


def _order_returned(p: f.OrderReturned, say: _Say) -> list[str]:
    order = say("order", p.order_id)
    paid_back = "" if p.currency == f.NO_CURRENCY else money(p.amount, p.currency)
    return [say("order.returned"), paid_back, order, p.reason or ""]


def _store_purchased(p: f.StorePurchased, say: _Say) -> list[str]:
    store = say("store", p.store_id)
    return [say("store.purchased"), money(p.amount, p.currency), say.items(p.items), store]


def _case_opened(p: f.CaseOpened, say: _Say) -> list[str]:
    priority = say(f"priority_{p.priority}") if p.priority != "normal" else ""
    about = quote(p.subject) or p.topic or ""
    return [say("case.opened"), say("case", p.case_id), about, priority]


def _case_resolved(p: f.CaseResolved, say: _Say) -> list[str]:
    return [say("case.resolved"), say("case", p.case_id), quote(p.resolution)]


def _survey_answered(p: f.SurveyAnswered, say: _Say) -> list[str]:
    high = f.SCALES[p.kind][1]
    return [say("survey.answered", p.kind.upper(), p.score, high), quote(p.comment)]


def _alert(event_type: str, label: str, who: str) -> Parts:
    return lambda p, say: [
        say(event_type),
        say.labelled(label, _person(getattr(p, who))),
        quote(p.note),
    ]


def _person(actor: str | None) -> str | None:
    """Who acted as an agent reads it: a person signed in by their email (`user:ana@x.es`, a
    browser review read the code), a key by its id."""
    if actor and actor.startswith("user:") and "@" in actor:
        return actor.removeprefix("user:")
    return actor


_SUMMARIES: dict[str, Parts] = {
    "call.offered": _call_offered,
    "call.answered": _call_answered,
    "call.held": _call_held,
    "call.transferred": _call_transferred,
    "call.ended": _call_ended,
    "message.received": _message("message.received"),
    "message.sent": _message("message.sent"),
    "email.sent": _email("email.sent"),
    "email.delivered": _email("email.delivered"),
    "email.opened": _email("email.opened"),
    "email.clicked": _email_clicked,
    "email.bounced": _email_bounced,
    "email.replied": _email_replied,
    "page.viewed": lambda p, say: [say("page.viewed"), p.title or p.url],
    "action.performed": lambda p, say: [say("action.performed"), p.name],
    "order.placed": _order("order.placed"),
    "order.returned": _order_returned,
    "store.visited": lambda p, say: [say("store.visited"), say("store", p.store_id)],
    "store.purchased": _store_purchased,
    "case.opened": _case_opened,
    "case.resolved": _case_resolved,
    "case.reopened": lambda p, say: [say("case.reopened"), say("case", p.case_id)],
    "survey.sent": lambda p, say: [say("survey.sent", p.kind.upper())],
    "survey.answered": _survey_answered,
    "alert.assigned": _alert("alert.assigned", "to", "assignee"),
    "alert.acknowledged": _alert("alert.acknowledged", "by", "actor"),
    "alert.resolved": _alert("alert.resolved", "by", "actor"),
    "customer.erased": lambda p, say: [say("customer.erased"), say.labelled("by", p.actor)],
}


def type_titles(lang: str) -> dict[str, str]:
    """Each event type the timeline words, with its name in `lang` (English for a language it
    does not speak). The console's type filter offers them; a type whose line takes values, a
    survey's, has a title of its own."""
    words = _WORDS.get(lang, _WORDS["en"])
    return {kind: words.get(f"{kind}:title", words[kind]) for kind in _SUMMARIES}


def _line(event_type: str, channel: str, touchpoint: str, payload: Any, lang: Language) -> str:
    say = _Say(lang)
    parts = _SUMMARIES.get(event_type, lambda _, __: [event_type])(payload, say)
    # An event sent without a touchpoint has its channel's code there: named in the language
    # (English keeps the code, as every summary stored so far has it).
    named = CHANNEL_NAMES[lang].get(channel, channel)
    where = named if touchpoint == channel and lang != "en" else touchpoint
    return _SEP.join(clip(p) for p in [parts[0], where, *parts[1:]] if p)


def summarise(event: Event, lang: Language = "en") -> str:
    """A short human-readable line: what happened · where · the details an agent needs first.
    The English one is stored with the event's timeline row (the API's default)."""
    payload = parse_payload(event.type, event.payload)
    return _line(event.type, event.channel.value, event.touchpoint, payload, lang)


def worded(entry: TimelineEntry, lang: Language) -> TimelineEntry:
    """The entry with its summary in `lang`, worded again from its payload at read time (no
    stored column per language: every page, older page and stream message words it the same).
    English is the stored summary; an entry whose payload no longer parses keeps it too."""
    if lang == "en":
        return entry
    try:
        payload = parse_payload(entry.type, entry.payload)
    except (KeyError, ValidationError):
        return entry
    summary = _line(entry.type, entry.channel, entry.touchpoint, payload, lang)
    return entry.model_copy(update={"summary": summary})


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
