"""Channels and webhook dead letters in a SQLite file (embedded mode); secrets sealed by SecretBox."""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cem.adapters.memory_channels import check_new_channel, kept_headers, open_body, seal_body
from cem.adapters.sqlite_log import from_micros, micros_now
from cem.adapters.sqlite_store import PrivateDbStore
from kernel.channels import (
    ERASED_REASON,
    ChannelConfig,
    DeadLetterStatus,
    NewDeadLetter,
    WebhookDeadLetter,
    letter_id,
    mint_channel_id,
)
from kernel.secrets import SecretBox

SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
  channel_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, provider TEXT NOT NULL,
  name TEXT NOT NULL, settings TEXT NOT NULL, sealed_secret BLOB NOT NULL,
  created_at INTEGER NOT NULL, removed_at INTEGER);
CREATE INDEX IF NOT EXISTS channels_by_tenant ON channels (tenant_id, created_at);
CREATE TABLE IF NOT EXISTS webhook_dead_letters (
  dead_letter_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, provider TEXT NOT NULL,
  channel_id TEXT NOT NULL, received_at INTEGER NOT NULL, url TEXT NOT NULL,
  headers TEXT NOT NULL, body BLOB NOT NULL, reason TEXT NOT NULL, violations TEXT NOT NULL,
  status TEXT NOT NULL, attempts INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS webhook_dead_letters_by_status
  ON webhook_dead_letters (status, received_at);
"""
CHANNEL_COLUMNS = "channel_id, tenant_id, provider, name, settings, created_at"
INSERT_CHANNEL = """INSERT INTO channels
  (channel_id, tenant_id, provider, name, settings, sealed_secret, created_at, removed_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, NULL)"""
SELECT_CHANNEL = (
    f"SELECT {CHANNEL_COLUMNS} FROM channels WHERE channel_id = ? AND removed_at IS NULL"
)
SELECT_SECRET = "SELECT sealed_secret FROM channels WHERE channel_id = ? AND removed_at IS NULL"
SELECT_TENANT = f"""SELECT {CHANNEL_COLUMNS} FROM channels
  WHERE tenant_id = ? AND removed_at IS NULL ORDER BY created_at, channel_id"""
UPDATE_SETTINGS = """UPDATE channels SET settings = ?
  WHERE channel_id = ? AND tenant_id = ? AND removed_at IS NULL"""
REMOVE_CHANNEL = """UPDATE channels SET removed_at = ?
  WHERE channel_id = ? AND tenant_id = ? AND removed_at IS NULL"""
LETTER_COLUMNS = (
    "dead_letter_id, tenant_id, provider, channel_id, received_at, url, headers, body, "
    "reason, violations, status, attempts"
)
# A redelivery of a delivery kept already (the same id: kernel.channels.letter_id) adds nothing.
INSERT_LETTER = f"""INSERT OR IGNORE INTO webhook_dead_letters ({LETTER_COLUMNS})
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0)"""
# Every filter is a parameter; a NULL parameter means "any".
SELECT_LETTERS = f"""SELECT {LETTER_COLUMNS} FROM webhook_dead_letters
  WHERE (?1 IS NULL OR provider = ?1) AND (?2 IS NULL OR tenant_id = ?2)
    AND (?3 IS NULL OR received_at >= ?3) AND (?4 IS NULL OR status = ?4)
  ORDER BY received_at, dead_letter_id LIMIT ?5"""
TENANT_LETTERS = "FROM webhook_dead_letters WHERE tenant_id = ? AND received_at < ?"
# Neither settles a letter erased meanwhile (a replay that read it before another erased it):
# its body and violations stay gone, and it is never listed as replayed.
SETTLE_REPLAYED = """UPDATE webhook_dead_letters SET status = 'replayed', attempts = attempts + 1
  WHERE dead_letter_id = ? AND status <> 'erased'"""
# The body emptied, not the row deleted: a redelivery of the same body stays known
# (`ChannelStore.erase_dead_letter`).
SETTLE_ERASED = """UPDATE webhook_dead_letters SET status = 'erased', reason = ?,
  violations = '[]', body = ?, attempts = attempts + 1 WHERE dead_letter_id = ?"""
SETTLE_FAILING = """UPDATE webhook_dead_letters
  SET reason = ?, violations = ?, attempts = attempts + 1
  WHERE dead_letter_id = ? AND status <> 'erased'"""


def to_micros(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def _channel(row: tuple[Any, ...]) -> ChannelConfig:
    channel_id, tenant_id, provider, name, settings, created_at = row
    return ChannelConfig(
        channel_id, tenant_id, provider, name, json.loads(settings), from_micros(created_at)
    )


def _letter(row: tuple[Any, ...]) -> WebhookDeadLetter:
    (letter_id, tenant, provider, channel, received, url, headers, body, reason, violations,
     status, attempts) = row  # fmt: skip
    return WebhookDeadLetter(
        tenant, provider, channel, from_micros(received), url, json.loads(headers), bytes(body),
        reason, json.loads(violations), letter_id, status, attempts,
    )  # fmt: skip


class SqliteChannelStore(PrivateDbStore):
    """A ChannelStore in one SQLite file. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path, box: SecretBox) -> None:
        self._box = box
        # synchronous=FULL (the default): a dead letter must survive power loss once the
        # provider has been told to stop retrying. Sealed secrets: the file is owner only.
        # secure_delete: a body emptied (`erase_dead_letter`) or a letter deleted (retention)
        # is zeroed in its page, not left in free space (its old page stays in the WAL until
        # the next checkpoint).
        super().__init__(path, SCHEMA, "secure_delete = ON")

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
        channel_id, now = mint_channel_id(), micros_now()
        values = json.dumps(dict(settings or {}))
        sealed = self._box.seal(secret, channel_id)
        with self._db() as conn:
            conn.execute(
                INSERT_CHANNEL, (channel_id, tenant_id, provider, name, values, sealed, now)
            )
        return ChannelConfig(
            channel_id, tenant_id, provider, name, json.loads(values), from_micros(now)
        )

    def get(self, channel_id: str) -> ChannelConfig | None:
        with self._db() as conn:
            row = conn.execute(SELECT_CHANNEL, (channel_id,)).fetchone()
        return None if row is None else _channel(row)

    def secret(self, channel_id: str) -> str | None:
        with self._db() as conn:
            row = conn.execute(SELECT_SECRET, (channel_id,)).fetchone()
        return None if row is None else self._box.open(bytes(row[0]), channel_id)

    def list(self, tenant_id: str) -> builtins.list[ChannelConfig]:
        with self._db() as conn:
            rows = conn.execute(SELECT_TENANT, (tenant_id,)).fetchall()
        return [_channel(row) for row in rows]

    def update_settings(
        self, tenant_id: str, channel_id: str, settings: Mapping[str, Any]
    ) -> ChannelConfig | None:
        with self._db() as conn:
            changed = conn.execute(
                UPDATE_SETTINGS, (json.dumps(dict(settings)), channel_id, tenant_id)
            )
        return self.get(channel_id) if changed.rowcount == 1 else None

    def remove(self, tenant_id: str, channel_id: str) -> bool:
        with self._db() as conn:
            changed = conn.execute(REMOVE_CHANNEL, (micros_now(), channel_id, tenant_id))
        return changed.rowcount == 1

    def keep_dead_letter(self, letter: NewDeadLetter) -> str:
        kept_id = letter_id(letter)
        row = (
            kept_id, letter.tenant_id, letter.provider, letter.channel_id,
            to_micros(letter.received_at), letter.url, json.dumps(kept_headers(letter.headers)),
            seal_body(self._box, kept_id, letter.body), letter.reason,
            json.dumps(letter.violations),
        )  # fmt: skip
        with self._db() as conn:
            conn.execute(INSERT_LETTER, row)
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
        after = None if since is None else to_micros(since)
        params = (provider, tenant_id, after, status, -1 if limit is None else limit)
        with self._db() as conn:
            rows = conn.execute(SELECT_LETTERS, params).fetchall()
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
        with self._db() as conn:
            if replayed:
                conn.execute(SETTLE_REPLAYED, (dead_letter_id,))
            else:
                conn.execute(SETTLE_FAILING, (reason, json.dumps(violations), dead_letter_id))

    def erase_dead_letter(self, dead_letter_id: str) -> None:
        with self._db() as conn:
            conn.execute(SETTLE_ERASED, (ERASED_REASON, b"", dead_letter_id))

    def tenant_dead_letters(self, tenant_id: str, before: datetime, *, delete: bool) -> int:
        params = (tenant_id, to_micros(before))
        with self._db() as conn:
            if delete:
                return int(conn.execute(f"DELETE {TENANT_LETTERS}", params).rowcount)
            return int(conn.execute(f"SELECT count() {TENANT_LETTERS}", params).fetchone()[0])
