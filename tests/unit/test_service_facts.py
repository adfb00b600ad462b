"""The facts the service metrics read: one pure row per contact, message, transfer or survey."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from kernel.processing import to_micros
from schemas.envelope import Event
from schemas.validate import accept
from services.service_metrics.facts import SERVICE_EVENTS_TABLE, to_service_rows

RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def event(**fields: Any) -> Event:
    raw = {
        "event_id": str(uuid.uuid4()),
        "customer": {"customer_id": "cust-1"},
        "occurred_at": "2026-03-01T10:00:00Z",
        **fields,
    }
    return accept(raw, "acme", RECEIVED)[0]


def only_row(e: Event, customer_id: str | None = None) -> dict[str, Any]:
    (row,) = to_service_rows(e, customer_id)[SERVICE_EVENTS_TABLE]
    return row


def test_a_call_ended_keeps_wait_handle_time_and_abandonment() -> None:
    ended = event(
        channel="phone",
        type="call.ended",
        touchpoint="support_line",
        correlation_id="call-7",
        payload={"agent": "ann", "queue": "billing", "queue_wait_s": 12.5, "talk_s": 300,
                 "hold_s": 20, "wrap_s": 30},
    )  # fmt: skip
    row = only_row(ended, "filed-1")
    assert row["customer_id"] == "filed-1"
    assert (row["agent"], row["queue"], row["direction"]) == ("ann", "billing", "inbound")
    assert (row["queue_wait_s"], row["handle_s"], row["abandoned"]) == (12.5, 350.0, 0)
    assert row["derived_at"] == to_micros(ended.derived_at)


def test_a_call_in_steps_keeps_what_its_offer_and_answer_say() -> None:
    # Twilio's callbacks and many telephony systems give the queue, the agent and the wait on
    # these steps, not on the end (a review found them ignored: no queue, agent or wait).
    offered = event(channel="phone", type="call.offered", correlation_id="call-8",
                    payload={"queue": "sales", "direction": "outbound"})  # fmt: skip
    answered = event(channel="phone", type="call.answered", correlation_id="call-8",
                     payload={"queue": "sales", "agent": "pedro", "queue_wait_s": 60})  # fmt: skip
    first, then = only_row(offered), only_row(answered)
    assert (first["type"], first["queue"], first["direction"]) == (
        "call.offered",
        "sales",
        "outbound",
    )
    assert (then["queue"], then["agent"], then["queue_wait_s"]) == ("sales", "pedro", 60.0)
    assert (first["handle_s"], then["handle_s"], then["abandoned"]) == (0.0, 0.0, 0)


def test_messages_keep_who_wrote_them_and_email_has_a_fixed_sender() -> None:
    bot = event(channel="chat", type="message.sent", correlation_id="c", payload={"sender": "bot"})
    inbound = event(channel="sms", type="message.received", correlation_id="c", payload={})
    replied = event(channel="email", type="email.replied", correlation_id="c",
                    payload={"message_id": "m"})  # fmt: skip
    sent = event(
        channel="email", type="email.sent", correlation_id="c", payload={"message_id": "m"}
    )
    senders = [only_row(e)["sender"] for e in (bot, inbound, replied, sent)]
    assert senders == ["bot", "customer", "customer", "agent"]


def test_surveys_keep_their_survey_id() -> None:
    sent = event(channel="email", type="survey.sent", payload={"survey_id": "s-1", "kind": "nps"})
    answered = event(channel="survey", type="survey.answered",
                     payload={"survey_id": "s-1", "kind": "nps", "score": 9})  # fmt: skip
    assert [only_row(e)["survey_id"] for e in (sent, answered)] == ["s-1", "s-1"]


@pytest.mark.parametrize(
    "fields",
    [
        {"channel": "chat", "type": "message.received", "payload": {}},  # no conversation
        {"channel": "email", "type": "email.sent", "payload": {"message_id": "m"}},  # a campaign
        {"channel": "phone", "type": "call.offered", "payload": {"queue": "q"}},  # no call
        {"channel": "phone", "type": "call.answered", "payload": {"agent": "a"}},
        {"channel": "web", "type": "page.viewed", "payload": {"url": "/"}},
    ],
)
def test_events_no_service_metric_reads(fields: dict[str, Any]) -> None:
    assert to_service_rows(event(**fields)) == {}


def test_rows_are_a_pure_function_of_the_event() -> None:
    e = event(channel="chat", type="message.sent", correlation_id="c", payload={"agent": "ann"})
    assert to_service_rows(e) == to_service_rows(e.model_copy())
