"""The channel store in memory: the twin the unit tests use, and the rules every adapter shares."""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from kernel.channels import (
    ERASED_REASON,
    ChannelConfig,
    DeadLetterStatus,
    NewDeadLetter,
    WebhookDeadLetter,
    letter_id,
    mint_channel_id,
)
from kernel.secrets import SecretBox, SecretKeyError

# Headers a dead letter never keeps: credentials of a proxy or a person, not of the provider.
PRIVATE_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


def check_new_channel(tenant_id: str, provider: str, secret: str) -> None:
    if not tenant_id or not provider:
        raise ValueError("a channel needs a tenant and a provider")
    if not secret:
        raise ValueError("a channel needs the secret its provider signs webhooks with")


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower() not in PRIVATE_HEADERS}


def matches(
    letter: WebhookDeadLetter,
    provider: str | None,
    tenant_id: str | None,
    since: datetime | None,
    status: DeadLetterStatus | None,
) -> bool:
    return (
        (provider is None or letter.provider == provider)
        and (tenant_id is None or letter.tenant_id == tenant_id)
        and (since is None or letter.received_at >= since)
        and (status is None or letter.status == status)
    )


logger = logging.getLogger(__name__)

# A dead letter's body (a provider's delivery: phones, names, messages) is stored sealed under the
# store's platform key, bound to the letter's id; a body kept before this holds no marker and is
# read as stored. No delivery starts with a NUL byte (JSON, forms).
SEALED_BODY = b"\x00cem-sealed-letter-1\x00"


def seal_body(box: SecretBox, dead_letter_id: str, body: bytes) -> bytes:
    return SEALED_BODY + box.seal_bytes(body, f"dead letter {dead_letter_id}")


def open_body(box: SecretBox, dead_letter_id: str, stored: bytes) -> bytes:
    """The body as received; one that does not open (another platform key) is left as stored,
    logged, so that the other letters still list and replay (its replay fails and it stays)."""
    if not stored.startswith(SEALED_BODY):
        return stored
    try:
        return box.open_bytes(stored[len(SEALED_BODY) :], f"dead letter {dead_letter_id}")
    except SecretKeyError as exc:
        logger.warning("%s", exc)
        return stored


class MemoryChannelStore:
    """A ChannelStore in a dict; secrets and dead letters' bodies are sealed here too, so tests
    see what adapters do."""

    def __init__(self, box: SecretBox) -> None:
        self._box = box
        self._lock = threading.Lock()
        self._channels: dict[str, tuple[ChannelConfig, bytes]] = {}
        self._letters: dict[str, WebhookDeadLetter] = {}

    def add(
        self,
        tenant_id: str,
        provider: str,
        secret: str,
        *,
        name: str = "",
        settings: Mapping[str, Any] | None = None,
    ) -> ChannelConfig:
        check_new_channel(tenant_id, provider, secret)
        channel_id = mint_channel_id()
        config = ChannelConfig(
            channel_id, tenant_id, provider, name, dict(settings or {}), datetime.now(UTC)
        )
        with self._lock:
            self._channels[channel_id] = (config, self._box.seal(secret, channel_id))
        return config

    def get(self, channel_id: str) -> ChannelConfig | None:
        found = self._channels.get(channel_id)
        return None if found is None else found[0]

    def secret(self, channel_id: str) -> str | None:
        found = self._channels.get(channel_id)
        return None if found is None else self._box.open(found[1], channel_id)

    def list(self, tenant_id: str) -> builtins.list[ChannelConfig]:
        return [c for c, _ in self._channels.values() if c.tenant_id == tenant_id]

    def update_settings(
        self, tenant_id: str, channel_id: str, settings: Mapping[str, Any]
    ) -> ChannelConfig | None:
        with self._lock:
            found = self._channels.get(channel_id)
            if found is None or found[0].tenant_id != tenant_id:
                return None
            config = replace(found[0], settings=dict(settings))
            self._channels[channel_id] = (config, found[1])
        return config

    def remove(self, tenant_id: str, channel_id: str) -> bool:
        with self._lock:
            found = self._channels.get(channel_id)
            if found is None or found[0].tenant_id != tenant_id:
                return False
            del self._channels[channel_id]
        return True

    def keep_dead_letter(self, letter: NewDeadLetter) -> str:
        dead_letter_id = letter_id(letter)
        fields = {k: getattr(letter, k) for k in NewDeadLetter.__dataclass_fields__}
        fields["headers"] = kept_headers(letter.headers)
        fields["body"] = seal_body(self._box, dead_letter_id, letter.body)
        with self._lock:  # a redelivery of a delivery kept already adds nothing
            self._letters.setdefault(
                dead_letter_id, WebhookDeadLetter(**fields, dead_letter_id=dead_letter_id)
            )
        return dead_letter_id

    def dead_letters(
        self,
        *,
        provider: str | None = None,
        tenant_id: str | None = None,
        since: datetime | None = None,
        status: DeadLetterStatus | None = "pending",
        limit: int | None = None,
    ) -> builtins.list[WebhookDeadLetter]:
        found = [
            replace(d, body=open_body(self._box, d.dead_letter_id, d.body))
            for d in self._letters.values()
            if matches(d, provider, tenant_id, since, status)
        ]
        ordered = sorted(found, key=lambda d: (d.received_at, d.dead_letter_id))
        return ordered if limit is None else ordered[:limit]

    def settle_dead_letter(
        self,
        dead_letter_id: str,
        *,
        replayed: bool,
        reason: str,
        violations: builtins.list[dict[str, str]],
    ) -> None:
        with self._lock:
            letter = self._letters[dead_letter_id]
            if letter.status == "erased":  # erased meanwhile: it stays so, nothing written back
                return
            self._letters[dead_letter_id] = replace(
                letter,
                status="replayed" if replayed else "pending",
                reason=letter.reason if replayed else reason,
                violations=letter.violations if replayed else violations,
                attempts=letter.attempts + 1,
            )

    def erase_dead_letter(self, dead_letter_id: str) -> None:
        with self._lock:
            letter = self._letters[dead_letter_id]
            self._letters[dead_letter_id] = replace(
                letter,
                status="erased",
                reason=ERASED_REASON,
                violations=[],
                body=b"",
                attempts=letter.attempts + 1,
            )

    def tenant_dead_letters(self, tenant_id: str, before: datetime, *, delete: bool) -> int:
        with self._lock:
            past = [
                i
                for i, d in self._letters.items()
                if d.tenant_id == tenant_id and d.received_at < before
            ]
            if delete:
                for i in past:
                    del self._letters[i]
        return len(past)

    def close(self) -> None:
        pass
