"""Channels and webhook dead letters in PostgreSQL (distributed mode); secrets sealed by SecretBox.

Every ingest replica verifies signatures against this one table, so every replica must share the
platform key: CEM_SECRET_KEY when set (the key then lives apart from the data), else one key made by
the first replica that asks and kept in `platform_secrets` (`postgres_secrets`), so replicas on
other hosts still agree.
"""

from __future__ import annotations

import builtins
import json
import secrets
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from cem.adapters.memory_channels import check_new_channel, kept_headers, open_body, seal_body
from cem.adapters.postgres import PostgresPool
from cem.adapters.postgres_secrets import shared_secret
from kernel.channels import (
    ERASED_REASON,
    ChannelConfig,
    DeadLetterStatus,
    NewDeadLetter,
    WebhookDeadLetter,
    letter_id,
    mint_channel_id,
)
from kernel.secrets import KEY_BYTES, SecretBox

SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
  channel_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, provider TEXT NOT NULL,
  name TEXT NOT NULL, settings JSONB NOT NULL, sealed_secret BYTEA NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(), removed_at TIMESTAMPTZ,
  seq BIGSERIAL NOT NULL);
CREATE INDEX IF NOT EXISTS channels_by_tenant ON channels (tenant_id, created_at, seq);
CREATE TABLE IF NOT EXISTS webhook_dead_letters (
  dead_letter_id UUID PRIMARY KEY, tenant_id TEXT NOT NULL, provider TEXT NOT NULL,
  channel_id TEXT NOT NULL, received_at TIMESTAMPTZ NOT NULL, url TEXT NOT NULL,
  headers JSONB NOT NULL, body BYTEA NOT NULL, reason TEXT NOT NULL, violations JSONB NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS webhook_dead_letters_by_status
  ON webhook_dead_letters (status, received_at);
"""
SHARED_KEY_NAME = "channel_secrets"
CHANNEL_COLUMNS = "channel_id, tenant_id, provider, name, settings, created_at"
INSERT_CHANNEL = f"""INSERT INTO channels
  (channel_id, tenant_id, provider, name, settings, sealed_secret)
  VALUES (%s, %s, %s, %s, %s, %s) RETURNING {CHANNEL_COLUMNS}"""
SELECT_CHANNEL = (
    f"SELECT {CHANNEL_COLUMNS} FROM channels WHERE channel_id = %s AND removed_at IS NULL"
)
SELECT_SECRET = "SELECT sealed_secret FROM channels WHERE channel_id = %s AND removed_at IS NULL"
SELECT_TENANT = f"""SELECT {CHANNEL_COLUMNS} FROM channels
  WHERE tenant_id = %s AND removed_at IS NULL ORDER BY created_at, seq"""
UPDATE_SETTINGS = f"""UPDATE channels SET settings = %s
  WHERE channel_id = %s AND tenant_id = %s AND removed_at IS NULL RETURNING {CHANNEL_COLUMNS}"""
REMOVE_CHANNEL = """UPDATE channels SET removed_at = clock_timestamp()
  WHERE channel_id = %s AND tenant_id = %s AND removed_at IS NULL RETURNING channel_id"""
LETTER_COLUMNS = (
    "dead_letter_id, tenant_id, provider, channel_id, received_at, url, headers, body, "
    "reason, violations, status, attempts"
)
# A redelivery of a delivery kept already (the same id: kernel.channels.letter_id) adds nothing.
INSERT_LETTER = """INSERT INTO webhook_dead_letters
  (dead_letter_id, tenant_id, provider, channel_id, received_at, url, headers, body, reason,
   violations) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
  ON CONFLICT (dead_letter_id) DO NOTHING"""
# Every filter is a parameter; a NULL parameter means "any".
SELECT_LETTERS = f"""SELECT {LETTER_COLUMNS} FROM webhook_dead_letters
  WHERE (%(provider)s::text IS NULL OR provider = %(provider)s)
    AND (%(tenant)s::text IS NULL OR tenant_id = %(tenant)s)
    AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s)
    AND (%(status)s::text IS NULL OR status = %(status)s)
  ORDER BY received_at, dead_letter_id LIMIT %(limit)s::bigint"""
TENANT_LETTERS = "FROM webhook_dead_letters WHERE tenant_id = %s AND received_at < %s"
# Neither settles a letter erased meanwhile (a replay that read it before another erased it):
# its body and violations stay gone, and it is never listed as replayed.
SETTLE_REPLAYED = """UPDATE webhook_dead_letters SET status = 'replayed', attempts = attempts + 1
  WHERE dead_letter_id = %s AND status <> 'erased'"""
# The body emptied, not the row deleted: a redelivery of the same body stays known
# (`ChannelStore.erase_dead_letter`).
SETTLE_ERASED = """UPDATE webhook_dead_letters SET status = 'erased', reason = %s,
  violations = '[]', body = %s, attempts = attempts + 1 WHERE dead_letter_id = %s"""
SETTLE_FAILING = """UPDATE webhook_dead_letters
  SET reason = %s, violations = %s, attempts = attempts + 1
  WHERE dead_letter_id = %s AND status <> 'erased'"""


def _channel(row: tuple[Any, ...]) -> ChannelConfig:
    channel_id, tenant_id, provider, name, settings, created_at = row
    return ChannelConfig(
        channel_id, tenant_id, provider, name, settings, created_at.astimezone(UTC)
    )


def _letter(row: tuple[Any, ...]) -> WebhookDeadLetter:
    (letter_id, tenant, provider, channel, received, url, headers, body, reason, violations,
     status, attempts) = row  # fmt: skip
    return WebhookDeadLetter(
        tenant, provider, channel, received.astimezone(UTC), url, headers, bytes(body), reason,
        violations, str(letter_id), status, attempts,
    )  # fmt: skip


class PostgresChannelStore:
    """A ChannelStore in PostgreSQL. Thread-safe; the tables are created on start if missing."""

    def __init__(
        self,
        dsn: str,
        box: SecretBox | None = None,
        *,
        timeout_s: float = 5.0,
        first_key: bytes | None = None,
    ) -> None:
        """`box` seals with the platform key; None: with the key shared in PostgreSQL, which the
        first replica to ask sets to `first_key` (a key its secrets were sealed with before) or
        to a new random one."""
        self.db = PostgresPool(dsn, max_size=4, timeout_s=timeout_s, name="cem-channels")
        try:
            self.db.create_schema("kernel.channels", SCHEMA)
            self._box = box or SecretBox(self._shared_key(first_key))
        except BaseException:
            self.db.close()
            raise

    def shared_key(self) -> bytes:
        """The platform key every replica shares here when CEM_SECRET_KEY is unset (set now, at
        random, when no replica has yet): what other stores derive their keys from."""
        return self._shared_key(None)

    def _shared_key(self, first_key: bytes | None) -> bytes:
        """The key every replica shares, set by whichever asks first."""
        candidate = first_key or secrets.token_bytes(KEY_BYTES)
        return shared_secret(self.db, SHARED_KEY_NAME, candidate)

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
        sealed = self._box.seal(secret, channel_id)
        values = json.dumps(dict(settings or {}))
        with self.db.transaction() as cursor:
            row = cursor.execute(
                INSERT_CHANNEL, (channel_id, tenant_id, provider, name, values, sealed)
            ).fetchone()
        assert row is not None  # RETURNING always answers a row for an insert
        return _channel(row)

    def get(self, channel_id: str) -> ChannelConfig | None:
        with self.db.transaction() as cursor:
            row = cursor.execute(SELECT_CHANNEL, (channel_id,)).fetchone()
        return None if row is None else _channel(row)

    def secret(self, channel_id: str) -> str | None:
        with self.db.transaction() as cursor:
            row = cursor.execute(SELECT_SECRET, (channel_id,)).fetchone()
        return None if row is None else self._box.open(bytes(row[0]), channel_id)

    def list(self, tenant_id: str) -> builtins.list[ChannelConfig]:
        with self.db.transaction() as cursor:
            rows = cursor.execute(SELECT_TENANT, (tenant_id,)).fetchall()
        return [_channel(row) for row in rows]

    def update_settings(
        self, tenant_id: str, channel_id: str, settings: Mapping[str, Any]
    ) -> ChannelConfig | None:
        values = (json.dumps(dict(settings)), channel_id, tenant_id)
        with self.db.transaction() as cursor:
            row = cursor.execute(UPDATE_SETTINGS, values).fetchone()
        return None if row is None else _channel(row)

    def remove(self, tenant_id: str, channel_id: str) -> bool:
        with self.db.transaction() as cursor:
            row = cursor.execute(REMOVE_CHANNEL, (channel_id, tenant_id)).fetchone()
        return row is not None

    def keep_dead_letter(self, letter: NewDeadLetter) -> str:
        kept_id = letter_id(letter)
        row = (
            kept_id, letter.tenant_id, letter.provider, letter.channel_id, letter.received_at,
            letter.url, json.dumps(kept_headers(letter.headers)),
            seal_body(self._box, kept_id, letter.body), letter.reason, json.dumps(letter.violations),
        )  # fmt: skip
        with self.db.transaction() as cursor:
            cursor.execute(INSERT_LETTER, row)
        return kept_id

    def dead_letters(
        self,
        *,
        provider: str | None = None,
        tenant_id: str | None = None,
        since: datetime | None = None,
        status: DeadLetterStatus | None = "pending",
        limit: int | None = None,
    ) -> builtins.list[WebhookDeadLetter]:
        params = {
            "provider": provider,
            "tenant": tenant_id,
            "since": since,
            "status": status,
            "limit": limit,
        }  # fmt: skip  (LIMIT NULL: all of them)
        with self.db.transaction() as cursor:
            rows = cursor.execute(SELECT_LETTERS, params).fetchall()
        letters = [_letter(row) for row in rows]
        return [replace(d, body=open_body(self._box, d.dead_letter_id, d.body)) for d in letters]

    def settle_dead_letter(
        self,
        dead_letter_id: str,
        *,
        replayed: bool,
        reason: str,
        violations: builtins.list[dict[str, str]],
    ) -> None:
        with self.db.transaction() as cursor:
            if replayed:
                cursor.execute(SETTLE_REPLAYED, (dead_letter_id,))
            else:
                cursor.execute(SETTLE_FAILING, (reason, json.dumps(violations), dead_letter_id))

    def erase_dead_letter(self, dead_letter_id: str) -> None:
        with self.db.transaction() as cursor:
            cursor.execute(SETTLE_ERASED, (ERASED_REASON, b"", dead_letter_id))

    def tenant_dead_letters(self, tenant_id: str, before: datetime, *, delete: bool) -> int:
        with self.db.transaction() as cursor:
            if delete:
                cursor.execute(f"DELETE {TENANT_LETTERS}", (tenant_id, before))
                return int(cursor.rowcount)
            cursor.execute(f"SELECT count(*) {TENANT_LETTERS}", (tenant_id, before))
            row = cursor.fetchone()
            return int(row[0]) if row else 0

    def close(self) -> None:
        self.db.close()
