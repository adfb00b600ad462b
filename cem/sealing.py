"""Personal data sealed in the log (issue 11, step 2 of docs/erasure.md), wired for both modes.

With personal data sealed (the default since 2026-12-06; `CEM_SEAL_PERSONAL_DATA=false` turns it
off) every producer of touchpoints (the HTTP ingest, Segment, channel
webhooks, managers' alert actions, dead-letter replays) publishes through a `SealingPublisher`:
each event's personal fields are sealed under its subject's data key before the log sees the
bytes, and the stages that read the log open them (`kernel.sealing`). The subject is the event's
strongest identifier normalised as identity normalises it, with the tenant's rules.

Keys live in the key vault: `key_vault.sqlite` in the data directory (embedded), the `key_vault`
table in PostgreSQL (distributed), wrapped under tenant keys derived from the platform key, the
same one every replica shares.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from kernel.ports import KeyVault, Outgoing, Publisher, PublishStatus
from kernel.sealing import (
    ErasureCheck,
    EventOpener,
    EventSealer,
    KeyCache,
    SubjectOf,
    maybe_sealed,
)
from kernel.settings import CoreSettings
from kernel.shredding import UNATTRIBUTED
from schemas.envelope import CustomerRef
from schemas.families import ERASURE_TYPE
from services.identity.normalise import normalise_ref, sealing_subject
from services.identity.rules import IdentityRules

if TYPE_CHECKING:
    from services.identity.resolver import IdentityResolver

# Stored as they are: an erasure's own event holds no personal data (an opaque customer id, a
# reason that is a ticket reference, the actor) and must still name its customer when its batch is
# filed again after it destroyed the keys (docs/erasure.md).
NEVER_SEALED = frozenset({ERASURE_TYPE})


def subject_function(rules: Callable[[], IdentityRules]) -> SubjectOf:
    """The subject of an event's `customer` member: its strongest identifier that identity
    would use, normalised with the tenant's rules (`rules()` read per call: they can change);
    with none, the readings of a national number several regions read (`sealing_subject`)."""

    def subject(tenant_id: str, customer: dict[str, Any]) -> str:
        try:
            ref = CustomerRef.model_validate(customer)
        except ValidationError:  # not after the ingest's validation; an alert's `cem:` id is valid
            return UNATTRIBUTED
        tenant_rules = rules().for_tenant(tenant_id)
        return sealing_subject(normalise_ref(ref, tenant_rules), tenant_rules)

    return subject


class SealingPublisher:
    """A Publisher that seals each event's personal fields before the inner one publishes it.
    The idempotency fingerprint stays the clear body's: a retried event is still a duplicate."""

    def __init__(self, inner: Publisher, sealer: EventSealer, vault: KeyVault) -> None:
        self.inner, self.sealer, self.vault = inner, sealer, vault

    def publish(self, events: Sequence[Outgoing]) -> list[PublishStatus]:
        values = self.sealer.seal_values([e.record.value for e in events])
        sealed = [
            replace(e, record=replace(e.record, value=value))
            for e, value in zip(events, values, strict=True)
        ]
        return self.inner.publish(sealed)

    def erasure_check(self) -> ErasureCheck:
        """Whether events about to be published again (a webhook dead letter's) name a subject
        erased since they arrived (`kernel.sealing.ChecksErasures`)."""
        return ErasureCheck(self.sealer)

    def close_vault(self) -> None:
        self.vault.close()


def unwrapped(publisher: Publisher | None) -> Publisher | None:
    """The publisher a SealingPublisher wraps (itself otherwise)."""
    return publisher.inner if isinstance(publisher, SealingPublisher) else publisher


def close_sealing(publisher: Publisher | None) -> None:
    """Close a SealingPublisher's vault (the inner publisher is its owner's to close)."""
    if isinstance(publisher, SealingPublisher):
        publisher.close_vault()


@functools.cache
def default_rules() -> IdentityRules:
    """The identity rules of a process without a resolver: the settings' (CEM_IDENTITY_*)."""
    from services.identity.settings import IdentitySettings, load_rules

    return load_rules(IdentitySettings())


def embedded_vault(settings: CoreSettings) -> KeyVault:
    from cem.adapters.sqlite_vault import VAULT_FILE, SqliteKeyVault
    from cem.platform_keys import local_platform_key

    return SqliteKeyVault(settings.data_dir / VAULT_FILE, local_platform_key(settings))


