"""Per-event facts the satisfaction consumer keeps: survey responses, and the interactions they
rate.

Pure functions of one event (no I/O, clock or randomness), so a replay rebuilds identical rows.
"""

from __future__ import annotations

from typing import Any

from kernel.customer_key import customer_key
from kernel.processing import to_micros
from schemas.envelope import Event
from schemas.families import SurveyAnswered

SURVEY_ANSWERED = "survey.answered"
_SURVEY_PREFIX = "survey."
# Where a payload names the agent or queue handling the contact; a transfer hands it to the target.
_AGENT_FIELDS = ("agent", "to_agent")
_QUEUE_FIELDS = ("queue", "to_queue")

Row = dict[str, Any]


def is_survey_answer(event: Event) -> bool:
    return event.type == SURVEY_ANSWERED


def is_interaction(event: Event) -> bool:
    """A contact a survey can be about: any non-survey event that belongs to a conversation."""
    return bool(event.correlation_id) and not event.type.startswith(_SURVEY_PREFIX)


def to_response_row(event: Event, customer_id: str | None = None) -> Row:
    """One `survey_responses` row, filed under `customer_id` (default: the event's customer key).
    The payload is re-validated: a bad one becomes a dead letter."""
    answer = SurveyAnswered.model_validate(event.payload)
    return {
        "tenant_id": event.tenant_id,
        "event_id": str(event.event_id),
        "customer_id": customer_id or customer_key(event.customer),
        "survey_id": answer.survey_id or "",
        "kind": answer.kind,
        "score": answer.score,
        "scale": answer.scale or "",
        "touchpoint": event.touchpoint,
        "channel": event.channel.value,
        "correlation_id": event.correlation_id or "",
        "answered_at": to_micros(event.derived_at),
        "comment": answer.comment or "",
    }


def to_interaction_row(event: Event) -> Row:
    """One `interactions` row: where and by whom a conversation was handled at this event."""
    return {
        "tenant_id": event.tenant_id,
        "correlation_id": event.correlation_id or "",
        "event_id": str(event.event_id),
        "derived_at": to_micros(event.derived_at),
        "type": event.type,
        "touchpoint": event.touchpoint,
        "channel": event.channel.value,
        "agent": first_text(event.payload, _AGENT_FIELDS),
        "queue": first_text(event.payload, _QUEUE_FIELDS),
    }


def first_text(payload: dict[str, Any], fields: tuple[str, ...]) -> str:
    """The first non-empty string among `fields` of a payload; '' when none is present."""
    for name in fields:
        value = payload.get(name)
        if isinstance(value, str) and value:
            return value
    return ""
