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
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
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
# How every P-256 public key SendGrid shows begins (the DER header naming the curve): public.
P256_PREFIX = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"


def public_key(secret: str) -> ec.EllipticCurvePublicKey | None:
    key, problem = _read_key(secret)
    return None if problem else key


def _read_key(secret: str) -> tuple[ec.EllipticCurvePublicKey | None, str | None]:
    """The verification key, or what is wrong with it in words that never repeat it: SendGrid
    shows a P-256 public key as one line of base64 (the DER SubjectPublicKeyInfo); PEM is taken."""
    if "PRIVATE KEY" in secret:
        return None, "a private key: give the public verification key SendGrid shows"
    if "BEGIN PUBLIC KEY" in secret:
        not_one = "a PEM block that is not a public key"
        key = _loaded(serialization.load_pem_public_key, secret.encode(), not_one)
    else:
        try:
            der = base64.b64decode("".join(secret.split()), validate=True)
        except binascii.Error:
            return None, f"not base64 (SendGrid shows it as one line starting {P256_PREFIX}…)"
        not_one = f"base64 of {len(der)} bytes that are not a public key"
        key = _loaded(serialization.load_der_public_key, der, not_one)
    return (None, key) if isinstance(key, str) else _ecdsa(key)


def _loaded(
    load: Callable[[bytes], PublicKeyTypes], data: bytes, instead: str
) -> PublicKeyTypes | str:
    """The public key `load` reads, else `instead` (what to say: the library's own words are left
    out, as one of its messages could quote the bytes)."""
    try:
        return load(data)
    except (ValueError, UnsupportedAlgorithm):
        return instead


def _ecdsa(key: PublicKeyTypes) -> tuple[ec.EllipticCurvePublicKey | None, str | None]:
    if isinstance(key, rsa.RSAPublicKey):
        return None, "an RSA public key, not an ECDSA (elliptic-curve) one"
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return None, "not an ECDSA (elliptic-curve) public key"
    if not isinstance(key.curve, ec.SECP256R1):
        return None, f"an ECDSA key on the curve {key.curve.name}, not P-256 (secp256r1)"
    return key, None


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
    signature_header: ClassVar[str] = "X-Twilio-Email-Event-Webhook-Signature"
    timestamp_header: ClassVar[str | None] = "X-Twilio-Email-Event-Webhook-Timestamp"
    settings_model: ClassVar[type[BaseModel]] = ChannelSettings

    def secret_problem(self, secret: str) -> str | None:
        """What makes `secret` no verification key, checked when a channel is added: taken, it
        would refuse every delivery (401) without saying why."""
        problem = _read_key(secret)[1]
        return f"not a SendGrid verification key: {problem}" if problem else None

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