def distributed_vault(settings: CoreSettings) -> KeyVault:
    from cem.adapters.postgres_vault import PostgresKeyVault
    from cem.platform_keys import shared_platform_key

    key = shared_platform_key(settings.model_copy(update={"mode": "distributed"}))
    return PostgresKeyVault(settings.postgres_dsn.get_secret_value(), key)


def vault_for(settings: CoreSettings) -> KeyVault:
    return (
        distributed_vault(settings) if settings.mode == "distributed" else embedded_vault(settings)
    )


def platform_key_for(settings: CoreSettings) -> bytes:
    from cem.platform_keys import local_platform_key, shared_platform_key

    if settings.mode == "distributed":
        return shared_platform_key(settings)
    return local_platform_key(settings)


def log_sealed(
    settings: CoreSettings, identity: IdentityResolver | None, first: Sequence[bytes] = ()
) -> bool:
    """Whether the log holds personal data sealed, what an erasure's answer says: sealing on, no
    identity store kept in clear (`cem.identity.build_identity`: a data directory or deployment
    written in clear before sealing became the default), and, where the caller could read them
    (`first`: each partition's first touchpoint, embedded), none of the log's first records in
    clear: a log written in clear before keeps those events even though new ones are sealed."""
    if not settings.sealing or (identity is not None and not identity.sealed_at_rest):
        return False
    return not any(_clear(value) for value in first)


def _clear(value: bytes) -> bool:
    """A stored touchpoint in clear that sealing would have sealed (an erasure's own never is)."""
    if maybe_sealed(value):
        return False
    try:
        return orjson.loads(value).get("type") not in NEVER_SEALED
    except (orjson.JSONDecodeError, AttributeError):
        return False  # not an event: the filing stage dead-letters it; no personal field read


def sealing_publisher(
    inner: Publisher,
    settings: CoreSettings,
    rules: Callable[[], IdentityRules],
    cache: KeyCache | None = None,
) -> Publisher:
    """`inner`, sealing when the settings say so (`seal_personal_data`). `cache`: the data keys
    a reader in the same process keeps too (the embedded mode's), else one of its own."""
    if not settings.sealing:
        return inner
    vault = vault_for(settings)
    key = platform_key_for(settings)
    sealer = EventSealer(vault, key, subject_function(rules), cache or KeyCache(), NEVER_SEALED)
    return SealingPublisher(inner, sealer, vault)


class LazyVault:
    """A KeyVault opened on first use: every reader of the log opens sealed records, but one that
    never meets one (sealing off, and never on) never touches a vault."""

    def __init__(self, make: Callable[[], KeyVault]) -> None:
        self._make = make
        self._vault: KeyVault | None = None
        self._lock = threading.Lock()

    def _inner(self) -> KeyVault:
        with self._lock:
            if self._vault is None:
                self._vault = self._make()
            return self._vault

    def get_or_create(self, tenant_id: str, key_id: str) -> bytes:
        return self._inner().get_or_create(tenant_id, key_id)

    def get_or_create_many(self, tenant_id: str, key_ids: Sequence[str]) -> dict[str, bytes]:
        return self._inner().get_or_create_many(tenant_id, key_ids)

    def find(self, tenant_id: str, key_id: str) -> bytes | None:
        return self._inner().find(tenant_id, key_id)

    def destroy(self, tenant_id: str, key_ids: Sequence[str]) -> int:
        return self._inner().destroy(tenant_id, key_ids)

    def destroyed(self, tenant_id: str, key_id: str, fingerprint: str | None = None) -> bool:
        return self._inner().destroyed(tenant_id, key_id, fingerprint)

    def last_destroyed_at(self, tenant_id: str, key_id: str) -> datetime | None:
        return self._inner().last_destroyed_at(tenant_id, key_id)

    def destructions_after(self, position: int | None) -> tuple[int, list[tuple[str, str]]]:
        return self._inner().destructions_after(position)

    def close(self) -> None:
        with self._lock:
            if self._vault is not None:
                self._vault.close()
                self._vault = None


def opener_for(settings: CoreSettings, cache: KeyCache | None = None) -> EventOpener:
    """What opens sealed records for a reader of the log, whether sealing is on now or was on
    when they were written; its vault opens at the first sealed record."""
    return EventOpener(LazyVault(lambda: vault_for(settings)), cache or KeyCache())
