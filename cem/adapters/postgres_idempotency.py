"""The idempotency index in PostgreSQL (distributed mode): claims and conflicts of every replica.

`cem.publishing` explains the protocol (claim pending → lock → append → mark published). Here:
claims are one row per (tenant_id, event_id), inserted with ON CONFLICT DO NOTHING so the first
fingerprint wins; the lock is `SELECT … FOR UPDATE` in a transaction that stays open while the
publisher appends, and `published` is written in that same transaction.

Records written straight to Kafka by channel systems go through the same claims (`admit`, called
by the stream workers): the first record of an identity claims it as `published` with its origin
(topic/partition/offset), so every consumer group, and every replay, recognises that one record as
the original; a later record is a duplicate (same fingerprint) or a recorded conflict. The table
also keeps the key the ingest seals its records with (`seal_key`, see `cem.record_seal`) in
`platform_secrets` (`postgres_secrets`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC
from typing import Any

from cem.adapters.postgres import Cursor, PostgresPool
from cem.adapters.postgres_secrets import shared_secret
from cem.publishing import Claim, ConflictSeen, Identity
from kernel.ports import Consumed, Outgoing, PublishStatus
from kernel.processing import Unadmitted

SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency_claims (
  tenant_id TEXT NOT NULL, event_id TEXT NOT NULL, fingerprint TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'published')),
  claimed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(), published_at TIMESTAMPTZ,
  PRIMARY KEY (tenant_id, event_id));
CREATE TABLE IF NOT EXISTS idempotency_conflicts (
  id BIGSERIAL PRIMARY KEY, tenant_id TEXT NOT NULL, event_id TEXT NOT NULL,
  original_fingerprint TEXT NOT NULL, fingerprint TEXT NOT NULL, value BYTEA NOT NULL,
  recorded_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp());
CREATE INDEX IF NOT EXISTS idempotency_conflicts_by_tenant
  ON idempotency_conflicts (tenant_id, id DESC);
ALTER TABLE idempotency_claims ADD COLUMN IF NOT EXISTS origin TEXT;
ALTER TABLE idempotency_conflicts ADD COLUMN IF NOT EXISTS origin TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS idempotency_conflicts_by_origin
  ON idempotency_conflicts (origin);
"""
# Rows are inserted and locked in (tenant_id, event_id) order: two batches sharing events then
# wait for each other instead of deadlocking. A batch travels as arrays: one statement per step.
CLAIM = """INSERT INTO idempotency_claims (tenant_id, event_id, fingerprint)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]) ORDER BY 1, 2
ON CONFLICT DO NOTHING"""
LOCK = """SELECT c.tenant_id, c.event_id, c.fingerprint, c.status = 'published'
FROM idempotency_claims AS c
JOIN unnest(%s::text[], %s::text[]) AS k (tenant_id, event_id)
  ON c.tenant_id = k.tenant_id AND c.event_id = k.event_id
ORDER BY c.tenant_id, c.event_id FOR UPDATE OF c"""
MARK_PUBLISHED = """UPDATE idempotency_claims AS c
SET status = 'published', published_at = clock_timestamp()
FROM unnest(%s::text[], %s::text[]) AS k (tenant_id, event_id)
WHERE c.tenant_id = k.tenant_id AND c.event_id = k.event_id"""
INSERT_CONFLICTS = """INSERT INTO idempotency_conflicts
  (tenant_id, event_id, original_fingerprint, fingerprint, value)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bytea[])"""
