"""Chatwoot webhooks → `message.received` / `message.sent` and `case.opened` / `case.resolved` /
`case.reopened`.

Chatwoot signs each delivery with the webhook's secret: `X-Chatwoot-Signature` is `sha256=` and
the hex HMAC-SHA256 of `"{X-Chatwoot-Timestamp}.{raw body}"`; a timestamp older than 5 minutes is
refused. `message_created`: incoming messages are the customer's, outgoing ones the agent's (or
the bot's, when an agent bot sent them); private notes and activity messages map to nothing.
`conversation_created` opens a case; `conversation_status_changed` to `resolved` resolves it and
back to `open` reopens it (not from `pending` or `snoozed`, as `changed_attributes` tells: a bot
handing over, a snooze ending, is a case going on); `resolved` to `pending` reopens it too (a bot
inbox reopens a resolved conversation so, and later hands it over as `pending` → `open`). The customer is the conversation's contact (`meta.sender`): its
Chatwoot id as the `chatwoot` external id, its email and phone. Message ids, and conversation id
with status and time, are the deduplication keys.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from schemas.violations import Violation
from services.ingest.channels.base import (
    Ack,
    ChannelSettings,
    WebhookRequest,
    epoch_or_text_time,
    event_id,
    fresh,
    json_body,
    raise_if,
    required,
    violation,
)
from services.ingest.channels.registry import register

PREFIX = "sha256="
SOCIAL = ("Whatsapp", "FacebookPage", "Instagram", "Telegram", "Line", "TwitterProfile")
SMS = ("Sms", "TwilioSms")
# Messages that are no contact with the customer: activity lines (`assigned to Ana`) and the
# forms Chatwoot's widget shows by itself (`template`: "give us your email"). Any other type is
# a dead letter, not dropped.
SILENT_MESSAGES = ("activity", "template")
STATUSES = ("open", "resolved", "pending", "snoozed")


def _previous_status(body: Mapping[str, Any]) -> str | None:
    """The status before this change, from `changed_attributes` (`[{"status": {"previous_value":
    …, "current_value": …}}]`); None when the delivery does not say."""
    changed = body.get("changed_attributes")
    for change in changed if isinstance(changed, list) else []:
        status = change.get("status") if isinstance(change, Mapping) else None
        if isinstance(status, Mapping) and status.get("previous_value") is not None:
            return str(status["previous_value"])
    return None


def _channel(conversation: Mapping[str, Any]) -> str:
    kind = str(conversation.get("channel", "")).removeprefix("Channel::")
    return "sms" if kind in SMS else "social" if kind in SOCIAL else "chat"


def _contact(body: Mapping[str, Any], conversation: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = conversation.get("meta") if isinstance(conversation.get("meta"), Mapping) else {}
    sender = meta.get("sender") if isinstance(meta, Mapping) else None
    if isinstance(sender, Mapping):
        return sender
    fallback = body.get("sender") if body.get("message_type") == "incoming" else body.get("contact")
    return fallback if isinstance(fallback, Mapping) else {}


def _customer(contact: Mapping[str, Any], problems: list[Violation]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if contact.get("id") is not None:
        found["external_ids"] = {"chatwoot": str(contact["id"])}
    if contact.get("email"):
        found["email"] = contact["email"]
    if contact.get("phone_number"):
        found["phone"] = contact["phone_number"]
    if not found:
        problems.append(
            violation("conversation.meta.sender", "no contact to file under", "missing")
        )
    return found


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _name(person: Any) -> str | None:
    return (
        str(person.get("name") or person.get("id"))[:200] if isinstance(person, Mapping) else None
    )


class ChatwootSettings(ChannelSettings):
    """A Chatwoot channel's settings: the queue its conversations are counted under when the
    inbox names none."""

    queue: str | None = Field(default=None, min_length=1, max_length=200)


class Chatwoot:
    name: ClassVar[str] = "chatwoot"
    secret_help: ClassVar[str] = "the secret of the Chatwoot webhook"
    signature_header: ClassVar[str] = "X-Chatwoot-Signature"
    timestamp_header: ClassVar[str | None] = "X-Chatwoot-Timestamp"
    settings_model: ClassVar[type[BaseModel]] = ChatwootSettings

    def verify(self, request: WebhookRequest, secret: str) -> bool:
        stamp, given = (
            request.headers.get("x-chatwoot-timestamp"),
            request.headers.get("x-chatwoot-signature", ""),
        )
        if not fresh(stamp, request.received_at) or not given.startswith(PREFIX):
            return False
        expected = hmac.new(secret.encode(), f"{stamp}.".encode() + request.body, hashlib.sha256)
        # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not False).
        given_hex = given.removeprefix(PREFIX).strip().encode("utf-8", "surrogateescape")
        return hmac.compare_digest(expected.hexdigest().encode(), given_hex)

    def to_events(
        self, request: WebhookRequest, settings: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        body = json_body(request)
        if not isinstance(body, Mapping):
            raise_if([violation("$", "the body is not a JSON object", "not_an_object")])
        kind = body.get("event")
        if kind == "message_created":
            return self._message(body, settings)
        if kind in ("conversation_created", "conversation_status_changed"):
            return self._case(body, settings)
        raise_if([violation("event", f"Chatwoot event {kind!r} is not mapped", "unmapped_event")])
        return []

    def _message(
        self, body: Mapping[str, Any], settings: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        message_type = body.get("message_type")
        if body.get("private") or message_type in SILENT_MESSAGES:
            return []  # private notes, activity lines, Chatwoot's own forms: no contact
        problems = list[Violation]()
        if message_type not in ("incoming", "outgoing"):
            known = ", ".join(("incoming", "outgoing", *SILENT_MESSAGES))
            message = f"message_type {message_type!r} is not one Chatwoot sends ({known})"
            problems.append(violation("message_type", message, "unmapped_message_type"))
        conversation = _mapping(body.get("conversation"))
        message_id = required(body, "id", problems)
        occurred_at = epoch_or_text_time(body.get("created_at"), "created_at", problems)
        customer = _customer(_contact(body, conversation), problems)
        raise_if(problems)
        incoming = body["message_type"] == "incoming"
        sender = _mapping(body.get("sender"))
        bot = not incoming and sender.get("type") == "agent_bot"
        inbox = _name(body.get("inbox"))
        return [{
            "event_id": event_id(self.name, f"message:{message_id}"), "source_id": self.name,
            "channel": _channel(conversation),
            "type": "message.received" if incoming else "message.sent",
            "touchpoint": settings.get("touchpoint", "chat"), "customer": customer,
            "occurred_at": occurred_at, "correlation_id": f"chatwoot-{conversation.get('id')}",
            "payload": {"sender": "customer" if incoming else "bot" if bot else "agent",
                        "text": str(body.get("content") or ""), "message_id": str(message_id),
                        "agent": None if incoming or bot else _name(sender), "queue": inbox,
                        "attributes": {"provider": "chatwoot"}},
        }]  # fmt: skip

    def _case(self, body: Mapping[str, Any], settings: Mapping[str, Any]) -> list[dict[str, Any]]:
        problems = list[Violation]()
        conversation_id = required(body, "id", problems)
        status = body.get("status")
        created = body.get("event") == "conversation_created"
        kind = (
            "case.opened"
            if created
            else {"resolved": "case.resolved", "open": "case.reopened"}.get(str(status))
        )
        when = (
            body.get("created_at") if created else body.get("updated_at") or body.get("timestamp")
        )
        occurred_at = epoch_or_text_time(when, "created_at" if created else "updated_at", problems)
        customer = _customer(_contact(body, body), problems)
        if not created and status not in STATUSES:
            message = f"status {status!r} is not one Chatwoot sends ({', '.join(STATUSES)})"
            problems.append(violation("status", message, "unmapped_status"))
        raise_if(problems)
        previous = _previous_status(body)
        if status == "pending" and previous == "resolved":
            # On a bot's inbox Chatwoot reopens a resolved conversation as `pending` (the bot
            # answers first), then `open` when the bot hands over: the reopening is this one.
            kind = "case.reopened"
        if kind is None:  # pending, snoozed: the case stays as it was
            return []
        if kind == "case.reopened" and previous in ("pending", "snoozed"):
            return []  # open after a bot's handover (reopened already if it was resolved)
        meta = _mapping(body.get("meta"))
        payload: dict[str, Any] = {"case_id": f"chatwoot-{conversation_id}", "agent": _name(meta.get("assignee")),
                                   "queue": _name(body.get("inbox")) or settings.get("queue"),
                                   "attributes": {"provider": "chatwoot"}}  # fmt: skip
        return [{
            "event_id": event_id(self.name, f"conversation:{conversation_id}:{kind}:{when}"),
            "source_id": self.name, "channel": _channel(body), "type": kind,
            "touchpoint": settings.get("touchpoint", "chat"), "customer": customer,
            "occurred_at": occurred_at, "correlation_id": f"chatwoot-{conversation_id}",
            "payload": payload,
        }]  # fmt: skip

    def ack(self) -> Ack:
        return Ack(200, b"ok")


register(Chatwoot())
