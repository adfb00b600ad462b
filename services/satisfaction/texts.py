"""What customers write, and its sentiment: one `text_sentiment` row per event carrying a text of
the customer's own.

Texts of the customer: a chat, SMS or social message sent by the customer (`message.received` or
`message.sent` with `sender = customer`), an email reply (`email.replied`), and a survey comment
(`survey.answered`). Agent and bot messages are not the customer's; call transcripts mix both
speakers and are left out. The text itself is not copied: the log keeps it; the row keeps its
sentiment, with the model and version that scored it.

Pure: a row is a function of the event (the scorer is deterministic), so a replay rebuilds it.
"""

from __future__ import annotations

from typing import Any

from kernel.customer_key import customer_key
from kernel.processing import to_micros
from schemas.envelope import Event
from services.satisfaction import sentiment

TEXT_SENTIMENT_TABLE = "text_sentiment"
# Event type → the payload field holding what the customer wrote.
TEXT_FIELDS = {
    "message.received": "text",
    "message.sent": "text",
    "email.replied": "text",
    "survey.answered": "comment",
}
_MESSAGES = ("message.received", "message.sent")

Row = dict[str, Any]


def customer_text(event: Event) -> tuple[str, str] | None:
    """(field, text) when the event carries a non-blank text the customer wrote, else None."""
    field = TEXT_FIELDS.get(event.type)
    if field is None:
        return None
    if (
        event.type in _MESSAGES
        and event.payload.get("sender", _default_sender(event)) != "customer"
    ):
        return None
    text = event.payload.get(field)
    if not isinstance(text, str) or not text.strip():
        return None
    return field, text


def _default_sender(event: Event) -> str:
    # The families' defaults: a received message is the customer's, a sent one the agent's.
    return "customer" if event.type == "message.received" else "agent"


def to_sentiment_rows(event: Event, customer_id: str | None = None) -> dict[str, list[Row]]:
    """The `text_sentiment` row of an event with a customer's text; nothing for other events."""
    found = customer_text(event)
    if found is None:
        return {}
    field, text = found
    scored = sentiment.trusted_score(text)
    if scored is None:  # a language without a model that meets the goal: left unscored
        return {}
    row: Row = {
        "tenant_id": event.tenant_id,
        "event_id": str(event.event_id),
        "customer_id": customer_id or customer_key(event.customer),
        "type": event.type,
        "field": field,
        "touchpoint": event.touchpoint,
        "channel": event.channel.value,
        "correlation_id": event.correlation_id or "",
        "written_at": to_micros(event.derived_at),
        "language": scored.language,
        "label": scored.label,
        "score": scored.score,
        "model": scored.model,
        "model_version": scored.model_version,
    }
    return {TEXT_SENTIMENT_TABLE: [row]}