SELECT_CONFLICTS = """SELECT event_id, original_fingerprint, fingerprint, value, recorded_at
FROM idempotency_conflicts WHERE tenant_id = %s ORDER BY id DESC LIMIT %s"""
SET_LOCK_TIMEOUT = "SELECT set_config('lock_timeout', %s, true)"
# --- records written straight to Kafka: arrays of (tenant_id, event_id, fingerprint, origin)
CLAIM_DIRECT = """INSERT INTO idempotency_claims
  (tenant_id, event_id, fingerprint, status, published_at, origin)
SELECT k.t, k.e, k.f, 'published', clock_timestamp(), k.o
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS k (t, e, f, o) ORDER BY 1, 2
ON CONFLICT DO NOTHING"""
# An HTTP publish that never got its acknowledgement left a pending claim; a direct record of the
# same body is then the copy in the log. (A publish in flight holds the row lock: this waits,
# re-reads the row as `published`, and changes nothing.)
ADOPT_PENDING = """UPDATE idempotency_claims AS c
SET status = 'published', published_at = clock_timestamp(), origin = k.o
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS k (t, e, f, o)
WHERE c.tenant_id = k.t AND c.event_id = k.e AND c.fingerprint = k.f
  AND c.status = 'pending' AND c.origin IS NULL"""
SELECT_CLAIMS = """SELECT c.tenant_id, c.event_id, c.fingerprint, c.origin
FROM idempotency_claims AS c
JOIN unnest(%s::text[], %s::text[]) AS k (tenant_id, event_id)
  ON c.tenant_id = k.tenant_id AND c.event_id = k.event_id"""
INSERT_DIRECT_CONFLICTS = """INSERT INTO idempotency_conflicts
  (tenant_id, event_id, original_fingerprint, fingerprint, value, origin)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bytea[], %s::text[])
ON CONFLICT (origin) DO NOTHING"""
SEAL_KEY_NAME = "log_seal"


def origin_of(rec: Consumed) -> str:
    """Where a record sits in the log: the same for every consumer group and every replay."""
    return f"{rec.topic}/{rec.partition}/{rec.offset}"


def verdict(fingerprint: str, origin: str, stored: tuple[str, str | None]) -> PublishStatus:
    """The HTTP publisher's rule for a record read off the topic (see `cem.publishing.decide`)."""
    stored_fingerprint, stored_origin = stored
    if stored_origin == origin:
        return PublishStatus.accepted  # this record is the original, whoever reads it
    if stored_fingerprint != fingerprint:
        return PublishStatus.conflict
    return PublishStatus.duplicate


def _columns(identities: Sequence[Identity]) -> tuple[list[str], list[str]]:
    return [t for t, _ in identities], [e for _, e in identities]


class _PostgresClaimLock:
    """The claims of one batch, row-locked by the open transaction of `cursor`."""

    def __init__(self, cursor: Cursor, claims: dict[Identity, Claim]) -> None:
        self._cursor, self._claims = cursor, claims

    def claims(self) -> Mapping[Identity, Claim]:
        return self._claims

    def mark_published(self, identities: Sequence[Identity]) -> None:
        if identities:
            self._cursor.execute(MARK_PUBLISHED, _columns(identities))

    def record_conflicts(self, conflicts: Sequence[ConflictSeen]) -> None:
        if not conflicts:
            return
        events = [c.event for c in conflicts]
        self._cursor.execute(
            INSERT_CONFLICTS,
            (
                [e.tenant_id for e in events],
                [e.event_id for e in events],
                [c.original_fingerprint for c in conflicts],
                [e.fingerprint for e in events],
                [e.record.value for e in events],
            ),
        )


