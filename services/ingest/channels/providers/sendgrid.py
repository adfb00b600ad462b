"""SendGrid Event Webhook (a JSON array of events) → `email.*`.

The signed Event Webhook uses ECDSA (P-256, SHA-256): `X-Twilio-Email-Event-Webhook-Signature`
is the base64 DER signature of the `X-Twilio-Email-Event-Webhook-Timestamp` header's text
followed by the raw body, verifiable with the tenant's verification public key (the channel's
secret: base64 DER as SendGrid shows it, or PEM). A timestamp older than 5 minutes is refused.

`processed` → email.sent, `delivered`, `open` → email.opened, `click` (with its url), `bounce`
and `dropped` → email.bounced (a `blocked` bounce is soft); `deferred` is transient and maps to
nothing; `spamreport`, `unsubscribe`, `group_unsubscribe`, `group_resubscribe` → custom.email_*.
Each item's `sg_event_id` is its deduplication key; one bad item is dead-lettered, the rest kept.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel

from schemas.violations import Violation
from services.ingest.channels.base import (
    Ack,
    ChannelSettings,
    WebhookRequest,
    epoch_or_text_time,
    event_id,
    fresh,
    json_body,
    map_items,
    raise_if,
    required,
    violation,
)
from services.ingest.channels.registry import register

SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"
TYPES = {
    "processed": "email.sent",
    "delivered": "email.delivered",
    "open": "email.opened",
    "click": "email.clicked",
    "bounce": "email.bounced",
    "dropped": "email.bounced",
    "spamreport": "custom.email_spamreport",
    "unsubscribe": "custom.email_unsubscribe",
    "group_unsubscribe": "custom.email_group_unsubscribe",
    "group_resubscribe": "custom.email_group_resubscribe",
}
IGNORED = frozenset({"deferred"})


def public_key(secret: str) -> ec.EllipticCurvePublicKey | None:
    try:
        if "BEGIN PUBLIC KEY" in secret:
            key = serialization.load_pem_public_key(secret.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(secret))
    except (ValueError, binascii.Error):
        return None
    return key if isinstance(key, ec.EllipticCurvePublicKey) else None


def _campaign(item: Mapping[str, Any]) -> str | None:
    category = item.get("marketing_campaign_name") or item.get("category")
    if isinstance(category, list):
        category = category[0] if category else None
    return None if category is None else str(category)


def _payload(kind: str, item: Mapping[str, Any], problems: list[Violation]) -> dict[str, Any]:
    message_id = item.get("sg_message_id") or item.get("smtp-id")
    if not message_id:
        problems.append(violation("sg_message_id", "no sg_message_id or smtp-id", "missing"))
    payload: dict[str, Any] = {
        "message_id": str(message_id)[:200], "campaign": _campaign(item),
        "attributes": {"provider": "sendgrid", "event": item.get("event")},
    }  # fmt: skip
    if kind == "email.clicked":
        payload["url"] = required(item, "url", problems)
    if kind == "email.bounced":
        payload["reason"] = str(item.get("reason") or item.get("status") or "") or None
        payload["hard"] = item.get("type") != "blocked"
        payload["reason"] = payload["reason"][:200] if payload["reason"] else None
    if kind.startswith("custom."):
        return {"message_id": payload["message_id"], "provider": "sendgrid"}
    return payload


class SendGrid:
    name: ClassVar[str] = "sendgrid"
    secret_help: ClassVar[str] = "the Event Webhook's verification key (public key, base64 or PEM)"
    settings_model: ClassVar[type[BaseModel]] = ChannelSettings

    def verify(self, request: WebhookRequest, secret: str) -> bool:
        key, stamp = public_key(secret), request.headers.get(TIMESTAMP)
        if key is None or not fresh(stamp, request.received_at):
            return False
        try:
            signature = base64.b64decode(request.headers.get(SIGNATURE, ""), validate=True)
            key.verify(signature, f"{stamp}".encode() + request.body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    def to_events(
        self, request: WebhookRequest, settings: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        body = json_body(request)
        if not isinstance(body, list):
            raise_if([violation("$", "SendGrid posts a JSON array of events", "not_an_array")])
        return map_items(body, lambda i, item, problems: self._item(item, settings, problems))

    def _item(
        self, item: Mapping[str, Any], settings: Mapping[str, Any], problems: list[Violation]
    ) -> list[dict[str, Any]]:
        name = str(item.get("event"))
        if name in IGNORED:
            return []
        kind = TYPES.get(name)
        if kind is None:
            problems.append(
                violation("event", f"SendGrid event {name!r} is not mapped", "unmapped_event")
            )
        sg_id = required(item, "sg_event_id", problems)
        email = required(item, "email", problems)
        occurred_at = epoch_or_text_time(item.get("timestamp"), "timestamp", problems)
        payload = _payload(kind or "", item, problems)
        if problems or kind is None:
            return []
        return [{
            "event_id": event_id(self.name, str(sg_id)), "source_id": self.name,
            "channel": "email", "type": kind, "touchpoint": settings.get("touchpoint", "email"),
            "customer": {"email": email}, "occurred_at": occurred_at, "payload": payload,
        }]  # fmt: skip

    def ack(self) -> Ack:
        return Ack(200, b"ok")


register(SendGrid())
