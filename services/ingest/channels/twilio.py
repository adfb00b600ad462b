"""Twilio's request signature, shared by the Voice and Messaging modules.

Twilio signs every webhook with the account's auth token: `X-Twilio-Signature` is the base64
HMAC-SHA1 of the full URL it called (query string included) followed, for a form POST, by every
parameter's name and value, sorted by name. The URL must be the one Twilio called: behind a proxy
that rewrites it, set the channel's `public_url` setting.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from services.ingest.channels.base import Ack, WebhookRequest, hmac_b64, same_digest

# An empty TwiML document: "nothing to say back", which both Voice and Messaging accept.
EMPTY_TWIML = Ack(200, b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>', "text/xml")


def signed_text(url: str, body: bytes) -> bytes:
    params = sorted(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return (url + "".join(name + value for name, value in params)).encode()


def signature(auth_token: str, url: str, body: bytes) -> bytes:
    return hmac_b64(auth_token, signed_text(url, body), hashlib.sha1)


def verify(request: WebhookRequest, auth_token: str) -> bool:
    given = request.headers.get("x-twilio-signature")
    return same_digest(signature(auth_token, request.url, request.body), given)


def url_params(request: WebhookRequest) -> dict[str, str]:
    """Parameters the tenant added to the callback URL it gave Twilio (`?queue=…&agent=…`)."""
    return dict(parse_qsl(urlsplit(request.url).query))


def customer_number(fields: Mapping[str, Any]) -> str:
    """The customer's side of a call or message: `From` when inbound, else `To`."""
    inbound = str(fields.get("Direction", "inbound")).startswith("inbound")
    number = str(fields.get("From" if inbound else "To", ""))
    return number.removeprefix("whatsapp:")