class PostgresIdempotencyIndex:
    """An IdempotencyIndex in PostgreSQL. Thread-safe; tables are created on start if missing.

    `pool_size` bounds concurrent publishes: each holds a connection while its batch is appended.
    """

    def __init__(self, dsn: str, *, pool_size: int = 16, timeout_s: float = 5.0) -> None:
        self.db = PostgresPool.with_schema(
            dsn,
            "cem.idempotency",
            SCHEMA,
            max_size=pool_size,
            timeout_s=timeout_s,
            name="cem-idempotency",
        )

    def claim(self, events: Sequence[Outgoing]) -> None:
        if not events:
            return
        columns = (
            [e.tenant_id for e in events],
            [e.event_id for e in events],
            [e.fingerprint for e in events],
        )
        with self.db.transaction() as cursor:
            cursor.execute(CLAIM, columns)

    @contextmanager
    def lock(
        self, identities: Sequence[Identity], timeout_s: float
    ) -> Iterator[_PostgresClaimLock]:
        with self.db.transaction() as cursor:
            cursor.execute(SET_LOCK_TIMEOUT, (f"{max(1, int(timeout_s * 1000))}ms",))
            rows = cursor.execute(LOCK, _columns(identities)).fetchall()
            claims = {(t, e): Claim(f, bool(published)) for t, e, f, published in rows}
            yield _PostgresClaimLock(cursor, claims)

    def conflicts(self, tenant_id: str, limit: int = 100) -> list[dict[str, Any]]:
        with self.db.transaction() as cursor:
            rows = cursor.execute(SELECT_CONFLICTS, (tenant_id, limit)).fetchall()
        return [
            {
                "tenant_id": tenant_id,
                "event_id": event_id,
                "original_fingerprint": original,
                "fingerprint": new,
                "value": bytes(value),
                "recorded_at": at.astimezone(UTC),
            }
            for event_id, original, new, value, at in rows
        ]

    def statuses(self, tenant_id: str, event_ids: Sequence[str]) -> dict[str, str]:
        """The state of these events' claims (`pending`/`published`); for operators and tests."""
        with self.db.transaction() as cursor:
            rows = cursor.execute(
                "SELECT event_id, status FROM idempotency_claims "
                "WHERE tenant_id = %s AND event_id = ANY(%s)",
                (tenant_id, list(event_ids)),
            ).fetchall()
        return dict(rows)

    def ping(self) -> None:
        """Readiness: PostgresUnavailable unless the server answers in time."""
        with self.db.transaction() as cursor:
            cursor.execute("SELECT 1")

    def seal_key(self) -> bytes:
        """The platform's key for sealing the ingest's records, made by whoever asks first."""
        return shared_secret(self.db, SEAL_KEY_NAME, secrets.token_bytes(32))

    def admit(self, items: Sequence[tuple[Consumed, Unadmitted]]) -> list[PublishStatus]:
        """The verdict on records written straight to Kafka (`kernel.processing.Admission`)."""
        if not items:
            return []
        firsts: dict[Identity, tuple[Consumed, Unadmitted]] = {}
        for rec, item in items:
            firsts.setdefault(_identity(item), (rec, item))
        claims = _direct_columns(list(firsts.values()))
        with self.db.transaction() as cursor:
            cursor.execute(CLAIM_DIRECT, claims)
            cursor.execute(ADOPT_PENDING, claims)
            rows = cursor.execute(SELECT_CLAIMS, claims[:2]).fetchall()
            stored = {(t, e): (f, o) for t, e, f, o in rows}
            verdicts = [
                verdict(item.fingerprint, origin_of(rec), stored[_identity(item)])
                for rec, item in items
            ]
            conflicts = [
                i for i, v in zip(items, verdicts, strict=True) if v is PublishStatus.conflict
            ]
            if conflicts:
                cursor.execute(INSERT_DIRECT_CONFLICTS, _conflict_columns(conflicts, stored))
        return verdicts

    def close(self) -> None:
        self.db.close()


def _identity(item: Unadmitted) -> Identity:
    return (item.event.tenant_id, str(item.event.event_id))


def _direct_columns(
    items: Sequence[tuple[Consumed, Unadmitted]],
) -> tuple[list[str], list[str], list[str], list[str]]:
    return (
        [item.event.tenant_id for _, item in items],
        [str(item.event.event_id) for _, item in items],
        [item.fingerprint for _, item in items],
        [origin_of(rec) for rec, _ in items],
    )


def _conflict_columns(
    conflicts: Sequence[tuple[Consumed, Unadmitted]], stored: Mapping[Identity, tuple[str, Any]]
) -> tuple[list[Any], ...]:
    tenants, event_ids, fingerprints, origins = _direct_columns(conflicts)
    originals = [stored[_identity(item)][0] for _, item in conflicts]
    values = [rec.value for rec, _ in conflicts]
    return (tenants, event_ids, originals, fingerprints, values, origins)
