"""Per-event facts the service metrics read: contacts, messages, transfers and surveys.

Pure functions of one event (no I/O, clock or randomness), so a replay rebuilds identical rows.
Every metric is aggregated from these facts when queried (`sql.py`), the way satisfaction
attribution is: a reply may arrive before the message it answers, and only a read-time
aggregate gives the same numbers for every arrival order.
"""

from __future__ import annotations

from typing import Any

from kernel.customer_key import customer_key
from kernel.processing import Rows, to_micros
from schemas.envelope import Event
from schemas.families import CallAnswered, CallEnded, CallOffered, Message, SurveySent

SERVICE_EVENTS_TABLE = "service_events"
CALL_ENDED = "call.ended"
# Telephony systems that report a call in steps give its queue, agent and wait on these rather
# than on `call.ended` (Twilio Voice's callbacks do): the metrics read them beside it.
CALL_OFFERED = "call.offered"
CALL_ANSWERED = "call.answered"
CALL_STEPS = (CALL_OFFERED, CALL_ANSWERED)
CALL_TRANSFERRED = "call.transferred"
SURVEY_SENT = "survey.sent"
SURVEY_ANSWERED = "survey.answered"
MESSAGE_TYPES = ("message.received", "message.sent")
# Email has no sender field: a customer's reply is inbound, a correlated send is the agent's answer.
EMAIL_SENDERS = {"email.replied": "customer", "email.sent": "agent"}
CONVERSATION_TYPES = (*MESSAGE_TYPES, *EMAIL_SENDERS)

Row = dict[str, Any]


def _base_row(event: Event, customer_id: str | None) -> Row:
    return {
        "tenant_id": event.tenant_id,
        "event_id": str(event.event_id),
        "customer_id": customer_id or customer_key(event.customer),
        "correlation_id": event.correlation_id or "",
        "type": event.type,
        "touchpoint": event.touchpoint,
        "channel": event.channel.value,
        "derived_at": to_micros(event.derived_at),
        "agent": "",
        "queue": "",
        "sender": "",
        "direction": "",
        "queue_wait_s": 0.0,
        "handle_s": 0.0,
        "abandoned": 0,
        "survey_id": "",
    }


def _call_ended(row: Row, event: Event) -> Row:
    call = CallEnded.model_validate(event.payload)
    return row | {
        "agent": call.agent or "",
        "queue": call.queue or "",
        "direction": call.direction,
        "queue_wait_s": call.queue_wait_s,
        # AHT (METRICS.md): talk + hold + wrap-up of one handled contact.
        "handle_s": call.talk_s + call.hold_s + call.wrap_s,
        "abandoned": int(call.abandoned),
    }


def _call_step(row: Row, event: Event) -> Row:
    """What an offered or answered call says of the call `call.ended` ends (same correlation
    id): its queue and direction, or its queue, agent and wait."""
    if event.type == CALL_OFFERED:
        offered = CallOffered.model_validate(event.payload)
        return row | {"queue": offered.queue, "direction": offered.direction}
    answered = CallAnswered.model_validate(event.payload)
    return row | {
        "queue": answered.queue or "",
        "agent": answered.agent,
        "queue_wait_s": answered.queue_wait_s,
    }


def _message(row: Row, event: Event) -> Row:
    message = Message.model_validate(event.payload)
    return row | {
        "sender": message.sender,
        "agent": message.agent or "",
        "queue": message.queue or "",
    }


def _survey(row: Row, event: Event) -> Row:
    survey_id = event.payload.get("survey_id")
    if event.type == SURVEY_SENT:
        survey_id = SurveySent.model_validate(event.payload).survey_id
    return row | {"survey_id": survey_id if isinstance(survey_id, str) else ""}


def to_service_rows(event: Event, customer_id: str | None = None) -> Rows:
    """The `service_events` row one event contributes, if it is one the metrics read."""
    row = _base_row(event, customer_id)
    if event.type == CALL_ENDED:
        return {SERVICE_EVENTS_TABLE: [_call_ended(row, event)]}
    if event.type in CALL_STEPS and event.correlation_id:
        return {SERVICE_EVENTS_TABLE: [_call_step(row, event)]}
    if event.type == CALL_TRANSFERRED and event.correlation_id:
        return {SERVICE_EVENTS_TABLE: [row]}
    if event.type in MESSAGE_TYPES and event.correlation_id:
        return {SERVICE_EVENTS_TABLE: [_message(row, event)]}
    if event.type in EMAIL_SENDERS and event.correlation_id:
        return {SERVICE_EVENTS_TABLE: [row | {"sender": EMAIL_SENDERS[event.type]}]}
    if event.type in (SURVEY_SENT, SURVEY_ANSWERED):
        return {SERVICE_EVENTS_TABLE: [_survey(row, event)]}
    return {}
