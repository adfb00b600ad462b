"""Twilio Messaging webhooks (SMS and WhatsApp, form-encoded) → `message.*`.

Signed like every Twilio webhook (see `services.ingest.channels.twilio`). An incoming message
(no `MessageStatus`, or `received`) is `message.received` from `From`; a status callback for a
message we sent is `message.sent` when `sent`, and `custom.message_delivered` /
`_partially_delivered` / `_read` / `_failed` / `_undelivered` for what happened to it later
(`queued`, `accepted`, `sending`, `scheduled`, `canceled`, and `receiving` for one coming in,
map to nothing). WhatsApp numbers come as `whatsapp:+…` and are the `social` channel. Twilio sends no
timestamp with these, so the event's time is when the delivery arrived; `MessageSid` and status
are the deduplication key (a retry that arrives later is reported as already stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from schemas.violations import Violation
from services.ingest.channels import twilio
from services.ingest.channels.base import (
    Ack,
    WebhookRequest,
    event_id,
    form_body,
    raise_if,
    required,
    violation,
)
from services.ingest.channels.registry import register

LATER = frozenset({"delivered", "partially_delivered", "read", "failed", "undelivered"})
# `receiving`: an inbound message still arriving (its `received` callback follows).
SILENT = frozenset({"queued", "accepted", "sending", "scheduled", "canceled", "receiving"})


class TwilioMessaging:
    name: ClassVar[str] = "twilio-messaging"
    secret_help: ClassVar[str] = "the Twilio account's auth token"
    signature_header: ClassVar[str] = "X-Twilio-Signature"
    signs_url: ClassVar[bool] = True  # the URL called is signed too (base.refusal says so)
    timestamp_header: ClassVar[str | None] = None

    def verify(self, request: WebhookRequest, secret: str) -> bool:
        return twilio.verify(request, secret)

    def to_events(
        self, request: WebhookRequest, settings: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        fields, problems = form_body(request), list[Violation]()
        extra = {**{k: str(v) for k, v in settings.items()}, **twilio.url_params(request)}
        sid = required(fields, "MessageSid", problems)
        status = fields.get("MessageStatus", "received")
        inbound = status == "received"
        number = str(fields.get("From" if inbound else "To", ""))
        if not number:
            problems.append(violation("From" if inbound else "To", "no customer number", "missing"))
        if status not in LATER | SILENT | {"received", "sent"}:
            problems.append(
                violation("MessageStatus", f"status {status!r} is not mapped", "unmapped_status")
            )
        raise_if(problems)
        if status in SILENT:
            return []
        kind = (
            "message.received"
            if inbound
            else "message.sent"
            if status == "sent"
            else f"custom.message_{status}"
        )
        whatsapp = number.startswith("whatsapp:")
        payload: dict[str, Any] = {"message_id": sid, "attributes": {"provider": "twilio"}}
        if kind.startswith("message."):
            payload |= {"sender": "customer" if inbound else "agent", "text": fields.get("Body", ""),
                        "agent": None if inbound else extra.get("agent")}  # fmt: skip
        else:
            payload = {
                "message_id": sid,
                "provider": "twilio",
                "error_code": fields.get("ErrorCode"),
            }
        return [{
            "event_id": event_id(self.name, f"{sid}:{status}"), "source_id": self.name,
            "channel": "social" if whatsapp else "sms", "type": kind,
            "touchpoint": extra.get("touchpoint", "whatsapp" if whatsapp else "sms"),
            "customer": {"phone": number.removeprefix("whatsapp:")},
            "occurred_at": request.received_at.isoformat(), "correlation_id": sid,
            "payload": payload,
        }]  # fmt: skip

    def ack(self) -> Ack:
        return twilio.EMPTY_TWIML


register(TwilioMessaging())
