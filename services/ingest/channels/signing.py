"""How each provider signs a delivery: the sender's side, for the demo feed and the test vectors.

Written from each provider's documentation, independently of the verifiers (which only compare):
Twilio's documented example vectors are checked against it in the unit tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def twilio_headers(auth_token: str, url: str, form_body: bytes) -> dict[str, str]:
    params = sorted(parse_qsl(form_body.decode(), keep_blank_values=True))
    text = url + "".join(k + v for k, v in params)
    digest = hmac.new(auth_token.encode(), text.encode(), hashlib.sha1).digest()
    return {"X-Twilio-Signature": _b64(digest), "Content-Type": "application/x-www-form-urlencoded"}


def typeform_headers(secret: str, body: bytes) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {"Typeform-Signature": "sha256=" + _b64(digest), "Content-Type": "application/json"}


def shopify_headers(secret: str, body: bytes, topic: str, webhook_id: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {
        "X-Shopify-Hmac-Sha256": _b64(digest),
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id,
        "Content-Type": "application/json",
    }


def chatwoot_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return {
        "X-Chatwoot-Signature": "sha256=" + digest,
        "X-Chatwoot-Timestamp": str(timestamp),
        "Content-Type": "application/json",
    }


def sendgrid_keypair() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A P-256 key pair; the public key as SendGrid shows it (base64 of the DER public key)."""
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, _b64(der)


def sendgrid_headers(
    private: ec.EllipticCurvePrivateKey, body: bytes, timestamp: int
) -> dict[str, str]:
    signature = private.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": _b64(signature),
        "X-Twilio-Email-Event-Webhook-Timestamp": str(timestamp),
        "Content-Type": "application/json",
    }
