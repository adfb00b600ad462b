"""The channel store port: tenants' provider channels (with their secrets) and webhook dead letters.

A channel is one provider account of one tenant (a Twilio number, a Shopify shop, a Typeform
workspace) and owns the secret its webhooks are signed with. Secrets are sealed by `SecretBox`
inside the adapters and leave them only through `secret()`, for the webhook router to verify a
signature: they are never listed, returned by the API or logged.

Webhook dead letters live beside the channels (not in the warehouse) because a delivery must be
durable *before* the provider is told to stop retrying, in the same store in both modes' style.
"""

from __future__ import annotations

import builtins
import hashlib
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

CHANNEL_ID = re.compile(r"^ch_[A-Za-z0-9_-]{16}$")
# erased: arrived before an erasure of a subject it names, and never replayed (`erase_dead_letter`).
DeadLetterStatus = Literal["pending", "replayed", "erased"]
ERASED_REASON = "erased"


def mint_channel_id() -> str:
    return "ch_" + secrets.token_urlsafe(12)


@dataclass(frozen=True)
class ChannelConfig:
    """A configured channel, without its secret."""

    channel_id: str
    tenant_id: str
    provider: str
    name: str
    settings: Mapping[str, Any]
    created_at: datetime

    def public(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "tenant_id": self.tenant_id,
            "provider": self.provider,
            "name": self.name,
            "settings": dict(self.settings),
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class NewDeadLetter:
    """A verified delivery that could not be (fully) mapped: everything needed to re-run it."""

    tenant_id: str
    provider: str
    channel_id: str
    received_at: datetime
    url: str
    headers: Mapping[str, str]
    body: bytes
    reason: str
    violations: list[dict[str, str]] = field(default_factory=list)


def letter_id(letter: NewDeadLetter) -> str:
    """A dead letter's id, derived from what was delivered (tenant, channel, URL, body): a
    provider redelivering the same delivery finds its letter kept already and adds no second one
    (each redelivery added a letter: found by a review). Stores insert a letter once by it."""
    digest = hashlib.sha256(letter.body).hexdigest()
    named = f"{letter.tenant_id}/{letter.channel_id}/{letter.url}/{digest}"
    return str(uuid.uuid5(_LETTER_NAMESPACE, named))


_LETTER_NAMESPACE = uuid.UUID("5f0c1e9a-7d2b-5c4e-8a61-2b9d4e7f3a10")


@dataclass(frozen=True)
class WebhookDeadLetter(NewDeadLetter):
    dead_letter_id: str = ""
    status: DeadLetterStatus = "pending"
    attempts: int = 0


class ChannelStore(Protocol):
    """Channels with sealed secrets, and the webhook dead letters, per tenant."""

    def add(
        self,
        tenant_id: str,
        provider: str,
        secret: str,
        *,
        name: str = "",
        settings: Mapping[str, Any] | None = None,
    ) -> ChannelConfig:
        """Store a new channel; the secret is sealed before it is written."""
        ...

    def get(self, channel_id: str) -> ChannelConfig | None:
        """A channel that exists and is not removed, else None."""
        ...

    def secret(self, channel_id: str) -> str | None:
        """The channel's secret in clear, only to verify a signature."""
        ...

    def list(self, tenant_id: str) -> list[ChannelConfig]:
        """The tenant's channels, oldest first."""
        ...

    def update_settings(
        self, tenant_id: str, channel_id: str, settings: Mapping[str, Any]
    ) -> ChannelConfig | None:
        """Replace one of the tenant's channel's settings (a mapping fix); None: no such channel."""
        ...

    def remove(self, tenant_id: str, channel_id: str) -> bool:
        """Remove one of the tenant's channels; False when it has no such channel."""
        ...

    def keep_dead_letter(self, letter: NewDeadLetter) -> str:
        """Durably store a dead letter; returns its id."""
        ...

    def dead_letters(
        self,
        *,
        provider: str | None = None,
        tenant_id: str | None = None,
        since: datetime | None = None,
        status: DeadLetterStatus | None = "pending",
        limit: int | None = None,
    ) -> builtins.list[WebhookDeadLetter]:
        """Dead letters matching every filter given, oldest first; the first `limit` of them
        when given (each holds a body: an HTTP reader asks for a page, not for every one)."""
        ...

    def settle_dead_letter(
        self,
        dead_letter_id: str,
        *,
        replayed: bool,
        reason: str,
        violations: builtins.list[dict[str, str]],
    ) -> None:
        """Record a replay attempt: replayed, or still failing with the new reason."""
        ...

    def erase_dead_letter(self, dead_letter_id: str) -> None:
        """Settle a letter that will never be replayed because it arrived before an erasure of a
        subject it names: status `erased`, reason `erased`, its body (the erased person's
        delivery) and violations (their messages may quote it) cleared, attempts counted. The
        row stays (id, tenant, channel, provider, URL, headers, time): a redelivery of the same
        body is then known and not kept again."""
        ...

    def tenant_dead_letters(self, tenant_id: str, before: datetime, *, delete: bool) -> int:
        """The tenant's dead letters received before `before`, counted (and deleted when
        `delete`): retention ends them with the raw events (a letter holds a raw body)."""
        ...

    def close(self) -> None: ...
